"""A Solana transfer through the pipeline, signed by a 2-of-3 FROST (Ed25519) vault through
the local ceremony backend, and verified, not broadcast (no Solana node runs here): the
policy sees the transfer decoded from the built message, the transaction ends in
``signed`` and solders (an independent implementation) parses the signed wire bytes,
finds exactly the requested System transfer and verifies the signature.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from solders.instruction import AccountMeta, Instruction
from solders.pubkey import Pubkey
from solders.system_program import decode_transfer
from solders.transaction import Transaction as SoldersTransaction

from shardvault.service import transactions, vaults, wallets
from shardvault.service.errors import ValidationError
from shardvault.service.pipeline import PipelineRuntime, PipelineWorker
from shardvault.service.signing import LocalCeremonyBackend
from shardvault.store import Database
from tests.api.support import make_platform
from tests.service.pipeline_support import activate_policy, make_workspace, open_custody

ALLOW_ALL = {
    "format": "shardvault.policy/v1",
    "version": 1,
    "reference_currency": "USD",
    "rules": [
        {
            "name": "sol-small",
            "when": {"asset": ["SOL"], "amount": {"up_to": "2"}},
            "action": "allow",
        }
    ],
}


def test_solana_transfer_is_signed_and_verified_not_broadcast(
    database: Database, tmp_path: Path
) -> None:
    platform = make_platform(database)
    ws = make_workspace(platform)
    owner = ws.owner.principal
    backend = LocalCeremonyBackend(open_custody(tmp_path / "custody"))
    with platform.unit_of_work() as uow:
        vaults.configure_network(uow, owner, name="solana", kind="solana")
        vaults.configure_network(uow, owner, name="hardhat", kind="evm", chain_id=31337)
        vaults.add_asset(uow, owner, symbol="SOL", network="solana")
    vault_id = str(uuid.uuid4())
    keys = vaults.generate_vault_keys(
        backend,
        workspace_id=owner.workspace_id,
        vault_id=vault_id,
        schemes=["eddsa-ed25519"],
        min_signers=2,
        max_signers=3,
    )
    with platform.unit_of_work() as uow:
        vaults.record_vault(
            uow, owner, vault_id=vault_id, name="sol", keys=keys, backend_name=backend.name
        )
        wallet = wallets.create_wallet(uow, owner, vault_id=vault_id, asset="SOL")
    activate_policy(ws, ALLOW_ALL)
    recipient = str(Pubkey.new_unique())
    with pytest.raises(ValidationError), platform.unit_of_work() as uow:
        transactions.create_transaction(
            uow, ws.signer.principal, wallet_id=wallet.id, destination="not-base58!", amount="1"
        )
    with pytest.raises(ValidationError), platform.unit_of_work() as uow:
        transactions.create_transaction(
            uow,
            ws.signer.principal,
            wallet_id=wallet.id,
            destination=recipient,
            amount="0.0000000001",
        )
    with platform.unit_of_work() as uow:
        small = transactions.create_transaction(
            uow, ws.signer.principal, wallet_id=wallet.id, destination=recipient, amount="1.25"
        )
        large = transactions.create_transaction(
            uow, ws.signer.principal, wallet_id=wallet.id, destination=recipient, amount="3"
        )
    PipelineWorker(platform, PipelineRuntime(backend)).drain(timeout_s=30)
    with platform.unit_of_work() as uow:
        signed = transactions.get_transaction(uow, owner, small.id)
        blocked = transactions.get_transaction(uow, owner, large.id)
    assert blocked.status == "blocked"  # 3 SOL is over the rule's limit: default deny
    assert signed.status == "signed"
    assert signed.status_reason is not None
    assert "not broadcast" in signed.status_reason
    assert signed.signed_payload is not None
    wire = SoldersTransaction.from_bytes(bytes.fromhex(signed.signed_payload))
    wire.verify()
    assert str(wire.message.account_keys[0]) == wallet.addresses[0].address
    (instruction,) = wire.message.instructions
    keys_of = wire.message.account_keys
    metas = [AccountMeta(keys_of[i], i == 0, True) for i in instruction.accounts]
    params = decode_transfer(
        Instruction(keys_of[instruction.program_id_index], bytes(instruction.data), metas)
    )
    assert str(params["to_pubkey"]) == recipient
    assert params["lamports"] == 1_250_000_000
    assert signed.tx_hash == str(wire.signatures[0])
