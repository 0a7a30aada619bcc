// DKLs23 threshold ECDSA through BitGo's wrapper, @bitgo/sdk-lib-mpc (DklsDkg.Dkg,
// DklsDsg.Dsg), and the WASM build it pins, driven directly, to separate what the
// wrapper costs from what the protocol variant costs.
//
// Rows, 2-of-3, each summed over all parties:
//   wrapper key generation   Dkg for the 3 parties (initDkg, then every round through
//                            handleIncomingMessages; the wrapper serializes its session
//                            after each call)
//   wrapper sign             Dsg for 2 signers, from the serialized key share to the
//                            combined signature (loading the share happens in init)
//   direct, OT variant       the pinned build's SignSessionOTVariant, the session class
//                            the wrapper signs with: presign, online, and their sum
//   direct, plain session    the same build's SignSession, as dkls.mjs drives 1.1.2
// Signing quorums rotate over {0,1}, {0,2}, {1,2}. Every signature is checked with noble
// and OpenSSL and written for check_signatures.py.
//
// Environment: RUNS (signing, default 20), KG_RUNS (default 8), WARMUP (default 2).

import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

import { Checks, ReferenceSigners, Series, installedVersion, randomMessage, report, settings, timed } from './common.mjs';
import { loadShares, online, presign, subsets } from './dkls-rounds.mjs';

const require = createRequire(import.meta.url);
const { DklsDkg, DklsDsg } = require('@bitgo/sdk-lib-mpc');
// The WASM build BitGo depends on is installed under its own node_modules.
const bitgoRoot = dirname(require.resolve('@bitgo/sdk-lib-mpc/package.json'));
const bitgoRequire = createRequire(join(bitgoRoot, 'package.json'));
const wasm = bitgoRequire('@silencelaboratories/dkls-wasm-ll-node');
const WASM_VERSION = installedVersion('@silencelaboratories/dkls-wasm-ll-node', join(bitgoRoot, 'node_modules'));
const VERSION = installedVersion('@bitgo/sdk-lib-mpc');
const LIBRARY = '@bitgo/sdk-lib-mpc';

const { runs, keygenRuns, warmup } = settings({ runs: 20, keygenRuns: 8, warmup: 2 });
const N = 3;
const T = 2;

function messageBytes(batches) {
  return batches.reduce(
    (sum, b) => sum + b.broadcastMessages.reduce((s, m) => s + m.payload.length, 0) + b.p2pMessages.reduce((s, m) => s + m.payload.length, 0),
    0,
  );
}

/**
 * Run the wrapper objects `parties` (ids `ids`) from their first messages to the end:
 * each round, a party receives the other parties' broadcasts and the direct messages
 * addressed to it. Returns the payload bytes of all messages.
 */
async function runWrapped(parties, ids, first, rounds) {
  let outgoing = (await Promise.all(parties.map(first))).map((m) => ({ broadcastMessages: [m], p2pMessages: [] }));
  let bytes = messageBytes(outgoing);
  for (let round = 0; round < rounds; round++) {
    outgoing = parties.map((party, i) =>
      party.handleIncomingMessages({
        broadcastMessages: outgoing.flatMap((o, j) => (j === i ? [] : o.broadcastMessages)),
        p2pMessages: outgoing.flatMap((o) => o.p2pMessages.filter((m) => m.to === ids[i])),
      }),
    );
    bytes += messageBytes(outgoing);
  }
  return bytes;
}

async function wrappedKeygen() {
  const parties = Array.from({ length: N }, (_, id) => new DklsDkg.Dkg(N, T, id));
  const bytes = await runWrapped(parties, [0, 1, 2], (p) => p.initDkg(), 4);
  const shares = parties.map((p) => p.getKeyShare());
  return { shares, bytes };
}

async function wrappedSign(shares, signers, digest) {
  const parties = signers.map((id) => new DklsDsg.Dsg(shares[id], id, 'm', digest));
  const bytes = await runWrapped(parties, signers, (p) => p.init(), 4);
  const { R, S } = parties[0].signature;
  for (const p of parties) {
    if (Buffer.compare(Buffer.from(p.signature.R), Buffer.from(R)) !== 0 || Buffer.compare(Buffer.from(p.signature.S), Buffer.from(S)) !== 0) {
      throw new Error('signers produced different signatures');
    }
  }
  return { r: R, s: S, bytes };
}

