"""``shardvault prices``: signed price reports (docs/policy.md, "Prices").

``sign`` runs on the price signer's own machine: it signs a report with the price key
(an Ed25519 or P-256 PEM file the asset registry names) and prints it; the key never
goes to the server. ``submit`` hands signed reports to the server, which forwards the
newest one per asset to the co-signers with every signing request; ``list`` shows what
the server holds.
"""

import json
import time
from pathlib import Path

import click
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from shardvault.cli._output import emit_json, fail, fail_on
from shardvault.cli.workspace import api_call, api_options, sdk_client
from shardvault.errors import ShardvaultError
from shardvault.sdk.prices import PriceKey, sign_price_report

_FILE = click.Path(exists=True, dir_okay=False, path_type=Path)


@click.group(name="prices")
def group() -> None:
    """Signed price reports: sign (locally, with a price key), submit, list."""


def _price_key(path: Path) -> PriceKey:
    try:
        key = load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError) as exc:
        fail(f"{path}: not a readable PEM private key ({type(exc).__name__})")
    if isinstance(key, Ed25519PrivateKey):
        return key
    if isinstance(key, ec.EllipticCurvePrivateKey) and isinstance(key.curve, ec.SECP256R1):
        return key
    fail(f"{path}: a price key is Ed25519 or ECDSA on P-256")


@group.command(name="sign")
@click.option("--key", "key_file", type=_FILE, required=True, help="The price key (PEM).")
@click.option("--signer", required=True, help="The price key's id in the asset registry.")
@click.option("--asset", required=True, help="NETWORK/ID as the asset registry lists it.")
@click.option("--price", required=True, help='One whole unit, a decimal string: "3000.25".')
@click.option("--currency", default="USD", show_default=True)
@click.option(
    "--observed-at", type=int, default=None, help="Unix seconds (default: this machine's now)."
)
def sign(
    key_file: Path,
    signer: str,
    asset: str,
    price: str,
    currency: str,
    observed_at: int | None,
) -> None:
    """Sign one price report and print it (transport form) for ``prices submit``."""
    network, sep, asset_id = asset.partition("/")
    if not sep or not network or not asset_id:
        fail(f"--asset {asset!r}: expected NETWORK/ID, such as ethereum/ETH")
    try:
        signed = sign_price_report(
            _price_key(key_file),
            signer=signer,
            network=network,
            asset=asset_id,
            price=price,
            currency=currency,
            observed_at=int(time.time()) if observed_at is None else observed_at,
        )
    except ShardvaultError as exc:
        fail_on(exc)
    emit_json(signed)


@group.command(name="submit")
@click.argument("files", nargs=-1, type=_FILE, required=True)
@api_options
def submit(files: tuple[Path, ...], url: str, api_key: str | None, key_file: Path | None) -> None:
    """Hand signed reports (one JSON object per FILE, as ``prices sign`` prints) to the
    server; prints what it holds for each."""
    reports = []
    for path in files:
        try:
            reports.append(json.loads(path.read_text()))
        except (OSError, ValueError) as exc:
            fail(f"{path}: not a JSON report ({type(exc).__name__})")
    client = sdk_client(url, api_key, key_file)
    held = []
    try:
        with client:
            for report in reports:
                held.append(client.submit_price_report(report).model_dump(mode="json"))
    except ShardvaultError as exc:
        fail_on(exc)
    emit_json({"data": held})


@group.command(name="list")
@api_options
def list_reports(url: str, api_key: str | None, key_file: Path | None) -> None:
    """The newest report the server holds per network, asset and signer."""
    listed = api_call(url, api_key, key_file, lambda client: client.list_price_reports())
    emit_json(listed.model_dump(mode="json"))
