"""Domain-separated, length-prefixed transcripts for Fiat-Shamir challenges.

Every challenge in shardvault is derived from a :class:`Transcript`: it starts from a domain
tag naming the protocol, round and purpose, and absorbs each value as
``len(label) || label || len(value) || value`` with 8-byte big-endian lengths, so that no
two different sequences of values hash alike (the TSSHOCK ambiguous-encoding attacks fed
such collisions to threshold-ECDSA implementations). Challenges are read from SHAKE256, an
extendable-output function from :mod:`hashlib`, and mapped to ranges by rejection sampling,
so they carry no modular bias.
"""

import hashlib
from typing import Self

_LEN = 8


def _frame(data: bytes) -> bytes:
    return len(data).to_bytes(_LEN, "big") + data


class Transcript:
    """An append-only Fiat-Shamir transcript.

    Append everything the verifier must bind: the session id, the party set, the curve, each
    party's public parameters and the proof's own commitments. Deriving a challenge absorbs
    a counter, so successive challenges from one transcript differ.
    """

    __slots__ = ("_counter", "_state")

    def __init__(self, domain: str) -> None:
        self._state = hashlib.shake_256(
            _frame(b"shardvault/transcript/v1") + _frame(domain.encode())
        )
        self._counter = 0

    def append(self, label: str, value: bytes) -> Self:
        """Absorb ``value`` under ``label``."""
        self._state.update(_frame(label.encode()) + _frame(bytes(value)))
        return self

    def append_int(self, label: str, value: int) -> Self:
        """Absorb a signed integer of any size (sign byte, then big-endian magnitude)."""
        sign = b"\x01" if value < 0 else b"\x00"
        magnitude = abs(value)
        return self.append(
            label, sign + magnitude.to_bytes((magnitude.bit_length() + 7) // 8, "big")
        )

    def append_ints(self, label: str, values: list[int] | tuple[int, ...]) -> Self:
        """Absorb a sequence of integers, framed as one value per element plus a count."""
        self.append_int(label + "/count", len(values))
        for index, value in enumerate(values):
            self.append_int(f"{label}/{index}", value)
        return self

    def fork(self, label: str) -> "Transcript":
        """A copy that has absorbed ``label``; the original is unchanged."""
        copy = Transcript.__new__(Transcript)
        copy._state = self._state.copy()
        copy._counter = self._counter
        copy.append("fork", label.encode())
        return copy

    def challenge_bytes(self, label: str, length: int) -> bytes:
        """Derive ``length`` challenge bytes bound to everything absorbed so far."""
        state = self._state.copy()
        state.update(
            _frame(b"challenge") + _frame(label.encode()) + self._counter.to_bytes(_LEN, "big")
        )
        self._counter += 1
        return state.digest(length)

    def challenge_int_below(self, label: str, bound: int) -> int:
        """A uniform integer in ``[0, bound)`` by rejection sampling over SHAKE256 output."""
        if bound < 1:
            raise ValueError("bound must be positive")
        nbytes = (bound.bit_length() + 7) // 8 + 1
        extra_bits = nbytes * 8 - bound.bit_length()
        stream = self.challenge_bytes(label, nbytes * 64)
        for offset in range(0, len(stream), nbytes):
            candidate = int.from_bytes(stream[offset : offset + nbytes], "big") >> extra_bits
            if candidate < bound:
                return candidate
        # 64 rejections in a row have probability below 2**-64: treat as unreachable.
        raise AssertionError("challenge sampling did not terminate")  # pragma: no cover

    def challenge_signed(self, label: str, bound: int) -> int:
        """A uniform integer in ``[-bound, bound]``, the challenge range of CGGMP21's proofs."""
        return self.challenge_int_below(label, 2 * bound + 1) - bound