const references = new ReferenceSigners();
const checks = new Checks();
const rows = [];
const sizes = {};
references.sample(20);

const kg = new Series('wrapper key generation');
let key;
for (let run = -Math.min(warmup, 1); run < keygenRuns; run++) {
  const { value, ms } = await timed(() => wrappedKeygen());
  if (run < 0) sizes.keygen_bytes = value.bytes;
  else kg.add(ms);
  key = value;
  references.sample();
}
const probe = wasm.Keyshare.fromBytes(key.shares[0]);
const publicKey = Uint8Array.from(probe.publicKey);
probe.free();
sizes.share_bytes = key.shares[0].length;

const quorums = subsets(N, T);
const wrapped = new Series('wrapper sign');
const direct = {
  ot: { Session: wasm.SignSessionOTVariant, presign: new Series('OT variant presign'), online: new Series('OT variant online'), sign: new Series('OT variant sign') },
  plain: { Session: wasm.SignSession, presign: new Series('plain presign'), online: new Series('plain online'), sign: new Series('plain sign') },
};
for (let run = -warmup; run < runs; run++) {
  const signers = quorums[(run + warmup) % quorums.length];
  const measure = run === -warmup;
  const w = randomMessage();
  const signed = await timed(() => wrappedSign(key.shares, signers, w.digest));
  checks.checkEcdsa(publicKey, w.message, w.digest, signed.value.r, signed.value.s);
  if (measure) sizes.wrapper_sign_bytes = signed.value.bytes;
  else if (run >= 0) wrapped.add(signed.ms);
  for (const [name, d] of Object.entries(direct)) {
    const { message, digest } = randomMessage();
    const keyshares = loadShares(wasm, key.shares, signers);
    const p = await timed(() => presign(d.Session, keyshares, signers, measure));
    const o = await timed(() => online(p.value.sessions, signers, digest, measure));
    checks.checkEcdsa(publicKey, message, digest, o.value.r, o.value.s);
    if (measure) sizes[`${name}_presign_round_bytes`] = p.value.roundBytes;
    if (run >= 0) {
      d.presign.add(p.ms);
      d.online.add(o.ms);
      d.sign.add(p.ms + o.ms);
    }
  }
  references.sample();
}

const kb = (x) => `${(x / 1024).toFixed(0)} KB`;
const sum = (xs) => xs.reduce((a, b) => a + b, 0);
const row = (library, version, phase, series, note) => rows.push({ library, version, config: '2-of-3', phase, series, reference: 'ecdsa', note });
const PINNED = '@silencelaboratories/dkls-wasm-ll-node';
const wrapperVersion = `${VERSION} (WASM ${WASM_VERSION})`;
row(LIBRARY, wrapperVersion, 'wrapper: key generation, all parties', kg, `${kb(sizes.keygen_bytes)} of messages; a share is ${kb(sizes.share_bytes)}`);
row(LIBRARY, wrapperVersion, 'wrapper: sign end to end', wrapped, `SignSessionOTVariant inside; ${kb(sizes.wrapper_sign_bytes)} of messages; loads the key share`);
row(PINNED, `${WASM_VERSION} (BitGo's pin)`, 'direct SignSessionOTVariant: sign', direct.ot.sign, 'no wrapper; share loading not included');
row(PINNED, `${WASM_VERSION} (BitGo's pin)`, 'direct SignSessionOTVariant: presign', direct.ot.presign, `${kb(sum(sizes.ot_presign_round_bytes))}`);
row(PINNED, `${WASM_VERSION} (BitGo's pin)`, 'direct SignSessionOTVariant: online', direct.ot.online, '');
row(PINNED, `${WASM_VERSION} (BitGo's pin)`, 'direct SignSession: sign', direct.plain.sign, 'the session dkls.mjs drives in 1.1.2');
row(PINNED, `${WASM_VERSION} (BitGo's pin)`, 'direct SignSession: presign', direct.plain.presign, `${kb(sum(sizes.plain_presign_round_bytes))}`);
row(PINNED, `${WASM_VERSION} (BitGo's pin)`, 'direct SignSession: online', direct.plain.online, '');

report('bitgo', rows, references, checks, { sizes });
