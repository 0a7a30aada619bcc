"""A holder for secret bytes (decrypted shares, data keys) that stays out of sight.

Python cannot guarantee that a value is erased from memory: the interpreter, the
allocator and any library that receives a copy may keep one. This holder does what can
be done: it keeps its bytes in one mutable ``bytearray`` that :meth:`SecretBytes.wipe`
overwrites with zeros, it never shows them in ``repr``/``str``/``format``, it refuses
pickling, equality by ``==`` and hashing, and it can be used as a context manager that
wipes on exit so a decrypted share lives only for the ``with`` block.
"""

from __future__ import annotations

import hmac
from types import TracebackType
from typing import NoReturn, Self


class SecretBytes:
    """Secret bytes with a redacted representation and a best-effort wipe.

    Security: ``repr``, ``str`` and ``format`` print only the length; pickling raises;
    ``==`` is refused so that a comparison cannot leak through timing or be written by
    accident (use :meth:`equals`, which is constant-time). :meth:`reveal` returns an
    immutable ``bytes`` copy that cannot be wiped; prefer :meth:`view` for APIs that take
    any bytes-like object. After :meth:`wipe` every access raises ``ValueError``.
    """

    __slots__ = ("_buffer", "_wiped")

    def __init__(self, value: bytes | bytearray | memoryview) -> None:
        self._buffer = bytearray(value)
        self._wiped = False

    def __len__(self) -> int:
        return len(self._buffer)

    def __repr__(self) -> str:
        state = "wiped" if self._wiped else f"{len(self._buffer)} bytes"
        return f"SecretBytes(<redacted, {state}>)"

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        return repr(self)

    def __eq__(self, other: object) -> bool:
        raise TypeError("SecretBytes does not support ==; use equals(), which is constant-time")

    __hash__ = None  # type: ignore[assignment]

    def __reduce__(self) -> NoReturn:
        raise TypeError("SecretBytes cannot be pickled")

    def __bytes__(self) -> NoReturn:
        raise TypeError("SecretBytes does not convert implicitly; call reveal()")

    def _check(self) -> None:
        if self._wiped:
            raise ValueError("SecretBytes was wiped")

    def view(self) -> memoryview:
        """A read-only view of the secret, valid until :meth:`wipe`."""
        self._check()
        return memoryview(self._buffer).toreadonly()

    def reveal(self) -> bytes:
        """An immutable copy of the secret. It cannot be wiped: keep it short-lived."""
        self._check()
        return bytes(self._buffer)

    def equals(self, other: SecretBytes | bytes) -> bool:
        """Constant-time comparison with another secret or with bytes."""
        self._check()
        right = other.view() if isinstance(other, SecretBytes) else other
        return hmac.compare_digest(self._buffer, bytes(right))

    def wipe(self) -> None:
        """Overwrite the buffer with zeros (best effort) and make the holder unusable."""
        for i in range(len(self._buffer)):
            self._buffer[i] = 0
        self._wiped = True

    @property
    def wiped(self) -> bool:
        """Whether :meth:`wipe` was called."""
        return self._wiped

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.wipe()
