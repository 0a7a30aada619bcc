"""Attested addresses: a co-signer's signed statement that an address is the vault key's.

Deposit addresses come from the server, and a compromised server could hand out its own
(docs/threat-model.md). So each co-signer derives the address itself, from the public
part of the key share it holds, and signs the statement

    "shardvault/cosigner/address-attestation/v1" || 0x00 || canonical JSON of
    {"format", "workspace", "party", "vault", "key_id", "scheme", "root_public_key",
     "chain_code", "min_signers", "max_signers", "path", "public_key", "encoding",
     "address"}

with its Ed25519 identity key (RFC 8032, libsodium through PyNaCl). Canonical JSON is
keys sorted, no spaces, ASCII only; keys and chain codes are lowercase hex. A client
counts the statement only when (:func:`verify_attestation`):

1. the party is one the client pinned (its identity's fingerprint, as read on the
   co-signer's own host: the ``--expect-cosigner PARTY=FINGERPRINT`` of ``policy
   apply``), so the server cannot add a co-signer of its own;
2. the signature verifies under that identity's signing key;
3. the statement names the address, vault and path the client was shown (and the
   workspace and the vault's root key, when the client knows them);
4. the statement is consistent: ``public_key`` is the key derived from
   ``root_public_key`` and ``chain_code`` along ``path`` (:func:`derive_public_key`),
   and ``address`` is that key in ``encoding`` (:class:`AddressEncoding`), so the
   client recomputes the address from the attested key itself.

An address is *verified* when at least ``required`` distinct pinned parties attest it,
where ``required`` is the largest of the client's floor (at least two, DESIGN.md
invariant 10) and every counted statement's ``min_signers`` (:func:`tally_attestations`):
as many co-signers as could sign together vouch for it.

Derivation (:mod:`shardvault.crypto.bip32`): ECDSA keys derive along non-hardened BIP32
paths (``CKDpub``), at most :data:`MAX_PATH_DEPTH` steps, written canonically
(``m/44/60/0/0/7``: no leading zeros, no spaces); FROST keys (Ed25519, BIP340) are used
at the root ``m`` only, as the co-signers sign with them.

Pure: no I/O, no clock.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final, Literal

from nacl.exceptions import BadSignatureError
from nacl.exceptions import CryptoError as NaclCryptoError
from nacl.signing import VerifyKey

from shardvault.chains.bitcoin.address import Network as BitcoinNetwork
from shardvault.chains.bitcoin.address import encode_segwit_address
from shardvault.chains.bitcoin.encoding import hash160
from shardvault.chains.bitcoin.taproot import p2tr_address
from shardvault.chains.errors import ChainError
from shardvault.chains.ethereum.address import address_from_public_key
from shardvault.chains.solana.models import Pubkey
from shardvault.crypto.bip32 import derive_path, parse_path
from shardvault.crypto.channel import PartyIdentity, PublicIdentity
from shardvault.crypto.errors import CryptoError
from shardvault.crypto.group import SECP256K1
from shardvault.policy.bundle import canonical_json
from shardvault.policy.errors import PolicyError

ATTESTATION_FORMAT: Final = "shardvault.address-attestation/v1"
"""The ``format`` of every statement."""

ATTESTATION_DOMAIN: Final = b"shardvault/cosigner/address-attestation/v1\x00"
"""Prefix of the bytes a co-signer signs: nothing else its identity key signs starts so."""

MAX_PATH_DEPTH: Final = 16
"""The most steps a derivation path may have (the service's paths have five)."""

MIN_ATTESTATIONS: Final = 2
"""The fewest attestations that verify an address: an MPC key has ``min_signers >= 2``."""

Scheme = Literal["ecdsa-secp256k1", "eddsa-ed25519", "schnorr-bip340"]
SCHEMES: Final[tuple[Scheme, ...]] = ("ecdsa-secp256k1", "eddsa-ed25519", "schnorr-bip340")
"""The signature schemes whose keys have addresses."""

_BITCOIN_NETWORKS: Final = {
    "mainnet": BitcoinNetwork.MAINNET,
    "testnet": BitcoinNetwork.TESTNET,
    "signet": BitcoinNetwork.SIGNET,
    "regtest": BitcoinNetwork.REGTEST,
}
_IDENTIFIER = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_HEX = re.compile(r"^[0-9a-f]*$")
_STATEMENT_FIELDS: Final = frozenset(
    {
        "format",
        "workspace",
        "party",
        "vault",
        "key_id",
        "scheme",
        "root_public_key",
        "chain_code",
        "min_signers",
        "max_signers",
        "path",
        "public_key",
        "encoding",
        "address",
    }
)
_ATTESTATION_FIELDS: Final = frozenset(
    {"party", "fingerprint", "identity", "statement", "signature"}
)


class AddressAttestationError(PolicyError):
    """Root of the errors of address attestations."""


class MalformedAttestationError(AddressAttestationError):
    """A statement or attestation document that does not parse (a missing, unknown or
    wrongly typed field)."""


class DerivationError(AddressAttestationError):
    """A path, encoding or key from which no address can be derived: a hardened or
    non-canonical path, one deeper than :data:`MAX_PATH_DEPTH`, a FROST key away from
    the root, an encoding for another scheme, or key bytes that are not a key."""


class UnpinnedCosignerError(AddressAttestationError):
    """An attestation by a party the client did not pin, or under another identity than
    the one it pinned for that party."""


class BadAttestationSignatureError(AddressAttestationError):
    """An attestation whose signature does not verify under its identity."""


class AttestationMismatchError(AddressAttestationError):
    """A validly signed statement about another address, vault, path or workspace, or
    whose address is not the encoding of the key derived along its path."""


# --- Addresses from keys -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AddressEncoding:
    """How a public key becomes an address.

    ``ethereum``: EIP-55 of keccak256 of the uncompressed secp256k1 key (every EVM
    network); ``bitcoin-p2wpkh:<network>``: bech32 P2WPKH of HASH160 of the compressed
    key (BIP84 style); ``bitcoin-p2tr:<network>``: bech32m key-path P2TR of the x-only
    key with the BIP86-style tweak; ``solana``: base58 of the Ed25519 key. ``network``
    is ``mainnet``, ``testnet``, ``signet`` or ``regtest`` for Bitcoin, else ``None``.
    """

    kind: Literal["ethereum", "solana", "bitcoin-p2wpkh", "bitcoin-p2tr"]
    network: str | None = None

    def __str__(self) -> str:
        return self.kind if self.network is None else f"{self.kind}:{self.network}"

    @property
    def scheme(self) -> Scheme:
        """The scheme of the keys this encoding applies to."""
        if self.kind in ("ethereum", "bitcoin-p2wpkh"):
            return "ecdsa-secp256k1"
        if self.kind == "solana":
            return "eddsa-ed25519"
        return "schnorr-bip340"

    def encode(self, public_key: bytes) -> str:
        """The address of ``public_key`` (the scheme's chain encoding of the key).

        Raises:
            DerivationError: bytes that are not a key of this encoding's scheme.
        """
        try:
            if self.kind == "ethereum":
                return address_from_public_key(_compressed(public_key)).checksummed
            if self.kind == "solana":
                return str(Pubkey(public_key))
            network = _BITCOIN_NETWORKS[str(self.network)]
            if self.kind == "bitcoin-p2wpkh":
                return encode_segwit_address(network, 0, hash160(_compressed(public_key)))
            return p2tr_address(public_key, network)
        except ChainError as exc:
            raise DerivationError(f"no {self} address for this key: {exc}") from None


def _compressed(public_key: bytes) -> bytes:
    if len(public_key) != 33:
        raise DerivationError("a secp256k1 key here is 33 bytes (compressed)")
    return public_key


def parse_encoding(text: object) -> AddressEncoding:
    """Read an encoding name (:class:`AddressEncoding`).

    Raises:
        DerivationError: not one of the names above.
    """
    if text in ("ethereum", "solana"):
        return AddressEncoding(text)
    if isinstance(text, str):
        kind, _, network = text.partition(":")
        if kind in ("bitcoin-p2wpkh", "bitcoin-p2tr") and network in _BITCOIN_NETWORKS:
            return AddressEncoding(kind, network)  # type: ignore[arg-type]
    names = "ethereum, solana, bitcoin-p2wpkh:<network>, bitcoin-p2tr:<network>"
    raise DerivationError(f"unknown address encoding {str(text)[:40]!r} (one of {names})")


def bitcoin_encoding_network(network: BitcoinNetwork) -> str:
    """The encoding suffix (``regtest``...) of a Bitcoin network."""
    return next(name for name, value in _BITCOIN_NETWORKS.items() if value is network)


def canonical_path(path: object) -> str:
    """``path`` if it is a canonical non-hardened path of at most :data:`MAX_PATH_DEPTH`
    steps (``m``, ``m/44/60/0/0/7``).

    Raises:
        DerivationError: anything else (hardened steps, leading zeros, spaces, too deep).
    """
    if not isinstance(path, str) or len(path) > 200:
        raise DerivationError("a path is a string such as m/44/60/0/0/7")
    try:
        indices = parse_path(path)
    except CryptoError as exc:
        raise DerivationError(f"path {path!r}: {exc}") from None
    if len(indices) > MAX_PATH_DEPTH:
        raise DerivationError(f"path {path!r} is deeper than {MAX_PATH_DEPTH} steps")
    canonical = "/".join(["m", *(str(i) for i in indices)])
    if canonical != path:
        raise DerivationError(f"path {path!r} is not in canonical form ({canonical!r})")
    return canonical


def derive_public_key(
    scheme: Scheme, root_public_key: bytes, chain_code: bytes, path: str
) -> bytes:
    """The public key at ``path`` of a key with ``root_public_key`` and ``chain_code``.

    ECDSA: BIP32 ``CKDpub`` along the path, 33-byte compressed; FROST: the root key
    itself, at ``m`` only (co-signers sign with FROST keys at the root).

    Raises:
        DerivationError: a path :func:`canonical_path` refuses, a FROST key away from
            the root, a root key that is not a point, or BIP32's invalid child.
    """
    indices = parse_path(canonical_path(path))
    if scheme != "ecdsa-secp256k1":
        if indices:
            raise DerivationError(f"a {scheme} key is used at the root (m) only, not {path!r}")
        if len(root_public_key) != 32:
            raise DerivationError(f"a {scheme} key is 32 bytes")
        return root_public_key
    if len(chain_code) != 32:
        raise DerivationError("a chain code is 32 bytes")
    try:
        _, child, _ = derive_path(SECP256K1.decode_point(root_public_key), chain_code, indices)
    except CryptoError as exc:
        raise DerivationError(f"no key at {path!r}: {exc}") from None
    return child.to_bytes()


# --- Statements ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AddressStatement:
    """What one co-signer attests: at ``path``, key ``key_id`` of ``vault`` (whose root
    public key and chain code it holds a share of) has ``public_key`` and ``address``."""

    workspace: str
    party: int
    vault: str
    key_id: str
    scheme: Scheme
    root_public_key: bytes
    chain_code: bytes
    min_signers: int
    max_signers: int
    path: str
    public_key: bytes
    encoding: AddressEncoding
    address: str

    def to_document(self) -> dict[str, object]:
        """The statement's JSON document (module docstring)."""
        return {
            "format": ATTESTATION_FORMAT,
            "workspace": self.workspace,
            "party": self.party,
            "vault": self.vault,
            "key_id": self.key_id,
            "scheme": self.scheme,
            "root_public_key": self.root_public_key.hex(),
            "chain_code": self.chain_code.hex(),
            "min_signers": self.min_signers,
            "max_signers": self.max_signers,
            "path": self.path,
            "public_key": self.public_key.hex(),
            "encoding": str(self.encoding),
            "address": self.address,
        }

    def signing_message(self) -> bytes:
        """The bytes the co-signer signs: the domain, then the canonical document."""
        return ATTESTATION_DOMAIN + canonical_json(self.to_document())

    def check_consistent(self) -> None:
        """Recompute the key along the path and the address from the key.

        Raises:
            AttestationMismatchError: ``public_key`` or ``address`` is not what the root
                key, chain code, path and encoding give.
        """
        try:
            derived = derive_public_key(
                self.scheme, self.root_public_key, self.chain_code, self.path
            )
            address = self.encoding.encode(derived)
        except DerivationError as exc:
            raise AttestationMismatchError(f"the statement derives nothing: {exc}") from None
        if derived != self.public_key:
            raise AttestationMismatchError("public_key is not the key derived along the path")
        if address != self.address:
            raise AttestationMismatchError(
                f"address is not the {self.encoding} address of the attested key"
            )


def make_statement(
    *,
    workspace: str,
    party: int,
    vault: str,
    key_id: str,
    scheme: Scheme,
    root_public_key: bytes,
    chain_code: bytes,
    min_signers: int,
    max_signers: int,
    path: str,
    encoding: AddressEncoding,
) -> AddressStatement:
    """The statement a co-signer signs: the key at ``path`` and its address, computed
    here from the public key material, never taken from anyone.

    Raises:
        DerivationError: the path cannot be derived, or the encoding is for another
            scheme than the key's.
    """
    if encoding.scheme != scheme:
        raise DerivationError(f"{encoding} addresses are for {encoding.scheme} keys, not {scheme}")
    public_key = derive_public_key(scheme, root_public_key, chain_code, path)
    return AddressStatement(
        workspace=workspace,
        party=party,
        vault=vault,
        key_id=key_id,
        scheme=scheme,
        root_public_key=root_public_key,
        chain_code=chain_code,
        min_signers=min_signers,
        max_signers=max_signers,
        path=path,
        public_key=public_key,
        encoding=encoding,
        address=encoding.encode(public_key),
    )


def _text(data: Mapping[str, object], name: str, where: str) -> str:
    value = data.get(name)
    if not isinstance(value, str) or not _IDENTIFIER.match(value):
        raise MalformedAttestationError(
            "expected an identifier of 1 to 128 characters", path=f"{where}.{name}"
        )
    return value


def _int(data: Mapping[str, object], name: str, where: str, low: int, high: int) -> int:
    value = data.get(name)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise MalformedAttestationError(
            f"expected an integer {low} to {high}", path=f"{where}.{name}"
        )
    return value


def _hex(data: Mapping[str, object], name: str, where: str, sizes: Iterable[int]) -> bytes:
    value = data.get(name)
    allowed = tuple(sizes)
    if not isinstance(value, str) or not _HEX.match(value) or len(value) // 2 not in allowed:
        raise MalformedAttestationError(
            f"expected {' or '.join(map(str, allowed))} bytes of lowercase hex",
            path=f"{where}.{name}",
        )
    return bytes.fromhex(value)


def parse_statement(data: object, where: str = "statement") -> AddressStatement:
    """Read a statement document (exactly the fields of the module docstring).

    Raises:
        MalformedAttestationError: a missing, unknown or wrongly typed field.
    """
    if not isinstance(data, Mapping) or set(data) != _STATEMENT_FIELDS:
        raise MalformedAttestationError(
            f"expected exactly the fields {sorted(_STATEMENT_FIELDS)}", path=where
        )
    if data["format"] != ATTESTATION_FORMAT:
        raise MalformedAttestationError(f"expected {ATTESTATION_FORMAT!r}", path=f"{where}.format")
    scheme = data["scheme"]
    if scheme not in SCHEMES:
        raise MalformedAttestationError(f"expected one of {SCHEMES}", path=f"{where}.scheme")
    path, address = data["path"], data["address"]
    if not isinstance(path, str) or not 1 <= len(path) <= 200:
        raise MalformedAttestationError("expected a derivation path", path=f"{where}.path")
    if not isinstance(address, str) or not 1 <= len(address) <= 128:
        raise MalformedAttestationError("expected an address", path=f"{where}.address")
    try:
        encoding = parse_encoding(data["encoding"])
    except DerivationError as exc:
        raise MalformedAttestationError(exc.reason, path=f"{where}.encoding") from None
    return AddressStatement(
        workspace=_text(data, "workspace", where),
        party=_int(data, "party", where, 1, 2**16 - 1),
        vault=_text(data, "vault", where),
        key_id=_text(data, "key_id", where),
        scheme=scheme,
        root_public_key=_hex(data, "root_public_key", where, (32, 33)),
        chain_code=_hex(data, "chain_code", where, (32,)),
        min_signers=_int(data, "min_signers", where, 1, 2**16 - 1),
        max_signers=_int(data, "max_signers", where, 1, 2**16 - 1),
        path=path,
        public_key=_hex(data, "public_key", where, (32, 33)),
        encoding=encoding,
        address=address,
    )


# --- Signed attestations -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SignedAttestation:
    """A statement, the identity of the co-signer that signed it, and the signature."""

    statement: AddressStatement
    identity: PublicIdentity
    signature: bytes

    @property
    def party(self) -> int:
        """The party the statement names."""
        return self.statement.party

    def to_json(self) -> dict[str, object]:
        """The transport form: ``{party, fingerprint, identity, statement, signature}``
        (the fingerprint is the identity's, for people to read; clients recompute it)."""
        return {
            "party": self.statement.party,
            "fingerprint": self.identity.fingerprint(),
            "identity": self.identity.to_json(),
            "statement": self.statement.to_document(),
            "signature": self.signature.hex(),
        }


def sign_statement(identity: PartyIdentity, statement: AddressStatement) -> SignedAttestation:
    """Sign ``statement`` with a co-signer's identity key.

    Raises:
        DerivationError: the statement names another party than ``identity``'s.
    """
    if statement.party != identity.party:
        raise DerivationError("a co-signer attests under its own party id only")
    return SignedAttestation(statement, identity.public, identity.sign(statement.signing_message()))


def parse_attestation(data: object, where: str = "attestation") -> SignedAttestation:
    """Read the transport form of :meth:`SignedAttestation.to_json`.

    Raises:
        MalformedAttestationError: a missing, unknown or wrongly typed field, an
            identity whose binding does not verify, or a ``party`` or ``fingerprint``
            that is not the statement's or the identity's.
    """
    if not isinstance(data, Mapping) or set(data) != _ATTESTATION_FIELDS:
        raise MalformedAttestationError(
            f"expected exactly the fields {sorted(_ATTESTATION_FIELDS)}", path=where
        )
    statement = parse_statement(data["statement"], f"{where}.statement")
    identity_doc = data["identity"]
    if not isinstance(identity_doc, Mapping):
        raise MalformedAttestationError("expected an identity", path=f"{where}.identity")
    try:
        identity = PublicIdentity.from_json(identity_doc)
    except CryptoError as exc:
        raise MalformedAttestationError(
            f"identity refused: {exc}", path=f"{where}.identity"
        ) from None
    if data["party"] != statement.party:
        raise MalformedAttestationError("not the statement's party", path=f"{where}.party")
    if data["fingerprint"] != identity.fingerprint():
        raise MalformedAttestationError(
            "not the identity's fingerprint", path=f"{where}.fingerprint"
        )
    signature = _hex(data, "signature", where, (64,))
    return SignedAttestation(statement, identity, signature)


# --- What a client checks ------------------------------------------------------------


def normalize_fingerprint(text: str) -> str:
    """A fingerprint as :meth:`PublicIdentity.fingerprint` prints it (lowercase hex in
    groups of four), from any spacing or case."""
    compact = "".join(text.split()).lower()
    return " ".join(compact[i : i + 4] for i in range(0, len(compact), 4))


@dataclass(frozen=True, slots=True)
class PinnedCosigners:
    """The co-signers a client trusts, by party id: the fingerprint of each one's
    identity, as its operator read it on the co-signer's own host."""

    fingerprints: Mapping[int, str]

    @classmethod
    def of(cls, fingerprints: Mapping[int, str]) -> PinnedCosigners:
        """Pins from ``{party: fingerprint}`` (spacing and case do not matter)."""
        return cls({int(p): normalize_fingerprint(f) for p, f in fingerprints.items()})


@dataclass(frozen=True, slots=True)
class ExpectedAddress:
    """What the client was shown and wants attested; ``workspace`` when it knows it,
    and ``root_public_key`` when it pinned the vault's key (its chain encoding)."""

    address: str
    vault: str
    path: str
    workspace: str | None = None
    root_public_key: bytes | None = None


def verify_attestation(
    attestation: SignedAttestation, expected: ExpectedAddress, pinned: PinnedCosigners
) -> None:
    """Check one attestation as the module docstring says (steps 1 to 4).

    Raises:
        UnpinnedCosignerError: a party not pinned, or another identity than the pinned.
        BadAttestationSignatureError: the signature does not verify.
        AttestationMismatchError: another address, vault, path, workspace or vault
            key, or a statement whose key or address does not follow from its root key.
    """
    statement = attestation.statement
    party = statement.party
    fingerprint = pinned.fingerprints.get(party)
    if fingerprint is None:
        raise UnpinnedCosignerError(f"party {party} is not a pinned co-signer")
    if attestation.identity.fingerprint() != fingerprint:
        raise UnpinnedCosignerError(
            f"party {party} signed with identity {attestation.identity.fingerprint()!r}, "
            "not the pinned one"
        )
    try:
        VerifyKey(attestation.identity.signing_key).verify(
            statement.signing_message(), attestation.signature
        )
    except (BadSignatureError, NaclCryptoError, ValueError, TypeError):
        raise BadAttestationSignatureError(
            f"party {party}: the signature does not verify"
        ) from None
    root = None if expected.root_public_key is None else expected.root_public_key.hex()
    for name, wanted, attested in (
        ("address", expected.address, statement.address),
        ("vault", expected.vault, statement.vault),
        ("path", expected.path, statement.path),
        ("workspace", expected.workspace, statement.workspace),
        ("vault key", root, statement.root_public_key.hex()),
    ):
        if wanted is not None and wanted != attested:
            raise AttestationMismatchError(
                f"party {party} attests {name} {attested!r}, not {wanted!r}"
            )
    statement.check_consistent()


@dataclass(frozen=True, slots=True)
class AttestationTally:
    """How many pinned co-signers attest an address, and why the others do not count."""

    parties: tuple[int, ...]
    """The distinct pinned parties whose attestations verified."""
    required: int
    """How many must: the client's floor, or the largest ``min_signers`` attested."""
    pinned: int
    """How many co-signers the client pinned."""
    refused: tuple[str, ...]
    """Why each attestation that did not count was refused."""
    public_key: bytes | None = None
    """The attested key of the address (when any attestation counted)."""
    root_public_key: bytes | None = None
    """The vault's root key it derives from (when any attestation counted)."""

    @property
    def verified(self) -> bool:
        """Whether enough distinct pinned co-signers attest the address."""
        return len(self.parties) >= self.required

    def summary(self) -> str:
        """``verified (2 of 3 co-signers)`` or ``UNVERIFIED (...)``, for people."""
        if self.verified:
            return f"verified ({len(self.parties)} of {self.pinned} co-signers)"
        return (
            f"UNVERIFIED ({len(self.parties)} of the {self.required} co-signer attestations needed)"
        )


def tally_attestations(
    attestations: Sequence[object],
    expected: ExpectedAddress,
    pinned: PinnedCosigners,
    *,
    min_signers: int = MIN_ATTESTATIONS,
) -> AttestationTally:
    """Count the attestations (transport form) of ``expected`` by distinct pinned
    co-signers; each one that does not count is named in ``refused`` with its reason.
    ``min_signers`` is the client's floor (raised to :data:`MIN_ATTESTATIONS`); a
    counted statement's own ``min_signers`` can only raise it. Never raises for bad
    input: a malformed attestation is one that does not count.
    """
    required = max(min_signers, MIN_ATTESTATIONS)
    counted: list[int] = []
    refused: list[str] = []
    public_key: bytes | None = None
    root_public_key: bytes | None = None
    for index, raw in enumerate(attestations):
        try:
            attestation = parse_attestation(raw, f"attestations[{index}]")
            verify_attestation(attestation, expected, pinned)
        except AddressAttestationError as exc:
            refused.append(f"{type(exc).__name__}: {exc}")
            continue
        if attestation.party in counted:
            refused.append(f"party {attestation.party} attested twice; counted once")
            continue
        counted.append(attestation.party)
        required = max(required, attestation.statement.min_signers)
        public_key = attestation.statement.public_key
        root_public_key = attestation.statement.root_public_key
    return AttestationTally(
        tuple(sorted(counted)),
        required,
        len(pinned.fingerprints),
        tuple(refused),
        public_key,
        root_public_key,
    )
