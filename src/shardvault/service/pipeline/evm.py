"""EVM networks: EIP-1559 transfers (native and ERC-20) with nonces from the ledger.

Nonce: allocated in the unit of work that moves ``approved -> signing`` and recorded on
the transaction; confirmed in the one that moves ``broadcasting -> confirming``; released
only when no signed bytes can be on any node (signing failed, or the node refused them).

Signatures finish out of nonce order; a node that refuses a nonce gap makes the later
transaction wait for the earlier one (woken when it goes out from this runtime), never
fail.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import Any

from eth_hash.auto import keccak

from shardvault.chains.ethereum import (
    assemble_with_public_key,
    encode_signed,
    signing_hash,
    transaction_hash,
)
from shardvault.lifecycle import TransactionStatus
from shardvault.policy import TransactionRequest
from shardvault.service.chainclients import (
    RpcResponseError,
    RpcTransportError,
    TransactionRejectedError,
)
from shardvault.service.chainclients.ethereum import (
    AlreadyKnownError,
    NonceTooHighError,
    NonceTooLowError,
    Receipt,
    RpcCall,
    block_hash_call,
    block_number_call,
    receipt_call,
    transaction_known_call,
)
from shardvault.service.nonce_store import (
    account_key,
    allocate_in,
    prefetch_in,
    settle_if_in_flight,
)
from shardvault.service.pipeline.chain import (
    Dropped,
    Observed,
    Seen,
    Sent,
    Signed,
    SignPart,
    Version,
)
from shardvault.service.pipeline.evm_payload import (
    TEMPLATE_FEES,
    ChainState,
    build_chain_transaction,
    chain_state,
    chain_tx_from_payload,
    fee_parameters,
    known_on_chain,
    payload_json,
    policy_request,
)
from shardvault.service.pipeline.evm_replace import EvmReplacing
from shardvault.service.pipeline.loading import Loaded, before_nonces
from shardvault.service.pipeline.outcomes import Later
from shardvault.service.pipeline.runtime import (
    NodeRefusal,
    PipelineFault,
    PipelineRuntime,
)
from shardvault.service.platform import Platform
from shardvault.service.uow import UnitOfWork
from shardvault.service.work_signal import work_committed
from shardvault.store.models_vaults import Network, NetworkKind, NonceState
from shardvault.store.repositories_vaults import NonceLedger, WorkQueue

_log = logging.getLogger("shardvault.pipeline")

GAP_WAIT_MAX_S = 30.0
"""The longest wait between sends of a transaction refused for a nonce gap."""

ORDER_WAIT_MAX_S = 5.0
"""The longest a send waits for this runtime to send the previous nonce first."""


def _chain_key(loaded: Loaded) -> tuple[str, str]:
    """Whose chain state a transfer's serialization needs: (node URL, source address)."""
    return str(loaded.network.rpc_url), loaded.source.address


def wake_successor(
    runtime: PipelineRuntime, uow: UnitOfWork, chain_id: int, address: str, nonce: int
) -> None:
    """Make the transaction waiting for ``nonce`` to go out (its send was refused for the
    gap) due now, in ``uow``; before the audit head and the nonce counter are locked,
    since other transactions write a queue row before they lock those (a confirmation
    that queued the successor after its audit event deadlocked on PostgreSQL)."""
    successor = runtime.gaps.successor(chain_id, address, nonce)
    if successor is not None:
        WorkQueue(uow.session).enqueue(*successor)
        uow.after_commit(work_committed)


