"""A Bitcoin Core JSON-RPC stand-in for tests (no bitcoind on the test machines).

It speaks the calls :mod:`shardvault.service.chainclients.bitcoin` makes, with the
reply shapes and error codes Bitcoin Core documents (``src/rpc/protocol.h``):

* ``scantxoutset start [descriptors]``: ``addr(...)`` and ``raw(...)`` descriptors
  (an optional ``#checksum`` is ignored) over the confirmed UTXO set, as Core scans its
  chainstate (mempool spends are not reflected until mined);
* ``estimatesmartfee``: a fixed rate in BTC/kvB, or Core's "insufficient data" reply;
* ``sendrawtransaction``: every input must be an unspent output (confirmed, or created
  by a mempool transaction) and its script must verify with python-bitcointx's
  ``VerifyScript`` (P2SH and WITNESS flags, the spent amount given); otherwise -26
  ``mandatory-script-verify-flag-failed``. Missing or spent inputs are -25
  ``bad-txns-inputs-missingorspent``, a conflict with a mempool spend -26
  ``txn-mempool-conflict`` unless it replaces them under BIP 125 (rules 1, 3, 4 and 6,
  for transactions without descendants; -26 ``insufficient fee`` otherwise), outputs
  above inputs -26 ``bad-txns-in-belowout``, a fee below 1 sat/vB -26 ``min relay fee
  not met``, a confirmed transaction -27 (already in the chain), undecodable bytes
  -22. A transaction already in the mempool returns its txid again, as Core does;
* ``getrawtransaction txid true``: ``confirmations`` and ``blockhash`` once mined;
  -5 for an unknown txid;
* ``getblockcount``.

``fund(address, amount_sat)`` creates a confirmed output paying ``address`` (in a new
block); ``mine(n)`` confirms the mempool. Amounts go out as exact JSON numbers with
eight decimals, never floats.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from bitcointx.core import CTransaction
from bitcointx.core.script import CScript, CScriptWitness
from bitcointx.core.scripteval import SCRIPT_VERIFY_P2SH, SCRIPT_VERIFY_WITNESS, VerifyScript

from shardvault.chains import bitcoin
from shardvault.chains.bitcoin.models import Transaction, TxIn, TxOut
from shardvault.chains.errors import ChainError

RPC_MISC_ERROR = -1
RPC_INVALID_ADDRESS_OR_KEY = -5
RPC_INVALID_PARAMETER = -8
RPC_DESERIALIZATION_ERROR = -22
RPC_VERIFY_ERROR = -25
RPC_VERIFY_REJECTED = -26
RPC_VERIFY_ALREADY_IN_CHAIN = -27
RPC_METHOD_NOT_FOUND = -32601

SATOSHI_PER_BTC = Decimal(10**8)


class RpcError(Exception):
    """An error reply: Core's code and message."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def verify_inputs(raw: bytes, spent: Sequence[tuple[bytes, int]]) -> None:
    """Verify every input script of ``raw`` with python-bitcointx.

    ``spent[i]`` is the (scriptPubKey, amount in satoshi) input ``i`` spends.

    Raises:
        bitcointx.core.scripteval.VerifyScriptError: an input does not verify.
        ValueError: not one spent output per input.
    """
    tx = CTransaction.deserialize(raw)
    if len(spent) != len(tx.vin):
        raise ValueError(f"{len(spent)} spent outputs for {len(tx.vin)} inputs")
    for index, (txin, (script_pubkey, amount)) in enumerate(zip(tx.vin, spent, strict=True)):
        witness = tx.wit.vtxinwit[index].scriptWitness if tx.wit.vtxinwit else CScriptWitness()
        VerifyScript(
            txin.scriptSig,
            CScript(script_pubkey),
            tx,
            index,
            flags={SCRIPT_VERIFY_P2SH, SCRIPT_VERIFY_WITNESS},
            amount=amount,
            witness=witness,
        )


@dataclass
class _Coin:
    amount: int
    script_pubkey: bytes
    height: int | None  # None: created by a mempool transaction


@dataclass
class _Known:
    raw: bytes
    height: int | None


def _btc(satoshi: int) -> Decimal:
    return (Decimal(satoshi) / SATOSHI_PER_BTC).quantize(Decimal("0.00000001"))


