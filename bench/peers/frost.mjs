// FROST with BIP340 signatures (secp256k1), @cmdcode/frost, timed beside shardvault's
// FROST schnorr-bip340 figures (bench/bench_frost.py).
//
// The package ships a trusted dealer and verifiable secret sharing, not a distributed key
// generation, so this script builds the usual dealerless one from its functions: every
// party deals a random polynomial (create_share_coeffs, create_shares,
// get_share_commits), every recipient checks each share it receives (verify_share) and
// adds them up (combine_set), and the group's commitments are the sums of the dealers'
// (merge_share_commits; the group key is the constant term). The coordinator then derives
// every member's verification share from those commitments with noble point arithmetic,
// since it checks partial signatures against them. FROST's key generation also has each
// dealer prove knowledge of its constant term (RFC 9591 Appendix C; shardvault always
// does): a second row adds that proof as a BIP340 signature under the constant term,
// made and checked with noble.
//
// Signing, all signers in turn: round one is create_commit_pkg per signer (nonces and
// their commitments, message-independent); round two is, per signer, its own signing
// context (get_group_signing_ctx) and sign_msg; the coordinator (the first signer, with
// its context) then either checks every partial signature (verify_partial_sig) and
// aggregates (combine_partial_sigs), or aggregates and checks only the final signature,
// which is what shardvault does on the honest path.
//
// Every final signature is checked with noble (schnorr.verify) here and written for
// check_signatures.py, which checks it again with libsecp256k1: the package computes with
// noble itself, so noble's verdict alone would not be independent.
//
// Environment: RUNS (signing, default 100), KG_RUNS (default 30), WARMUP (default 5),
// CONFIGS (default "2-3,3-5").

import { createHash, randomBytes } from 'node:crypto';

import {
  combine_partial_sigs,
  combine_set,
  create_commit_pkg,
  create_share_coeffs,
  create_shares,
  get_group_signing_ctx,
  get_share_commits,
  merge_share_commits,
  sign_msg,
  verify_final_sig,
  verify_partial_sig,
  verify_share,
} from '@cmdcode/frost/lib';
import { schnorr, secp256k1 } from '@noble/curves/secp256k1.js';

import { Checks, ReferenceSigners, Series, installedVersion, report, settings, timed } from './common.mjs';
import { subsets } from './dkls-rounds.mjs';

const VERSION = installedVersion('@cmdcode/frost');
const LIBRARY = '@cmdcode/frost';
const Point = secp256k1.Point;
const ORDER = Point.Fn.ORDER;

const { runs, keygenRuns, warmup } = settings({ runs: 100, keygenRuns: 30, warmup: 5 });
const configs = (process.env.CONFIGS ?? '2-3,3-5').split(',').map((c) => c.split('-').map(Number));

const hex = (bytes) => Buffer.from(bytes).toString('hex');
const scalarHex = (value) => value.toString(16).padStart(64, '0');

/** What a dealer's proof of knowledge signs: a domain tag, its index and its constant-term commitment. */
function proofMessage(index, commitment) {
  return createHash('sha256').update(`shardvault peer bench frost pok/${index}/${commitment}`).digest();
}

/** The verification share of member `index`: the group commitments' polynomial evaluated at `index`, as a point. */
function verificationShare(commitments, index) {
  let total = Point.ZERO;
  let power = 1n;
  for (const commitment of commitments) {
    total = total.add(Point.fromHex(commitment).multiply(power));
    power = (power * BigInt(index)) % ORDER;
  }
  return total;
}

/** Dealerless key generation among n parties with threshold t, optionally with proofs of knowledge. */
function keygen(n, t, withProof) {
  const dealt = [];
  for (let dealer = 1; dealer <= n; dealer++) {
    const coefficients = create_share_coeffs([], t);
    const commitments = get_share_commits(coefficients);
    const proof = withProof ? schnorr.sign(proofMessage(dealer, commitments[0]), Buffer.from(scalarHex(coefficients[0]), 'hex')) : undefined;
    dealt.push({ shares: create_shares(coefficients, n), commitments, proof });
  }
  const shares = [];
  for (let member = 1; member <= n; member++) {
    const received = [];
    dealt.forEach((d, i) => {
      if (withProof) {
        const xonly = Buffer.from(d.commitments[0], 'hex').subarray(1);
        if (!schnorr.verify(d.proof, proofMessage(i + 1, d.commitments[0]), xonly)) {
          throw new Error(`dealer ${i + 1}'s proof of knowledge does not verify`);
        }
      }
      const share = d.shares[member - 1];
      if (!verify_share(d.commitments, share, t)) throw new Error(`dealer ${i + 1}'s share for ${member} does not verify`);
      received.push(share);
    });
    shares.push(combine_set(received));
  }
  const commitments = dealt.map((d) => d.commitments).reduce((a, b) => merge_share_commits(a, b));
  const verification = shares.map((s) => verificationShare(commitments, s.idx).toHex(true));
  return { shares, groupKey: commitments[0], commitments, verification };
}

