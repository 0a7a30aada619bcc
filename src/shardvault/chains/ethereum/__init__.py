"""Ethereum and EVM chains: addresses, transactions, calldata, messages (pure, no I/O).

Implements EIP-55 addresses, legacy EIP-155, EIP-2930 and EIP-1559 transactions (build,
signing digest, assembly from (r, s, v), parsing and summaries), Solidity ABI calldata
with ERC-20 built in, EIP-191 ``personal_sign`` and EIP-712 v4 typed data. Signing itself
happens elsewhere (MPC, KMS, HSM): this package produces digests and accepts signatures.
"""

from shardvault.chains.ethereum.abi import (
    ERC20_APPROVE,
    ERC20_FUNCTIONS,
    ERC20_TRANSFER,
    AbiFunction,
    AbiParameter,
    AbiValue,
    DecodedCall,
    abi_value_to_json,
    decode_arguments,
    decode_call,
    encode_call,
    function,
    functions_from_json_abi,
)
from shardvault.chains.ethereum.address import (
    Address,
    address_from_public_key,
    parse_address,
    to_checksum,
)
from shardvault.chains.ethereum.build import (
    FeeParameters,
    contract_call,
    erc20_approve,
    erc20_transfer,
    native_transfer,
    parse_ether,
    parse_token_amount,
)
from shardvault.chains.ethereum.describe import describe
from shardvault.chains.ethereum.digest import signing_hash
from shardvault.chains.ethereum.encode import (
    encode_signed,
    encode_unsigned,
    signing_payload,
    transaction_hash,
)
from shardvault.chains.ethereum.errors import InvalidFieldError
from shardvault.chains.ethereum.message import (
    decode_message_signature,
    encode_message_signature,
    personal_message_hash,
    recover_message_signer,
)
from shardvault.chains.ethereum.models import (
    AccessListEntry,
    AccessListTransaction,
    FeeMarketTransaction,
    LegacyTransaction,
    Signature,
    SignedTransaction,
    Transaction,
)
from shardvault.chains.ethereum.networks import (
    KNOWN_NETWORKS,
    WELL_KNOWN_NAMES,
    EvmNetwork,
    network_for,
    well_known,
)
from shardvault.chains.ethereum.parse import ParsedTransaction, parse_hex, parse_transaction
from shardvault.chains.ethereum.signature import (
    assemble,
    assemble_from_v,
    assemble_with_public_key,
    normalize_s,
    recover_public_key,
    recover_sender,
    signature_for_public_key,
)
from shardvault.chains.ethereum.summary import TransactionSummary, summarize
from shardvault.chains.ethereum.typed_data import (
    TypedData,
    domain_separator,
    encode_data,
    encode_type,
    hash_struct,
    parse_typed_data,
    type_hash,
    typed_data_hash,
)

__all__ = [
    "ERC20_APPROVE",
    "ERC20_FUNCTIONS",
    "ERC20_TRANSFER",
    "KNOWN_NETWORKS",
    "WELL_KNOWN_NAMES",
    "AbiFunction",
    "AbiParameter",
    "AbiValue",
    "AccessListEntry",
    "AccessListTransaction",
    "Address",
    "DecodedCall",
    "EvmNetwork",
    "FeeMarketTransaction",
    "FeeParameters",
    "InvalidFieldError",
    "LegacyTransaction",
    "ParsedTransaction",
    "Signature",
    "SignedTransaction",
    "Transaction",
    "TransactionSummary",
    "TypedData",
    "abi_value_to_json",
    "address_from_public_key",
    "assemble",
    "assemble_from_v",
    "assemble_with_public_key",
    "contract_call",
    "decode_arguments",
    "decode_call",
    "decode_message_signature",
    "describe",
    "domain_separator",
    "encode_call",
    "encode_data",
    "encode_message_signature",
    "encode_signed",
    "encode_type",
    "encode_unsigned",
    "erc20_approve",
    "erc20_transfer",
    "function",
    "functions_from_json_abi",
    "hash_struct",
    "native_transfer",
    "network_for",
    "normalize_s",
    "parse_address",
    "parse_ether",
    "parse_hex",
    "parse_token_amount",
    "parse_transaction",
    "parse_typed_data",
    "personal_message_hash",
    "recover_message_signer",
    "recover_public_key",
    "recover_sender",
    "signature_for_public_key",
    "signing_hash",
    "signing_payload",
    "summarize",
    "to_checksum",
    "transaction_hash",
    "type_hash",
    "typed_data_hash",
    "well_known",
]