def _dumps(value: object) -> str:
    """JSON with :class:`Decimal` written as an exact number."""
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(str(k))}:{_dumps(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(_dumps(v) for v in value) + "]"
    return json.dumps(value)


class BitcoinNodeStandIn:
    """An in-memory regtest-like node served over HTTP JSON-RPC on 127.0.0.1.

    ``fee_rate`` is the ``estimatesmartfee`` answer in BTC/kvB (``None``: the node has
    too little data). ``auth`` is the (user, password) basic authentication required.
    """

    def __init__(
        self,
        network: str = "regtest",
        *,
        fee_rate: Decimal | None = Decimal("0.00002000"),
        auth: tuple[str, str] | None = None,
        min_relay_sat_per_kvb: int = 1000,
    ) -> None:
        self.network = bitcoin.Network.from_name(network)
        self.fee_rate = fee_rate
        self.auth = auth
        self.min_relay_sat_per_kvb = min_relay_sat_per_kvb
        self.height = 100
        self.coins: dict[tuple[str, int], _Coin] = {}
        self.mempool: dict[str, Transaction] = {}
        self._fees: dict[str, int] = {}
        # Confirmed coins a mempool transaction spends: still in Core's chainstate.
        self._mempool_spent: dict[tuple[str, int], _Coin] = {}
        self.known: dict[str, _Known] = {}
        self.calls: list[tuple[str, list[object]]] = []
        self._funded = 0
        self._lock = threading.RLock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- Life cycle ----------------------------------------------------------------

    @property
    def url(self) -> str:
        assert self._server is not None, "start() first"
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> str:
        """Listen on a free port of 127.0.0.1 in a daemon thread; returns the URL."""
        node = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                status, body = node._http(self.headers.get("Authorization"), self._body())
                data = body.encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _body(self) -> bytes:
                length = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(length)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self.url

    def close(self) -> None:
        """Stop serving and close the socket."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> BitcoinNodeStandIn:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- Test controls -------------------------------------------------------------

    def fund(self, address: str, amount_sat: int) -> tuple[str, int]:
        """A confirmed output of ``amount_sat`` paying ``address``, in a new block."""
        script = bitcoin.script_pubkey_for_address(address, self.network)
        with self._lock:
            self._funded += 1
            source = hashlib.sha256(b"stand-in funding %d" % self._funded).digest()
            tx = Transaction(2, (TxIn(bitcoin.OutPoint(source, 0)),), (TxOut(amount_sat, script),))
            txid = tx.txid_hex
            self.height += 1
            self.known[txid] = _Known(tx.serialize(), self.height)
            self.coins[(txid, 0)] = _Coin(amount_sat, script, self.height)
        return txid, 0

    def mine(self, blocks: int = 1) -> int:
        """Confirm every mempool transaction in the next block, then add empty blocks."""
        with self._lock:
            self.height += 1
            for txid in self.mempool:
                self.known[txid].height = self.height
                for key, coin in self.coins.items():
                    if key[0] == txid:
                        coin.height = self.height
            self.mempool.clear()
            self._fees.clear()
            self._mempool_spent.clear()
            self.height += blocks - 1
            return self.height

    def block_hash(self, height: int) -> str:
        return hashlib.sha256(b"stand-in block %d" % height).digest()[::-1].hex()

    def unspent(self, address: str) -> list[tuple[str, int, int]]:
        """(txid, vout, amount) of every output paying ``address``, mempool included."""
        script = bitcoin.script_pubkey_for_address(address, self.network)
        with self._lock:
            return [
                (txid, vout, coin.amount)
                for (txid, vout), coin in self.coins.items()
                if coin.script_pubkey == script
            ]

    # --- JSON-RPC ------------------------------------------------------------------

    def _http(self, authorization: str | None, body: bytes) -> tuple[int, str]:
        if self.auth is not None:
            expected = "Basic " + base64.b64encode(":".join(self.auth).encode()).decode()
            if authorization != expected:
                return 401, ""
        try:
            request = json.loads(body, parse_float=Decimal)
            method, params, request_id = (
                request["method"],
                request.get("params", []),
                request.get("id"),
            )
        except (ValueError, KeyError, TypeError):
            return 500, _dumps(
                {"result": None, "error": {"code": -32700, "message": "Parse error"}, "id": None}
            )
        with self._lock:
            self.calls.append((method, list(params)))
            try:
                result = self._dispatch(method, list(params))
            except (RpcError, LookupError, TypeError, ValueError) as exc:
                # Bad parameters get Core's generic error instead of a dropped connection.
                if not isinstance(exc, RpcError):
                    exc = RpcError(RPC_MISC_ERROR, f"{type(exc).__name__}: {exc}")
                status = 404 if exc.code == RPC_METHOD_NOT_FOUND else 500
                error = {"code": exc.code, "message": exc.message}
                return status, _dumps({"result": None, "error": error, "id": request_id})
        return 200, _dumps({"result": result, "error": None, "id": request_id})

    def _dispatch(self, method: str, params: list[Any]) -> object:
        if method == "getblockcount":
            return self.height
        if method == "estimatesmartfee":
            target = params[0] if params else 6
            if self.fee_rate is None:
                return {"errors": ["Insufficient data or no feerate found"], "blocks": 0}
            return {"feerate": self.fee_rate, "blocks": target}
        if method == "scantxoutset":
            return self._scan(params)
        if method == "sendrawtransaction":
            return self._send(params)
        if method == "getrawtransaction":
            return self._get_transaction(params)
        raise RpcError(RPC_METHOD_NOT_FOUND, "Method not found")

    def _descriptor_script(self, descriptor: str) -> bytes:
        text = descriptor.split("#", 1)[0]
        try:
            if text.startswith("addr(") and text.endswith(")"):
                return bitcoin.script_pubkey_for_address(text[5:-1], self.network)
            if text.startswith("raw(") and text.endswith(")"):
                return bytes.fromhex(text[4:-1])
        except (ValueError, ChainError) as exc:
            raise RpcError(RPC_INVALID_ADDRESS_OR_KEY, f"Invalid descriptor: {exc}") from None
        raise RpcError(RPC_INVALID_PARAMETER, f"unsupported descriptor {descriptor!r}")

    def _scan(self, params: list[Any]) -> object:
        if not params or params[0] != "start" or len(params) < 2:
            raise RpcError(RPC_INVALID_PARAMETER, "only 'start' with descriptors is served")
        wanted: dict[bytes, str] = {}
        for item in params[1]:
            descriptor = item["desc"] if isinstance(item, dict) else item
            wanted[self._descriptor_script(descriptor)] = descriptor
        unspents = []
        for (txid, vout), coin in self.coins.items():
            if coin.height is not None and coin.script_pubkey in wanted:
                unspents.append(self._unspent_entry(txid, vout, coin, wanted[coin.script_pubkey]))
        # Core scans its chainstate, where a coin a mempool transaction spends is still
        # unspent until that transaction is mined.
        for (txid, vout), coin in self._mempool_spent.items():
            if coin.script_pubkey in wanted:
                unspents.append(self._unspent_entry(txid, vout, coin, wanted[coin.script_pubkey]))
        total = sum((Decimal(str(u["amount"])) for u in unspents), Decimal("0"))
        return {
            "success": True,
            "txouts": len(self.coins),
            "height": self.height,
            "bestblock": self.block_hash(self.height),
            "unspents": unspents,
            "total_amount": total.quantize(Decimal("0.00000001")),
        }

    def _unspent_entry(
        self, txid: str, vout: int, coin: _Coin, descriptor: str
    ) -> dict[str, object]:
        assert coin.height is not None
        return {
            "txid": txid,
            "vout": vout,
            "scriptPubKey": coin.script_pubkey.hex(),
            "desc": descriptor,
            "amount": _btc(coin.amount),
            "coinbase": False,
            "height": coin.height,
            "blockhash": self.block_hash(coin.height),
            "confirmations": self.height - coin.height + 1,
        }

    def _send(self, params: list[Any]) -> str:
        try:
            raw = bytes.fromhex(params[0])
            tx = bitcoin.parse_transaction(raw)
        except (ValueError, IndexError, TypeError, ChainError):
            raise RpcError(RPC_DESERIALIZATION_ERROR, "TX decode failed") from None
        txid = tx.txid_hex
        known = self.known.get(txid)
        if known is not None and known.height is None:
            return txid  # Already in the mempool: Core answers with the txid again.
        if known is not None:
            raise RpcError(RPC_VERIFY_ALREADY_IN_CHAIN, "Transaction outputs already in utxo set")
        spent: list[tuple[bytes, int]] = []
        conflicts: set[str] = set()
        for txin in tx.inputs:
            key = (txin.prevout.txid_hex, txin.prevout.index)
            coin = self.coins.get(key)
            if key in self._mempool_spent:
                conflicts |= self._spenders(key)
                coin = self._mempool_spent[key]
            if coin is None:
                raise RpcError(RPC_VERIFY_ERROR, "bad-txns-inputs-missingorspent")
            spent.append((coin.script_pubkey, coin.amount))
        total_in = sum(amount for _, amount in spent)
        total_out = sum(out.value for out in tx.outputs)
        if total_out > total_in:
            raise RpcError(RPC_VERIFY_REJECTED, "bad-txns-in-belowout")
        try:
            verify_inputs(raw, spent)
        except Exception as exc:  # bitcointx raises several kinds; all are refusals.
            raise RpcError(
                RPC_VERIFY_REJECTED,
                f"mandatory-script-verify-flag-failed ({type(exc).__name__}: {exc})",
            ) from None
        minimum = -(-tx.vsize() * self.min_relay_sat_per_kvb // 1000)
        if total_in - total_out < minimum:
            raise RpcError(
                RPC_VERIFY_REJECTED,
                f"min relay fee not met, {total_in - total_out} < {minimum}",
            )
        if conflicts:
            self._replace(conflicts, total_in - total_out, tx.vsize())
        for txin in tx.inputs:
            key = (txin.prevout.txid_hex, txin.prevout.index)
            coin = self.coins.pop(key)
            if coin.height is not None:
                self._mempool_spent[key] = coin
        for vout, out in enumerate(tx.outputs):
            self.coins[(txid, vout)] = _Coin(out.value, out.script_pubkey, None)
        self.mempool[txid] = tx
        self._fees[txid] = total_in - total_out
        self.known[txid] = _Known(raw, None)
        return txid

    def _spenders(self, key: tuple[str, int]) -> set[str]:
        return {
            txid
            for txid, tx in self.mempool.items()
            if any((i.prevout.txid_hex, i.prevout.index) == key for i in tx.inputs)
        }

    def _replace(self, conflicts: set[str], fee: int, vsize: int) -> None:
        """BIP 125 as Bitcoin Core applies it to a transaction without descendants:
        every conflicting transaction signals replaceability (rule 1); the new one pays
        at least their fees (rule 3) plus the incremental relay fee for its own size
        (rule 4, 1 sat/vB), at a higher rate than each (rule 6). They are then evicted,
        and the coins they spent are unspent again."""
        for txid in conflicts:
            old = self.mempool[txid]
            if all(i.sequence >= 0xFFFFFFFE for i in old.inputs):
                raise RpcError(RPC_VERIFY_REJECTED, "txn-mempool-conflict")
            if fee * old.vsize() <= self._fees[txid] * vsize:
                raise RpcError(RPC_VERIFY_REJECTED, "insufficient fee, rejecting replacement")
        needed = sum(self._fees[t] for t in conflicts) + vsize
        if fee < needed:
            raise RpcError(
                RPC_VERIFY_REJECTED,
                f"insufficient fee, rejecting replacement; not enough additional fees to "
                f"relay; {fee} < {needed}",
            )
        for txid in conflicts:
            old = self.mempool.pop(txid)
            del self.known[txid]
            del self._fees[txid]
            for txin in old.inputs:
                key = (txin.prevout.txid_hex, txin.prevout.index)
                self.coins[key] = self._mempool_spent.pop(key)
            for vout in range(len(old.outputs)):
                self.coins.pop((txid, vout), None)

    def _get_transaction(self, params: list[Any]) -> object:
        txid = params[0] if params else None
        known = self.known.get(txid) if isinstance(txid, str) else None
        if known is None:
            raise RpcError(
                RPC_INVALID_ADDRESS_OR_KEY,
                "No such mempool or blockchain transaction. "
                "Use gettransaction for wallet transactions.",
            )
        if len(params) < 2 or not params[1]:
            return known.raw.hex()
        tx = bitcoin.parse_transaction(known.raw)
        result: dict[str, object] = {
            "txid": txid,
            "hash": tx.wtxid_hex,
            "hex": known.raw.hex(),
            "size": len(known.raw),
            "vsize": tx.vsize(),
        }
        if known.height is not None:
            result["blockhash"] = self.block_hash(known.height)
            result["confirmations"] = self.height - known.height + 1
        return result
