"""``shardvault policy apply``: draft, propose, sign and activate a policy in one go.

The policy file (YAML or JSON) is sent as a draft; the server wraps it into the next
bundle of the workspace's chain; each ``--admin-key ID=FILE`` (Ed25519 PEM) signs the
bundle's signed bytes locally; the bundle is activated once the quorum has signed. The
admin set (``--admins FILE``, or built from the given admin keys and ``--quorum``) is
pinned by the first bundle and becomes the set for the next bundle otherwise.

Before signing, the command checks that the bundle the server proposes carries the
policy it sent (its canonical document), so an admin never signs something else. When
the bundle carries a co-signer directory (remote co-signers paired with the workspace),
it is signed only if it lists exactly the ``--expect-cosigner PARTY=FINGERPRINT`` given:
the fingerprints each co-signer's operator read on its own host (docs/cosigner.md,
"Pairing"); ``--cosigners`` picks which paired co-signers it lists.

The bundle's initiators section (which API key speaks for which initiator, docs/policy.md
"Signed inputs") comes from ``--initiators FILE`` (signed only if the proposed bundle
carries exactly that section), from the server's API keys (``--initiators-from-keys``),
or from the bundle before it. Unless it came from a file, every key it lists is printed
on stderr and the command asks before signing (``--yes`` skips the question, not the
listing): compare each key with the one its holder reads on their own machine.

The bundle's asset registry (networks with their chain ids and native symbols, assets,
decimals, static prices, price keys: docs/policy.md, "Asset registry") is what the
co-signers take as signed facts: they accept a network only when it is listed there.
With ``--assets FILE`` the registry is sent with the proposal and the bundle is signed
only if it carries exactly that registry. Without it the server proposes one built from
its networks and assets tables; the command then prints it on stderr, one line per
network, and asks before signing, as for the initiators (``--yes`` skips the question,
not the listing).
"""

import json
from pathlib import Path
from typing import Literal

import click
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    PublicFormat,
    load_pem_private_key,
)

from shardvault.cli._output import emit_json, fail
from shardvault.cli._pins import expected_cosigners
from shardvault.cli.workspace import api_options, sdk_client
from shardvault.errors import ShardvaultError
from shardvault.policy import (
    AssetRegistry,
    InitiatorKeys,
    PolicyBundle,
    PolicyError,
    load_registry,
    parse_bundle,
    parse_initiator_keys,
    parse_policy,
    parse_text,
    policy_to_document,
)
from shardvault.sdk.custody import sign_bundle


def _admin_keys(items: tuple[str, ...]) -> list[tuple[str, Ed25519PrivateKey]]:
    keys = []
    for item in items:
        admin_id, sep, path = item.partition("=")
        if not sep or not admin_id:
            fail(f"--admin-key {item!r}: expected ID=FILE")
        try:
            key = load_pem_private_key(Path(path).read_bytes(), password=None)
        except (OSError, ValueError) as exc:
            fail(f"{path}: not a readable PEM private key ({type(exc).__name__})")
        if not isinstance(key, Ed25519PrivateKey):
            fail(f"{path}: admin keys are Ed25519")
        keys.append((admin_id, key))
    return keys


def _initiators_file(path: Path | None) -> tuple[dict[str, object] | None, InitiatorKeys | None]:
    """The initiators section in ``path`` (JSON, or YAML unless it ends in .json), as
    sent and as parsed."""
    if path is None:
        return None, None
    fmt: Literal["yaml", "json"] = "json" if path.suffix == ".json" else "yaml"
    try:
        document = parse_text(path.read_text(), fmt)
        section = parse_initiator_keys(document)
    except (OSError, PolicyError) as exc:
        fail(f"--initiators {path}: {exc}")
    # Sent as canonical JSON: YAML and JSON spellings of one section are the same section.
    return section.to_document(), section