/** The library checks shares by x-coordinate only; this checks each member's secret share against its verification share as a full point (untimed). */
function checkKey(key) {
  key.shares.forEach((share, i) => {
    const expected = Point.BASE.multiply(BigInt('0x' + share.seckey)).toHex(true);
    if (expected !== key.verification[i]) throw new Error(`member ${share.idx}'s share does not match its verification share`);
  });
}

function roundOne(signers) {
  return signers.map((share) => create_commit_pkg(share));
}

function roundTwo(key, signers, packages, message, checkPartials) {
  const nonces = packages.map(({ idx, hidden_pn, binder_pn }) => ({ idx, hidden_pn, binder_pn }));
  const contexts = signers.map(() => get_group_signing_ctx(key.groupKey, nonces, message));
  const partials = signers.map((share, i) => sign_msg(contexts[i], share, packages[i]));
  const coordinator = contexts[0];
  let checkMs = 0;
  if (checkPartials) {
    const start = process.hrtime.bigint();
    partials.forEach((partial, i) => {
      const ok = verify_partial_sig(coordinator, nonces[i], key.verification[partial.idx - 1], partial.psig);
      if (!ok) throw new Error(`partial signature of ${partial.idx} does not verify`);
    });
    checkMs = Number(process.hrtime.bigint() - start) / 1e6;
  }
  const signature = combine_partial_sigs(coordinator, partials);
  if (!checkPartials && !verify_final_sig(coordinator, message, signature)) {
    throw new Error('the aggregate signature does not verify');
  }
  return { signature, checkMs };
}

const references = new ReferenceSigners();
const checks = new Checks();
const rows = [];
references.sample(20);

for (const [t, n] of configs) {
  const config = `${t}-of-${n}`;
  const kg = new Series(`${config} key generation`);
  const kgProof = new Series(`${config} key generation with proofs of knowledge`);
  let key;
  for (let run = -warmup; run < keygenRuns; run++) {
    const plain = await timed(() => keygen(n, t, false));
    const proved = await timed(() => keygen(n, t, true));
    checkKey(plain.value);
    checkKey(proved.value);
    if (run >= 0) {
      kg.add(plain.ms);
      kgProof.add(proved.ms);
    }
    key = proved.value;
    references.sample(1);
  }
  const xonly = Buffer.from(key.groupKey, 'hex').subarray(1);

  const quorums = subsets(n, t);
  const one = new Series(`${config} round one`);
  const twoChecked = new Series(`${config} round two, partials checked, aggregate`);
  const partialChecks = new Series(`${config} partial signature checks`);
  const signChecked = new Series(`${config} sign, partials checked`);
  const signFinal = new Series(`${config} sign, aggregate checked once`);
  for (let run = -warmup; run < runs; run++) {
    const signers = quorums[(run + warmup) % quorums.length].map((i) => key.shares[i]);
    for (const checkPartials of [true, false]) {
      const message = randomBytes(32);
      const r1 = await timed(() => roundOne(signers));
      const r2 = await timed(() => roundTwo(key, signers, r1.value, hex(message), checkPartials));
      checks.checkBip340(xonly, message, Buffer.from(r2.value.signature, 'hex'));
      if (run < 0) continue;
      if (checkPartials) {
        one.add(r1.ms);
        twoChecked.add(r2.ms);
        partialChecks.add(r2.value.checkMs);
        signChecked.add(r1.ms + r2.ms);
      } else {
        signFinal.add(r1.ms + r2.ms);
      }
    }
    references.sample(1);
  }
  const row = (phase, series, note) => rows.push({ library: LIBRARY, version: VERSION, config, phase, series, reference: 'bip340', note });
  row('key generation, all parties', kg, 'dealerless, from the package\'s VSS functions; no proof of knowledge');
  row('key generation with proofs of knowledge', kgProof, 'each dealer\'s BIP340 proof made and checked with noble');
  row('sign, aggregate checked once', signFinal, 'round one + round two + aggregation + one final check');
  row('sign, every partial signature checked', signChecked, 'the package README\'s flow');
  row('round one', one, 'nonce commitments, message-independent');
  row('round two + checks + aggregation', twoChecked, 'each signer builds its own signing context');
  row('(of which) partial signature checks', partialChecks, 'verify_partial_sig compares x-coordinates only');
}

report('frost', rows, references, checks);
