"""Fee caps: what a transaction may pay, as the signed policy sets it (DESIGN.md
invariant 12)."""

from __future__ import annotations

from shardvault.cosigner.errors import RequestRefused
from shardvault.cosigner.target import SigningTarget
from shardvault.policy import BundleChain, EvmFeeCap


def check_fee(chain: BundleChain, target: SigningTarget) -> None:
    """Refuse an EVM transaction whose fees exceed the cap the signed policy sets for its
    network (DESIGN.md invariant 12). The fees come from the payload the co-signer
    parsed, the cap from the policy bundle the admins signed; the coordinator supplies
    neither. A payload without EVM fees, a co-signer without a policy (which
    :func:`check_policy` refuses) or a network without a cap is not checked here.

    Raises:
        RequestRefused: ``fee``: the worst-case fee is above ``max_fee_wei``, or the
            priority fee per gas is above ``max_priority_fee_per_gas_wei``; the reason
            names the cap, its amount and the transaction's.
    """
    fee = target.fee
    bundle = chain.head
    if fee is None or bundle is None:
        return
    cap = bundle.policy.fee_caps.get(fee.network)
    if cap is None:
        return
    if not isinstance(cap, EvmFeeCap):
        # The policy loader keeps EVM network names for EVM caps; fail closed anyway.
        raise RequestRefused("fee", f"the policy's fee cap for {fee.network} is not an EVM cap")
    if cap.max_fee_wei is not None and fee.max_fee_wei > cap.max_fee_wei:
        raise RequestRefused(
            "fee",
            f"the worst-case fee {fee.max_fee_wei} wei (gas limit {fee.gas_limit} x "
            f"{fee.fee_per_gas_wei} wei per gas) exceeds the policy's max_fee_wei "
            f"{cap.max_fee_wei} for {fee.network}",
        )
    if (
        cap.max_priority_fee_per_gas_wei is not None
        and fee.priority_fee_per_gas_wei is not None
        and fee.priority_fee_per_gas_wei > cap.max_priority_fee_per_gas_wei
    ):
        raise RequestRefused(
            "fee",
            f"the priority fee {fee.priority_fee_per_gas_wei} wei per gas exceeds the "
            f"policy's max_priority_fee_per_gas_wei {cap.max_priority_fee_per_gas_wei} "
            f"for {fee.network}",
        )