def _confirm_initiators(bundle: PolicyBundle, expected: InitiatorKeys | None, yes: bool) -> None:
    """Sign a bundle's initiators section only as the admin intends it (module docstring)."""
    listed = bundle.initiators
    if expected is not None:
        if listed != expected:
            fail("the proposed initiators section is not the one in --initiators; not signing")
        return
    if listed is None:
        return
    click.echo("the bundle lists these initiator keys (who each API key speaks for):", err=True)
    for line in listed.listing() or ["(none)"]:
        click.echo(f"  {line}", err=True)
    if not yes and not click.confirm("sign a bundle listing these keys?", default=False, err=True):
        fail("not signing")


def _registry_lines(registry: AssetRegistry) -> list[str]:
    """The registry as an admin reviews it: one line per network, then the price keys."""
    lines = []
    for network in registry.networks:
        chain = network.chain.value
        where = f"{chain} chain id {network.chain_id}" if network.chain_id else chain
        if network.native_symbol is not None:
            where += f", native coin {network.native_symbol}"
        assets = ", ".join(
            f"{a.id} ({'native' if a.native else a.contract}, {a.decimals} decimals"
            + (f", {a.price})" if a.price is not None else ")")
            for a in network.assets
        )
        lines.append(f"{network.name} ({where}): {assets or 'no assets'}")
    if registry.price_keys:
        keys = ", ".join(
            f"{k.id} {k.key.algorithm.value} {k.key.hex()}" for k in registry.price_keys
        )
        lines.append(f"price keys (reports at most {registry.max_price_age} s old): {keys}")
    return lines


def _confirm_registry(registry: AssetRegistry, yes: bool) -> None:
    """Sign a registry the server built from its tables only once it has been shown
    (and, without ``yes``, confirmed): the co-signers take it as signed facts."""
    click.echo(
        "the bundle carries this asset registry, built by the server from its networks "
        "and assets (the co-signers accept only the networks and assets it lists):",
        err=True,
    )
    for line in _registry_lines(registry) or ["(no network)"]:
        click.echo(f"  {line}", err=True)
    if not yes and not click.confirm(
        "sign a bundle carrying this registry?", default=False, err=True
    ):
        fail("not signing")


def _party_list(text: str) -> list[int]:
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if not parts or not all(p.isdigit() for p in parts):
        fail("--cosigners: expected comma-separated party ids")
    return [int(p) for p in parts]


