// Independent check of a shardvault PSBT with bitcoinjs-lib (run by test_btc_spends.py).
//
// Reads one JSON object on stdin: {"psbt": <base64 of the signed, not yet finalized PSBT>}.
// For every input it runs bitcoinjs-lib's validateSignaturesOfInput with a validator that
// checks ECDSA (33-byte keys) through ecpair and BIP340 (32-byte keys) through
// tiny-secp256k1, then finalizes with bitcoinjs-lib's own finalizer and extracts the
// transaction. Prints {"valid": [bool per input], "txid": ..., "hex": ...} on stdout.
"use strict";

const bitcoin = require("bitcoinjs-lib");
const ecc = require("tiny-secp256k1");
const { ECPairFactory } = require("ecpair");

bitcoin.initEccLib(ecc);
const ECPair = ECPairFactory(ecc);

function validator(pubkey, msghash, signature) {
  if (pubkey.length === 32) {
    return ecc.verifySchnorr(msghash, pubkey, signature);
  }
  return ECPair.fromPublicKey(Buffer.from(pubkey)).verify(msghash, signature);
}

let input = "";
process.stdin.on("data", (chunk) => {
  input += chunk;
});
process.stdin.on("end", () => {
  const request = JSON.parse(input);
  const psbt = bitcoin.Psbt.fromBase64(request.psbt);
  const valid = [];
  for (let i = 0; i < psbt.inputCount; i++) {
    let ok;
    try {
      ok = psbt.validateSignaturesOfInput(i, validator);
    } catch (err) {
      ok = false;
    }
    valid.push(ok);
  }
  let txid = null;
  let hex = null;
  if (valid.every((v) => v)) {
    psbt.finalizeAllInputs();
    const tx = psbt.extractTransaction();
    txid = tx.getId();
    hex = tx.toHex();
  }
  process.stdout.write(JSON.stringify({ valid, txid, hex }));
});
