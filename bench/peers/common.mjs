// Shared pieces of the peer benchmarks: settings, timing, summaries, single-party
// reference signers, independent signature checks and the report.
//
// Every script runs all parties of a protocol in this one Node process, one after
// another, and passes their messages in memory. A figure is therefore the sum of every
// party's compute for that phase, comparable with shardvault's bench/ scripts, which
// measure the same way.

import { createHash, createPublicKey, randomBytes, verify as opensslVerify } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import os from 'node:os';

import { schnorr, secp256k1 } from '@noble/curves/secp256k1.js';

const HERE = dirname(fileURLToPath(import.meta.url));
export const RESULTS = join(HERE, 'results');

/** The version of an installed package, read from its package.json under `base` (default: this folder's node_modules). */
export function installedVersion(name, base = join(HERE, 'node_modules')) {
  return JSON.parse(readFileSync(join(base, name, 'package.json'), 'utf8')).version;
}

/** Positive integer from the environment, or the default. */
function envCount(name, fallback) {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 0) {
    throw new Error(`${name} must be a non-negative integer, not ${JSON.stringify(raw)}`);
  }
  return value;
}

/** Run counts: RUNS (signing), KG_RUNS (key generation), WARMUP (untimed, before each series). */
export function settings(defaults) {
  return {
    runs: envCount('RUNS', defaults.runs),
    keygenRuns: envCount('KG_RUNS', defaults.keygenRuns),
    warmup: envCount('WARMUP', defaults.warmup),
  };
}

/** Milliseconds spent in `fn` (awaited), measured with the monotonic high-resolution clock. */
export async function timed(fn) {
  const start = process.hrtime.bigint();
  const value = await fn();
  const elapsed = Number(process.hrtime.bigint() - start) / 1e6;
  return { value, ms: elapsed };
}

/** A named list of samples in milliseconds. */
export class Series {
  constructor(label) {
    this.label = label;
    this.samples = [];
  }

  add(ms) {
    this.samples.push(ms);
  }

  summary() {
    const sorted = [...this.samples].sort((a, b) => a - b);
    const n = sorted.length;
    if (n === 0) return { n: 0 };
    const middle = Math.floor(n / 2);
    const median = n % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
    return {
      n,
      median,
      min: sorted[0],
      max: sorted[n - 1],
      p90: sorted[Math.min(n - 1, Math.ceil(0.9 * n) - 1)],
    };
  }
}

/**
 * Single-party signers timed in the same process, so a threshold figure can be read
 * as a multiple of one ordinary signature made under the same machine load.
 * `sample()` is called between threshold runs; the medians use those samples.
 */
export class ReferenceSigners {
  constructor() {
    this.secretKey = secp256k1.utils.randomSecretKey();
    this.ecdsa = new Series('noble secp256k1.sign (ECDSA, 32-byte digest)');
    this.bip340 = new Series('noble schnorr.sign (BIP340)');
  }

  sample(times = 3) {
    for (let i = 0; i < times; i++) {
      const digest = randomBytes(32);
      const start = process.hrtime.bigint();
      secp256k1.sign(digest, this.secretKey, { prehash: false });
      const middle = process.hrtime.bigint();
      schnorr.sign(digest, this.secretKey);
      const end = process.hrtime.bigint();
      this.ecdsa.add(Number(middle - start) / 1e6);
      this.bip340.add(Number(end - middle) / 1e6);
    }
  }
}

/** A random message and its SHA-256 digest (what an ECDSA signer signs). */
export function randomMessage() {
  const message = randomBytes(48);
  const digest = createHash('sha256').update(message).digest();
  return { message, digest };
}

function base64url(bytes) {
  return Buffer.from(bytes).toString('base64url');
}

/** A node:crypto (OpenSSL) key object for a SEC1-encoded secp256k1 public key. */
function opensslKey(publicKey) {
  const uncompressed = secp256k1.Point.fromBytes(publicKey).toBytes(false);
  return createPublicKey({
    format: 'jwk',
    key: {
      kty: 'EC',
      crv: 'secp256k1',
      x: base64url(uncompressed.subarray(1, 33)),
      y: base64url(uncompressed.subarray(33, 65)),
    },
  });
}

/** Counts of every signature checked, and collected records for the Python re-check. */
export class Checks {
  constructor() {
    this.ecdsa = 0;
    this.ecdsaLowS = 0;
    this.bip340 = 0;
    this.records = [];
  }

