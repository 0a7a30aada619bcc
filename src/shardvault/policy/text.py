"""Reading policy and address-book text (YAML or JSON) into plain data, strictly.

The YAML reader resolves scalars as the YAML 1.2 core schema does (so ``17:00`` stays a
string and ``on`` is not a boolean), refuses duplicate keys and aliases, and reads
decimal numbers as exact :class:`~decimal.Decimal`; JSON is read with the same rules.
Input is bounded before anything recurses on it: a document nested deeper than
:data:`MAX_DEPTH` mappings and lists is refused while YAML is composed, before JSON text
is decoded (a scan of its brackets), and before document data is read
(:func:`check_depth`), so a hostile document gets a
:class:`~shardvault.policy.errors.PolicyDocumentError` rather than exhausting the
interpreter's stack. :mod:`.load` turns the data into the model.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Literal

import yaml

from shardvault.policy.errors import PolicyDocumentError

DocumentFormat = Literal["yaml", "json"]

MAX_DEPTH = 64
"""The deepest nesting of mappings and lists a document may have. A policy needs about
ten levels; the bound keeps every reader (the YAML composer, the JSON decoder, the
schema validator) far from the interpreter's recursion limit."""

_JSON_STRUCTURE = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]')
"""A JSON string (skipped whole, brackets inside it are text) or a bracket."""


# --- Reading text -------------------------------------------------------------------


class _StrictYamlLoader(yaml.SafeLoader):
    """A safe YAML loader with YAML 1.2 core-schema scalars, no duplicate keys, no
    aliases, decimal numbers read exactly, and at most :data:`MAX_DEPTH` levels."""

    collection_depth = 0
    """How many mappings and lists enclose the node being composed."""


_StrictYamlLoader.yaml_implicit_resolvers = {}
_StrictYamlLoader.add_implicit_resolver(
    "tag:yaml.org,2002:null", re.compile(r"^(?:~|null|Null|NULL|)$"), ["~", "n", "N", ""]
)
_StrictYamlLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool",
    re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
    list("tTfF"),
)
_StrictYamlLoader.add_implicit_resolver(
    "tag:yaml.org,2002:int", re.compile(r"^[-+]?[0-9]+$"), list("-+0123456789")
)
_StrictYamlLoader.add_implicit_resolver(
    "tag:shardvault,2025:decimal",
    re.compile(r"^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?$"),
    list("-+.0123456789"),
)


def _construct_decimal(loader: yaml.SafeLoader, node: yaml.Node) -> Decimal:
    text = loader.construct_scalar(node)  # type: ignore[arg-type]
    return Decimal(str(text))


def _construct_int(loader: yaml.SafeLoader, node: yaml.Node) -> int:
    return int(str(loader.construct_scalar(node)), 10)  # type: ignore[arg-type]


def _construct_mapping(loader: yaml.SafeLoader, node: yaml.Node) -> dict[object, object]:
    if not isinstance(node, yaml.MappingNode):  # pragma: no cover - tag resolution guarantees it
        raise PolicyDocumentError("expected a mapping")
    out: dict[object, object] = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if not isinstance(key, str):
            raise PolicyDocumentError(
                f"line {key_node.start_mark.line + 1}: mapping keys are strings"
            )
        if key in out:
            raise PolicyDocumentError(f"line {key_node.start_mark.line + 1}: duplicate key {key!r}")
        out[key] = loader.construct_object(value_node, deep=True)
    return out


def _compose_strictly(self: _StrictYamlLoader, parent: object, index: object) -> yaml.Node | None:
    """Compose one node, refusing aliases and collections nested deeper than
    :data:`MAX_DEPTH` (PyYAML's composer recurses once per level)."""
    if self.check_event(yaml.AliasEvent):
        event = self.peek_event()  # type: ignore[no-untyped-call]
        raise PolicyDocumentError(f"line {event.start_mark.line + 1}: aliases are not allowed")
    if not self.check_event(yaml.SequenceStartEvent, yaml.MappingStartEvent):
        return _compose_node(self, parent, index)  # type: ignore[arg-type]
    depth = self.collection_depth + 1
    if depth > MAX_DEPTH:
        event = self.peek_event()  # type: ignore[no-untyped-call]
        raise PolicyDocumentError(
            f"line {event.start_mark.line + 1}: nested deeper than {MAX_DEPTH} levels"
        )
    self.collection_depth = depth
    try:
        return _compose_node(self, parent, index)  # type: ignore[arg-type]
    finally:
        self.collection_depth = depth - 1


_compose_node = yaml.SafeLoader.compose_node
_StrictYamlLoader.compose_node = _compose_strictly  # type: ignore[method-assign,assignment]
_StrictYamlLoader.add_constructor("tag:shardvault,2025:decimal", _construct_decimal)
_StrictYamlLoader.add_constructor("tag:yaml.org,2002:int", _construct_int)
_StrictYamlLoader.add_constructor("tag:yaml.org,2002:map", _construct_mapping)


def _json_object(pairs: list[tuple[str, object]]) -> dict[str, object]:
    out: dict[str, object] = {}
    for key, value in pairs:
        if key in out:
            raise PolicyDocumentError(f"duplicate key {key!r}")
        out[key] = value
    return out


def _json_constant(name: str) -> object:
    raise PolicyDocumentError(f"{name} is not a number")


def _check_json_depth(text: str) -> None:
    """Refuse JSON text whose brackets nest deeper than :data:`MAX_DEPTH`, without
    decoding it (the decoder recurses once per level)."""
    depth = 0
    for token in _JSON_STRUCTURE.finditer(text):
        bracket = token.group()
        if bracket in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                line = text.count("\n", 0, token.start()) + 1
                raise PolicyDocumentError(f"line {line}: nested deeper than {MAX_DEPTH} levels")
        elif bracket in "]}":
            depth -= 1


def check_depth(data: object, path: str) -> None:
    """Refuse document data nested deeper than :data:`MAX_DEPTH` mappings and lists
    (walked without recursion; a cycle counts as too deep).

    Raises:
        PolicyDocumentError: too deep, naming ``path``.
    """
    pending: list[tuple[object, int]] = [(data, 0)]
    while pending:
        item, depth = pending.pop()
        children: Iterable[object]
        if isinstance(item, Mapping):
            children = item.values()
        elif isinstance(item, list | tuple):
            children = item
        else:
            continue
        if depth == MAX_DEPTH:
            raise PolicyDocumentError(f"nested deeper than {MAX_DEPTH} levels", path=path)
        pending.extend((child, depth + 1) for child in children)


def parse_text(text: str, fmt: DocumentFormat) -> object:
    """Parse YAML or JSON text into plain data (dicts, lists, strings, ints, Decimals).

    Raises:
        PolicyDocumentError: the text does not parse, has duplicate keys, nests deeper
            than :data:`MAX_DEPTH` levels, or (YAML) uses aliases.
    """
    if fmt == "json":
        _check_json_depth(text)
        try:
            return json.loads(
                text,
                object_pairs_hook=_json_object,
                parse_float=Decimal,
                parse_constant=_json_constant,
            )
        except json.JSONDecodeError as exc:
            raise PolicyDocumentError(f"not JSON: {exc.msg} at line {exc.lineno}") from None
    try:
        return yaml.load(text, Loader=_StrictYamlLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise PolicyDocumentError(f"not YAML: {exc}") from None
    except (ValueError, ArithmeticError) as exc:
        raise PolicyDocumentError(f"not YAML: {exc}") from None