class EvmAdapter(EvmReplacing):
    """EIP-1559 transfers on any EVM network (module docstring)."""

    kind = NetworkKind.EVM
    serializes_with_policy = True
    serialize_locks_workspace = False
    payload_names_network = True

    def template_request(self, loaded: Loaded, *, initiator: str, vault: str) -> TransactionRequest:
        template = build_chain_transaction(loaded, nonce=0, fees=TEMPLATE_FEES)
        return policy_request(loaded, template, initiator=initiator, vault=vault)

    def prepare(
        self, runtime: PipelineRuntime, platform: Platform, loaded: Loaded
    ) -> ChainState | Later:
        try:
            return chain_state(runtime, loaded)
        except (RpcTransportError, RpcResponseError) as exc:
            _log.warning("node unreachable before serializing %s: %s", loaded.tx.id, exc)
            return Later(runtime.broadcast_retry_s)

    def prepare_many(self, runtime: PipelineRuntime, loads: Sequence[Loaded]) -> dict[str, object]:
        """What the node says of each source address among ``loads``, asked once per
        address; an address whose node cannot answer is left out (its transfers are
        still evaluated, and serialized by a later step)."""
        states: dict[tuple[str, str], ChainState] = {}
        failed: set[tuple[str, str]] = set()
        out: dict[str, object] = {}
        for loaded in loads:
            key = _chain_key(loaded)
            if key not in states and key not in failed:
                try:
                    states[key] = chain_state(runtime, loaded)
                except (RpcTransportError, RpcResponseError) as exc:
                    _log.warning("node unreachable before serializing %s: %s", loaded.tx.id, exc)
                    failed.add(key)
            if key in states:
                out[loaded.tx.id] = states[key]
        return out

    def serialize_in(
        self,
        runtime: PipelineRuntime,
        uow: UnitOfWork,
        locked: Loaded,
        prepared: object,
        initiator: str,
    ) -> dict[str, object] | None:
        """Allocate the nonce, build the EIP-1559 transaction, check it does what the
        policy evaluated, and store it (the caller moves ``approved -> signing``)."""
        assert isinstance(prepared, ChainState)
        chain_id = locked.network.chain_id
        assert chain_id is not None
        fees = fee_parameters(runtime, locked, prepared)
        chain_key, account = account_key(chain_id, locked.source.address)
        before_nonces(uow, locked.tx.workspace_id)
        NonceLedger(uow.session).observe(chain_key, account, prepared.pending)
        nonce = allocate_in(uow.session, chain_id, locked.source.address)
        chain_tx = build_chain_transaction(locked, nonce=nonce, fees=fees)
        # The transaction to be signed must do exactly what the policy evaluated.
        policy_request(locked, chain_tx, initiator=initiator, vault=locked.tx.vault_id)
        tx = locked.tx
        tx.nonce = nonce
        tx.chain_payload = payload_json(chain_tx)
        tx.digest = signing_hash(chain_tx).hex()
        return {"nonce": nonce, "digest": tx.digest, "gas_limit": fees.gas_limit}

    def sign_parts(self, loaded: Loaded, initiator: str) -> list[SignPart]:
        assert loaded.tx.chain_payload is not None
        chain_tx = chain_tx_from_payload(loaded.tx.chain_payload)
        payload = bytes.fromhex(json.loads(loaded.tx.chain_payload)["signing_payload"])
        if bytes(keccak(payload)) != signing_hash(chain_tx):
            raise PipelineFault("the stored signing payload does not match the transaction")
        return [SignPart("ecdsa-secp256k1", "ethereum_transaction", payload)]

    def assemble(
        self, chain_payload: str, public_key: bytes, signatures: Sequence[bytes]
    ) -> Signed:
        """Recovery finds the parity, which proves the signature is by this address's
        key over this digest.

        Raises:
            ChainError: it does not verify.
        """
        (signature,) = signatures
        chain_tx = chain_tx_from_payload(chain_payload)
        r = int.from_bytes(signature[:32], "big")
        s = int.from_bytes(signature[32:64], "big")
        signed = assemble_with_public_key(chain_tx, r, s, public_key)
        return Signed(
            signature=signed.signature.to_bytes().hex(),
            signed_payload=encode_signed(signed).hex(),
            tx_hash=transaction_hash(signed).hex(),
        )

    def send(self, runtime: PipelineRuntime, loaded: Loaded, *, fresh: bool) -> Sent | Later:
        """Send the signed bytes (read in ``broadcasting``).

        Raises:
            PipelineFault: the node refused the transaction for good.
        """
        tx = loaded.tx
        tx_id, workspace_id = tx.id, tx.workspace_id
        chain_id, nonce = loaded.network.chain_id, tx.nonce
        address = loaded.source.address
        assert chain_id is not None
        assert nonce is not None
        assert tx.tx_hash is not None
        assert tx.signed_payload is not None
        assert loaded.network.rpc_url is not None
        tx_hash = bytes.fromhex(tx.tx_hash)
        client = runtime.ethereum_client(loaded.network)
        try:
            # On resume the transaction may already be out: never send before asking,
            # unless nothing can have been sent since this runtime last looked (it just
            # committed ``broadcasting``, or the node just refused the bytes for a gap).
            refusals = runtime.gaps.take_refusals(tx_id)
            if not (fresh or refusals > 0) and known_on_chain(client, tx_hash):
                return Sent("already_known")
            runtime.send_order.wait_turn(chain_id, address, nonce, ORDER_WAIT_MAX_S)
            try:
                returned = client.send_raw_transaction(bytes.fromhex(tx.signed_payload))
                if returned != tx_hash:
                    raise PipelineFault("the node reports another transaction hash")
            except AlreadyKnownError:
                return Sent("already_known")
            except NonceTooHighError:
                # The previous nonce has not reached the node yet: wait for it (woken
                # when it goes out from this runtime), never fail for it. The wait
                # grows, for a gap nothing here will fill (docs/transactions.md).
                refusals += 1
                log = _log.warning if refusals % 10 == 0 else _log.info
                log(
                    "broadcast of %s (nonce %d of %s) waits for nonce %d to reach the "
                    "node (%d refusals)",
                    tx_id, nonce, address, nonce - 1, refusals,
                )  # fmt: skip
                runtime.gaps.wait_for_previous(
                    chain_id, address, nonce, workspace_id, tx_id, refusals
                )
                wait = runtime.nonce_order_wait_s * float(2 ** min(refusals - 1, 16))
                return Later(min(wait, GAP_WAIT_MAX_S))
            except NonceTooLowError:
                if not known_on_chain(client, tx_hash):
                    raise PipelineFault(
                        "the node says the nonce is used, by another transaction"
                    ) from None
                return Sent("already_known")
            except TransactionRejectedError as exc:
                raise NodeRefusal(f"the node refused the transaction: {exc}") from None
        except RpcTransportError as exc:
            _log.warning("broadcast of %s: node unreachable (%s); retrying", tx_id, exc)
            return Later(runtime.broadcast_retry_s)
        finally:
            client.close()
        return Sent("sent")

    def before_sent_in(
        self, runtime: PipelineRuntime, uow: UnitOfWork, loads: Sequence[Loaded]
    ) -> None:
        """For a batch of sent transfers: the transfers next in line woken, the locks
        that come before the nonce counters taken once, and their nonce rows read in one
        query per address."""
        by_account: dict[tuple[int, str], list[int]] = {}
        for loaded in loads:
            chain_id, nonce = loaded.network.chain_id, loaded.tx.nonce
            if chain_id is not None and nonce is not None:
                by_account.setdefault((chain_id, loaded.source.address), []).append(nonce)
                wake_successor(runtime, uow, chain_id, loaded.source.address, nonce)
        if by_account:
            before_nonces(uow, loads[0].tx.workspace_id)
        for (chain_id, address), nonces in by_account.items():
            prefetch_in(uow.session, chain_id, address, nonces)

    def sent_in(self, runtime: PipelineRuntime, uow: UnitOfWork, loaded: Loaded) -> None:
        """The nonce confirmed in the ledger, and the transaction next in line for the
        address woken."""
        chain_id, nonce = loaded.network.chain_id, loaded.tx.nonce
        address = loaded.source.address
        assert chain_id is not None
        assert nonce is not None
        wake_successor(runtime, uow, chain_id, address, nonce)
        before_nonces(uow, loaded.tx.workspace_id)
        settle_if_in_flight(uow.session, chain_id, address, nonce, NonceState.CONFIRMED)

    def observe(self, runtime: PipelineRuntime, loads: Sequence[Loaded]) -> list[Observed]:
        """For confirming transfers of one node: each one's receipt once it has the
        network's confirmations in the canonical chain; :class:`Dropped` when the node
        has neither a receipt nor the transaction (its block was reorganised away);
        else the delay before looking again (:func:`observe_hashes`)."""
        return observe_hashes(
            runtime, loads[0].network, [bytes.fromhex(u.tx.tx_hash or "") for u in loads]
        )

    def observe_versions(
        self, runtime: PipelineRuntime, loaded: Loaded, versions: Sequence[Version]
    ) -> list[Observed]:
        """Each version's place in the chain, as :meth:`observe` (one nonce: at most one
        can be mined, and the node drops the others)."""
        return observe_hashes(runtime, loaded.network, [bytes.fromhex(v.tx_hash) for v in versions])

    def release_in(
        self, uow: UnitOfWork, loaded: Loaded, fault: PipelineFault
    ) -> dict[str, object]:
        """Release the nonce only if no signed bytes can be on any node: signing never
        finished, or the node refused the bytes (:class:`NodeRefusal`)."""
        tx = loaded.tx
        status = tx.status
        unused = (status is TransactionStatus.SIGNING and tx.tx_hash is None) or (
            status is TransactionStatus.BROADCASTING and isinstance(fault, NodeRefusal)
        )
        released = None
        if tx.nonce is not None and unused:
            chain_id = loaded.network.chain_id
            assert chain_id is not None
            before_nonces(uow, tx.workspace_id)
            if settle_if_in_flight(
                uow.session, chain_id, loaded.source.address, tx.nonce, NonceState.RELEASED
            ):
                released = tx.nonce
        return {"released_nonce": released}