  /**
   * An ECDSA signature (r, s as 32-byte arrays) over sha256(message) under `publicKey`
   * (SEC1 bytes): noble over the digest, and OpenSSL over the message. Throws if either
   * refuses it.
   */
  checkEcdsa(publicKey, message, digest, r, s) {
    const signature = Buffer.concat([Buffer.from(r), Buffer.from(s)]);
    if (signature.length !== 64) throw new Error(`ECDSA signature of ${signature.length} bytes`);
    if (!secp256k1.verify(signature, digest, publicKey, { prehash: false, lowS: false })) {
      throw new Error('noble refused an ECDSA signature');
    }
    const key = opensslKey(publicKey);
    if (!opensslVerify('sha256', message, { key, dsaEncoding: 'ieee-p1363' }, signature)) {
      throw new Error('OpenSSL refused an ECDSA signature');
    }
    this.ecdsa += 1;
    const half = secp256k1.Point.CURVE().n >> 1n;
    if (BigInt('0x' + Buffer.from(s).toString('hex')) <= half) this.ecdsaLowS += 1;
    this.records.push({
      scheme: 'ecdsa',
      public_key: Buffer.from(publicKey).toString('hex'),
      digest: Buffer.from(digest).toString('hex'),
      signature: signature.toString('hex'),
    });
  }

  /** A BIP340 signature over a 32-byte message under an x-only key: noble, then recorded. */
  checkBip340(xonlyKey, message, signature) {
    if (!schnorr.verify(signature, message, xonlyKey)) {
      throw new Error('noble refused a BIP340 signature');
    }
    this.bip340 += 1;
    this.records.push({
      scheme: 'bip340',
      public_key: Buffer.from(xonlyKey).toString('hex'),
      digest: Buffer.from(message).toString('hex'),
      signature: Buffer.from(signature).toString('hex'),
    });
  }
}

function format(value) {
  if (value === undefined) return '';
  if (value >= 100) return value.toFixed(0);
  if (value >= 10) return value.toFixed(1);
  return value.toFixed(2);
}

/**
 * Print a table of `rows` ({library, version, config, phase, series, note}) with each
 * median also as a multiple of the reference signer named by `row.reference`, then write
 * results/<name>.json (every summary, the environment) and results/<name>-signatures.json
 * (every signature, for check_signatures.py).
 */
export function report(name, rows, references, checks, extra = {}) {
  const refMedian = {
    ecdsa: references.ecdsa.summary().median,
    bip340: references.bip340.summary().median,
  };
  const lines = [];
  lines.push(`${name}: ${os.cpus().length} CPU (${os.cpus()[0]?.model ?? 'unknown'}), Node ${process.version}, load ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}`);
  lines.push('');
  lines.push('| library | config | phase | median ms | min | max | n | ratio | note |');
  lines.push('|---|---|---|---|---|---|---|---|---|');
  const out = [];
  for (const row of rows) {
    const s = row.series.summary();
    const ratio = row.reference ? s.median / refMedian[row.reference] : undefined;
    lines.push(
      `| ${row.library} ${row.version} | ${row.config} | ${row.phase} | ${format(s.median)} | ${format(s.min)} | ${format(s.max)} | ${s.n} | ${ratio === undefined ? '' : format(ratio) + 'x'} | ${row.note ?? ''} |`,
    );
    out.push({ ...row, series: undefined, label: row.series.label, ...s, ratio });
  }
  lines.push('');
  lines.push(`reference, median of ${references.ecdsa.samples.length} samples taken between the runs: ` +
    `noble ECDSA sign ${format(refMedian.ecdsa)} ms, noble BIP340 sign ${format(refMedian.bip340)} ms`);
  lines.push(`signatures checked: ECDSA ${checks.ecdsa} (noble and OpenSSL; ${checks.ecdsaLowS} low-s), BIP340 ${checks.bip340} (noble)`);
  console.log(lines.join('\n'));
  mkdirSync(RESULTS, { recursive: true });
  const environment = {
    node: process.version,
    cpus: os.cpus().length,
    cpu_model: os.cpus()[0]?.model,
    loadavg_at_end: os.loadavg(),
    date: new Date().toISOString(),
  };
  writeFileSync(
    join(RESULTS, `${name}.json`),
    JSON.stringify({ environment, references: { ecdsa: references.ecdsa.summary(), bip340: references.bip340.summary() }, rows: out, checks: { ecdsa: checks.ecdsa, ecdsa_low_s: checks.ecdsaLowS, bip340: checks.bip340 }, ...extra }, null, 2) + '\n',
  );
  writeFileSync(join(RESULTS, `${name}-signatures.json`), JSON.stringify(checks.records) + '\n');
}
