"""CGGMP21 threshold ECDSA (Canetti, Gennaro, Goldfeder, Makriyannis, Peled, "UC
Non-Interactive, Proactive, Threshold ECDSA with Identifiable Aborts", ePrint 2021/060).

One module per phase, as sans-I/O round objects: ``aux_info`` (Figure 7, auxiliary
information: Paillier-Blum moduli and ring-Pedersen parameters with Πmod, Πprm and Πfac),
key generation, refresh, presigning and signing. The zero-knowledge proofs live in
:mod:`shardvault.crypto.zk`, Paillier in :mod:`shardvault.crypto.paillier`.
"""

from shardvault.crypto.protocols.cggmp21.aux_info import (
    AuxInfo,
    AuxInfoConfig,
    AuxInfoRound1,
    AuxInfoRound2,
    AuxInfoRound3,
    PartyAuxPublic,
)

__all__ = [
    "AuxInfo",
    "AuxInfoConfig",
    "AuxInfoRound1",
    "AuxInfoRound2",
    "AuxInfoRound3",
    "PartyAuxPublic",
]

# Key generation, key shares, refresh, presigning, signing and BIP32 derivation (the
# threshold-ECDSA phases built on the auxiliary info above).
from shardvault.crypto.protocols.cggmp21.bip32 import derive_key_share, root_xpub
from shardvault.crypto.protocols.cggmp21.keygen import KeygenOutput, KeygenRound1
from shardvault.crypto.protocols.cggmp21.keyshare import KeyShare
from shardvault.crypto.protocols.cggmp21.presign import PresignRound1
from shardvault.crypto.protocols.cggmp21.presignature import Presignature
from shardvault.crypto.protocols.cggmp21.refresh import RefreshRound1
from shardvault.crypto.protocols.cggmp21.sign import EcdsaSignature, SignRound

__all__ += [
    "EcdsaSignature",
    "KeyShare",
    "KeygenOutput",
    "KeygenRound1",
    "PresignRound1",
    "Presignature",
    "RefreshRound1",
    "SignRound",
    "derive_key_share",
    "root_xpub",
]