def observe_hashes(
    runtime: PipelineRuntime, network: Network, tx_hashes: Sequence[bytes]
) -> list[Observed]:
    """Each transaction's receipt once it has ``network``'s confirmations in the
    canonical chain; :class:`Dropped` when the node has neither a receipt nor the
    transaction; else the delay before looking again. Receipts and the head in one
    JSON-RPC batch, the hashes of the blocks they name in one more, and the lookups of
    transactions without a receipt in a third."""
    poll = Later(runtime.confirmation_poll_s)
    assert network.rpc_url is not None
    client = runtime.ethereum_client(network)
    hashes: dict[int, bytes | None] = {}
    missing: dict[int, bool] = {}
    found: list[object] = []
    try:
        calls: list[RpcCall[Any]] = [receipt_call(h) for h in tx_hashes]
        *found, head = client.run_many([*calls, block_number_call()])
        numbers = sorted({r.block_number for r in found if isinstance(r, Receipt)})
        for number, answer in zip(
            numbers, client.run_many([block_hash_call(n) for n in numbers]), strict=True
        ):
            if answer is None or isinstance(answer, bytes):
                hashes[number] = answer
        unmined = [i for i, r in enumerate(found) if r is None]
        if unmined:
            known = client.run_many([transaction_known_call(tx_hashes[i]) for i in unmined])
            missing = {i: k is False for i, k in zip(unmined, known, strict=True)}
    except RpcTransportError:
        return [poll] * len(tx_hashes)
    finally:
        client.close()
    out: list[Observed] = []
    for i, receipt in enumerate(found):
        if missing.get(i):
            out.append(Dropped("the node has neither a receipt nor the transaction"))
        elif not isinstance(receipt, Receipt) or not isinstance(head, int):
            out.append(poll)
        elif hashes.get(receipt.block_number) != receipt.block_hash:
            out.append(poll)  # its block is not (or no longer) canonical
        else:
            confirmations = max(head - receipt.block_number + 1, 0)
            if confirmations < network.required_confirmations:
                out.append(poll)
            else:
                out.append(
                    Seen(
                        block_number=receipt.block_number,
                        confirmations=confirmations,
                        success=receipt.success,
                        details={
                            "block_number": receipt.block_number,
                            "block_hash": receipt.block_hash.hex(),
                            "confirmations": confirmations,
                            "gas_used": receipt.gas_used,
                        },
                    )
                )
    return out