@click.command(name="apply")
@click.argument("policy_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--admin-key", "admin_keys", multiple=True, help="ID=FILE, an admin's Ed25519 PEM key."
)
@click.option(
    "--admins", "admins_file", type=click.Path(dir_okay=False, path_type=Path), default=None
)
@click.option("--quorum", type=int, default=None, help="Quorum when the set is built from keys.")
@click.option(
    "--expect-cosigner",
    "expected_cosigner_items",
    multiple=True,
    help="PARTY=FINGERPRINT as read on that co-signer's own host; required for each "
    "co-signer of a directory the bundle carries.",
)
@click.option(
    "--cosigners",
    default=None,
    help="Comma-separated party ids of the paired co-signers the directory lists "
    "(default: every paired co-signer).",
)
@click.option(
    "--initiators",
    "initiators_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="The bundle's initiators section (which API key speaks for which initiator).",
)
@click.option(
    "--initiators-from-keys",
    is_flag=True,
    help="List the server's API keys that may create transactions as the initiators "
    "section (shown before signing).",
)
@click.option(
    "--yes",
    is_flag=True,
    help="Sign a listed initiators section, and a registry the server built, without asking.",
)
@click.option(
    "--assets",
    "assets_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="The asset registry (YAML or JSON) the bundle must carry (default: the one the "
    "server builds from its networks and assets, shown before signing).",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@api_options
def command(
    policy_file: Path,
    admin_keys: tuple[str, ...],
    admins_file: Path | None,
    quorum: int | None,
    expected_cosigner_items: tuple[str, ...],
    cosigners: str | None,
    initiators_file: Path | None,
    initiators_from_keys: bool,
    yes: bool,
    assets_file: Path | None,
    as_json: bool,
    url: str,
    api_key: str | None,
    key_file: Path | None,
) -> None:
    """Apply a policy file: draft, propose, sign with the admin keys, activate."""
    text = policy_file.read_text()
    fmt: Literal["yaml", "json"] = "json" if policy_file.suffix == ".json" else "yaml"
    try:
        expected = policy_to_document(parse_policy(parse_text(text, fmt)))
    except PolicyError as exc:
        fail(str(exc))
    signers = _admin_keys(admin_keys)
    if admins_file is not None:
        admins: dict[str, object] | None = json.loads(admins_file.read_text())
    elif signers:
        admins = {
            "quorum": quorum or len(signers),
            "members": [
                {
                    "id": admin_id,
                    "algorithm": "ed25519",
                    "public_key": key.public_key()
                    .public_bytes(Encoding.Raw, PublicFormat.Raw)
                    .hex(),
                }
                for admin_id, key in signers
            ],
        }
    else:
        admins = None
    expected_directory = expected_cosigners(expected_cosigner_items)
    chosen = _party_list(cosigners) if cosigners is not None else None
    if initiators_file is not None and initiators_from_keys:
        fail("give --initiators or --initiators-from-keys, not both")
    initiators, expected_initiators = _initiators_file(initiators_file)
    expected_assets: dict[str, object] | None = None
    if assets_file is not None:
        assets_fmt: Literal["yaml", "json"] = "json" if assets_file.suffix == ".json" else "yaml"
        try:
            expected_assets = load_registry(assets_file.read_text(), assets_fmt).to_document()
        except PolicyError as exc:
            fail(f"{assets_file}: {exc}")
    client = sdk_client(url, api_key, key_file)
    try:
        with client:
            draft = client.create_policy(text=text, fmt=fmt)
            proposed = client.propose_policy(
                draft.id,
                admins=admins,
                cosigners=chosen,
                initiators=initiators,
                initiators_from_api_keys=initiators_from_keys,
                assets=expected_assets,
            )
            if proposed.bundle is None or proposed.signing_message is None:
                fail("the server proposed no bundle")
            bundle = parse_bundle(proposed.bundle)
            if policy_to_document(bundle.policy) != expected:
                fail("the proposed bundle does not carry the policy in the file; not signing")
            carried = None if bundle.assets is None else bundle.assets.to_document()
            if expected_assets is not None:
                if carried != expected_assets:
                    fail("the proposed asset registry is not the one in --assets; not signing")
            elif bundle.assets is not None:
                _confirm_registry(bundle.assets, yes)
            if bundle.cosigners is not None:
                listed = bundle.cosigners.fingerprints()
                if listed != expected_directory:
                    shown = ", ".join(f"{p}={f!r}" for p, f in listed.items())
                    fail(
                        "the proposed co-signer directory is not the one expected "
                        f"(--expect-cosigner); not signing. It lists: {shown}"
                    )
            _confirm_initiators(bundle, expected_initiators, yes)
            for admin_id, key in signers:
                client.sign_policy(
                    draft.id,
                    signer=admin_id,
                    signature=sign_bundle(key, bundle.signing_message().hex()),
                )
            active = client.activate_policy(draft.id)
    except (ShardvaultError, ValueError) as exc:
        fail(str(exc))
    registry_lines = [] if bundle.assets is None else _registry_lines(bundle.assets)
    if as_json:
        emit_json(
            {
                "policy_id": active.id,
                "version": active.version,
                "status": active.status,
                "bundle_hash": active.bundle_hash,
                "assets": registry_lines,
            }
        )
    else:
        click.echo(f"policy {active.id}: version {active.version} {active.status}")
        for line in registry_lines:
            click.echo(f"  signed asset registry: {line}")
