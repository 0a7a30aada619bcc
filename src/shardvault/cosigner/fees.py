"""Fee caps: what a transaction may pay, as the signed policy sets it (DESIGN.md
invariant 12, docs/policy.md "Fee caps").

The fees come from the payload the co-signer parsed (:class:`~.target.EvmFee`,
:class:`~.target.BitcoinFee`, :class:`~.target.SolanaFee`), the caps from the policy
bundle the admins signed; the coordinator supplies neither. A replacement of a
transaction (an EVM fee bump of the same nonce, a Bitcoin one of the same outpoints) is
a payload like any other and is checked the same way: nothing exempts a bump.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TypeVar

from shardvault.cosigner.errors import RequestRefused
from shardvault.cosigner.target import BitcoinFee, EvmFee, SigningTarget, SolanaFee
from shardvault.policy import BitcoinFeeCap, BundleChain, EvmFeeCap, FeeCap, SolanaFeeCap

C = TypeVar("C", EvmFeeCap, BitcoinFeeCap, SolanaFeeCap)


def check_fee(chain: BundleChain, target: SigningTarget) -> None:
    """Refuse a transaction whose fees exceed the cap the signed policy sets for its
    network. A payload without fees (a raw digest), a co-signer without a policy (which
    :func:`~.checks.check_policy` refuses) or a network without a cap is not checked
    here, except that a Bitcoin or Solana payload naming a network without a cap is
    refused while the policy caps another network of its chain: the coordinator names
    that network (a PSBT or a Solana message does not), and must not lift a cap by
    naming another.

    Raises:
        RequestRefused: ``fee``: an amount above its cap, an input amount a Bitcoin cap
            needs that is not proven, an uncapped network name as above, or a
            cap of another chain family; the reason names the cap, its amount and the
            transaction's.
    """
    fee = target.fee
    bundle = chain.head
    if fee is None or bundle is None:
        return
    caps = bundle.policy.fee_caps
    cap = caps.get(fee.network)
    if isinstance(fee, EvmFee):
        # The network of an EVM payload is its chain id's: the coordinator cannot
        # choose it, and a network without a cap is not checked.
        if cap is not None:
            _check_evm(fee, _cap_of(cap, EvmFeeCap, fee.network))
        return
    kind, chain_name = (
        (BitcoinFeeCap, "Bitcoin") if isinstance(fee, BitcoinFee) else (SolanaFeeCap, "Solana")
    )
    if cap is None:
        capped = sorted(n for n, c in caps.items() if isinstance(c, kind))
        if capped:
            raise RequestRefused(
                "fee",
                f"the policy caps {chain_name} fees on {', '.join(capped)} but not on "
                f"{fee.network}, the network the request names (the payload names none), "
                "so it is refused",
            )
        return
    if isinstance(fee, BitcoinFee):
        _check_bitcoin(fee, _cap_of(cap, BitcoinFeeCap, fee.network))
    else:
        _check_solana(fee, _cap_of(cap, SolanaFeeCap, fee.network))


def _cap_of(cap: FeeCap, kind: type[C], network: str) -> C:
    """``cap`` as a ``kind``. The policy loader gives each network the cap of its chain
    family, so another kind means a request naming another chain's network.

    Raises:
        RequestRefused: ``fee``: ``cap`` is of another chain family.
    """
    if not isinstance(cap, kind):
        raise RequestRefused(
            "fee",
            f"the policy's fee cap for {network} is a {cap.family.value} cap, not one for "
            "this payload's chain",
        )
    return cap


def _at_most(amount: int, cap: int | None, field: str, network: str, shown: str) -> None:
    """Refuse ``amount`` above ``cap`` (``None``: uncapped); ``shown`` says what the
    amount is, in the reason.

    Raises:
        RequestRefused: ``fee``: naming the amount, the cap's field, its value and the
            network.
    """
    if cap is not None and amount > cap:
        raise RequestRefused("fee", f"{shown} exceeds the policy's {field} {cap} for {network}")


def _check_evm(fee: EvmFee, cap: EvmFeeCap) -> None:
    """The worst-case fee, and a fee-market transaction's priority fee per gas (a
    legacy transaction's tip is its gas price less a base fee the co-signer cannot
    know, so only its worst case is capped)."""
    _at_most(
        fee.max_fee_wei,
        cap.max_fee_wei,
        "max_fee_wei",
        fee.network,
        f"the worst-case fee {fee.max_fee_wei} wei (gas limit {fee.gas_limit} x "
        f"{fee.fee_per_gas_wei} wei per gas)",
    )
    if fee.priority_fee_per_gas_wei is not None:
        _at_most(
            fee.priority_fee_per_gas_wei,
            cap.max_priority_fee_per_gas_wei,
            "max_priority_fee_per_gas_wei",
            fee.network,
            f"the priority fee {fee.priority_fee_per_gas_wei} wei per gas",
        )


def _check_bitcoin(fee: BitcoinFee, cap: BitcoinFeeCap) -> None:
    """Every input amount proven, then the fee and the fee rate over the signed size,
    compared exactly (the rate cap is a decimal with at most three places)."""
    if fee.unproven_inputs:
        index = fee.unproven_inputs[0]
        raise RequestRefused(
            "fee",
            f"input {index}'s amount is not proven: the signature made here commits to "
            f"its own input's amount only, so input {index} must carry its previous "
            f"transaction (non_witness_utxo) for the fee cap of {fee.network} to be checked",
        )
    _at_most(
        fee.fee_sat,
        cap.max_fee_sat,
        "max_fee_sat",
        fee.network,
        f"the fee {fee.fee_sat} sat (the inputs' amounts less the outputs)",
    )
    rate_cap = cap.max_fee_rate_sat_per_vb
    if rate_cap is not None:
        numerator, denominator = rate_cap.as_integer_ratio()
        # fee / vsize > numerator / denominator, in integers.
        if fee.fee_sat * denominator > numerator * fee.vsize:
            shown = (Decimal(fee.fee_sat) / Decimal(fee.vsize)).quantize(Decimal("0.001"))
            raise RequestRefused(
                "fee",
                f"the fee rate of {fee.fee_sat} sat over {fee.vsize} vB (about {shown} "
                f"sat/vB; the size counts the signatures still to come) exceeds the "
                f"policy's max_fee_rate_sat_per_vb {rate_cap} for {fee.network}",
            )


def _check_solana(fee: SolanaFee, cap: SolanaFeeCap) -> None:
    """The compute-unit price, the compute-unit limit, then the whole fee."""
    price, limit = fee.compute_unit_price_micro_lamports, fee.compute_unit_limit
    source = "the runtime's default" if fee.limit_is_default else "SetComputeUnitLimit"
    _at_most(
        price,
        cap.max_compute_unit_price_micro_lamports,
        "max_compute_unit_price_micro_lamports",
        fee.network,
        f"the compute-unit price {price} micro-lamports",
    )
    _at_most(
        limit,
        cap.max_compute_unit_limit,
        "max_compute_unit_limit",
        fee.network,
        f"the compute-unit limit {limit} ({source})",
    )
    _at_most(
        fee.fee_lamports,
        cap.max_fee_lamports,
        "max_fee_lamports",
        fee.network,
        f"the fee {fee.fee_lamports} lamports (5000 per signature x {fee.signatures}, and "
        f"a priority fee of {fee.priority_fee_lamports}: {limit} units at {price} "
        "micro-lamports)",
    )
