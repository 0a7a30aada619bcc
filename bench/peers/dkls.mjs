// DKLs23 threshold ECDSA (secp256k1), Silence Laboratories' WASM build
// @silencelaboratories/dkls-wasm-ll-node, timed beside shardvault's CGGMP21 figures.
//
// Phases, each summed over all parties:
//   key generation   the four rounds of the package's DKG for all n parties
//   load shares      Keyshare.fromBytes for the signers (a signer that keeps its share
//                    at rest pays it; a SignSession consumes the share it is given)
//   presign          SignSession + three rounds (message-independent)
//   online           lastMessage(digest) + combine for every signer
//   sign             presign + online (load shares not included)
// Signing quorums rotate over every t-of-n subset. Every signature is checked with noble
// and OpenSSL, and written for check_signatures.py (libsecp256k1).
//
// Environment: RUNS (signing, default 30), KG_RUNS (key generation, default 8 for 2-of-3;
// 3-of-5 runs a third as many, at least 2), WARMUP (default 2), CONFIGS (default "2-3,3-5").

import { createRequire } from 'node:module';

import { Checks, ReferenceSigners, Series, installedVersion, randomMessage, report, settings, timed } from './common.mjs';
import { keygen, loadShares, online, presign, subsets } from './dkls-rounds.mjs';

const require = createRequire(import.meta.url);
const wasm = require('@silencelaboratories/dkls-wasm-ll-node');
const VERSION = installedVersion('@silencelaboratories/dkls-wasm-ll-node');
const LIBRARY = '@silencelaboratories/dkls-wasm-ll-node';

const { runs, keygenRuns, warmup } = settings({ runs: 30, keygenRuns: 8, warmup: 2 });
const configs = (process.env.CONFIGS ?? '2-3,3-5').split(',').map((c) => c.split('-').map(Number));

const references = new ReferenceSigners();
const checks = new Checks();
const rows = [];
const sizes = {};
references.sample(20);

for (const [t, n] of configs) {
  const config = `${t}-of-${n}`;
  const kgSeries = new Series(`${config} key generation`);
  const kgRuns = t === 2 ? keygenRuns : Math.max(2, Math.round(keygenRuns / 3));
  let key;
  for (let run = -Math.min(warmup, 1); run < kgRuns; run++) {
    const { value, ms } = await timed(() => keygen(wasm, n, t, run < 0));
    if (run < 0) {
      sizes[config] = { keygen_round_bytes: value.roundBytes, share_bytes: value.shares[0].length };
    } else {
      kgSeries.add(ms);
    }
    key = value;
    references.sample();
  }

  const quorums = subsets(n, t);
  const load = new Series(`${config} load shares`);
  const pre = new Series(`${config} presign`);
  const on = new Series(`${config} online`);
  const sign = new Series(`${config} sign`);
  for (let run = -warmup; run < runs; run++) {
    const signers = quorums[(run + warmup) % quorums.length];
    const { message, digest } = randomMessage();
    const measure = run === -warmup;
    const loaded = await timed(() => loadShares(wasm, key.shares, signers));
    const p = await timed(() => presign(wasm.SignSession, loaded.value, signers, measure));
    const o = await timed(() => online(p.value.sessions, signers, digest, measure));
    checks.checkEcdsa(key.publicKey, message, digest, o.value.r, o.value.s);
    if (measure) {
      sizes[config].presign_round_bytes = p.value.roundBytes;
      sizes[config].online_bytes = o.value.bytes;
    }
    if (run >= 0) {
      load.add(loaded.ms);
      pre.add(p.ms);
      on.add(o.ms);
      sign.add(p.ms + o.ms);
    }
    references.sample();
  }
  const row = (phase, series, note) => rows.push({ library: LIBRARY, version: VERSION, config, phase, series, reference: 'ecdsa', note });
  const kb = (x) => `${(x / 1024).toFixed(0)} KB`;
  const s = sizes[config];
  row('key generation, all parties', kgSeries, `4 rounds, ${kb(s.keygen_round_bytes.reduce((a, b) => a + b, 0))} of messages; a share is ${kb(s.share_bytes)}`);
  row('sign (presign + online)', sign, `${t} signers`);
  row('presign', pre, `3 rounds, ${kb(s.presign_round_bytes.reduce((a, b) => a + b, 0))}`);
  row('online', on, `1 broadcast, ${s.online_bytes} B`);
  row('load signers\' shares', load, 'not in the sign figure');
}

report('dkls', rows, references, checks, { sizes });
