// Driving Silence Laboratories' DKLs23 WASM sessions with every party in one process.
//
// The module is passed in, so the same driver runs the published 1.1.2 build and the
// build BitGo pins. Messages carry `from_id` and, for a direct message, `to_id`; a
// session consumes the messages it is handed, so every recipient gets its own clone.
// The flow of rounds is the one the package README documents.

/** The clones of `messages` that party `id` should receive (broadcasts from others, and direct messages to it). */
export function inbox(messages, id) {
  return messages
    .filter((m) => m.from_id !== id && (m.to_id === undefined || m.to_id === id))
    .map((m) => m.clone());
}

/** Total payload bytes of `messages` (copies them out of the WASM heap: not for timed code). */
export function payloadBytes(messages) {
  return messages.reduce((sum, m) => sum + m.payload.length, 0);
}

function freeAll(messages) {
  for (const m of messages) m.free();
}

/**
 * Distributed key generation among `n` parties, any `t` of whom can sign.
 * Returns the serialized key shares (party order), the group public key and, when
 * `measure` is set, the payload bytes of each round.
 */
export function keygen(wasm, n, t, measure = false) {
  const parties = Array.from({ length: n }, (_, id) => new wasm.KeygenSession(n, t, id));
  const bytes = [];
  const round = (messages, extra) => {
    const next = parties.flatMap((p, id) =>
      extra === undefined ? p.handleMessages(inbox(messages, id)) : p.handleMessages(inbox(messages, id), extra),
    );
    if (measure) bytes.push(payloadBytes(messages));
    freeAll(messages);
    return next;
  };
  // Round 1: every party broadcasts its first message.
  const first = parties.map((p) => p.createFirstMessage());
  // Round 2: direct messages to every other party; then each party commits to its chain-code share.
  const second = round(first);
  const commitments = parties.map((p) => p.calculateChainCodeCommitment());
  // Round 3: direct messages again.
  const third = round(second);
  // Round 4: broadcasts, which need every chain-code commitment.
  const fourth = round(third, commitments);
  const last = round(fourth);
  if (last.length !== 0) throw new Error('key generation produced messages after its last round');
  const shares = parties.map((p) => p.keyshare());
  const publicKey = Uint8Array.from(shares[0].publicKey);
  for (const share of shares) {
    if (Buffer.compare(Buffer.from(share.publicKey), Buffer.from(publicKey)) !== 0) {
      throw new Error('parties disagree on the group public key');
    }
  }
  const serialized = shares.map((s) => Uint8Array.from(s.toBytes()));
  for (const share of shares) share.free();
  return { shares: serialized, publicKey, roundBytes: bytes };
}

/** Key shares of the parties `signers` (ids), loaded from bytes. */
export function loadShares(wasm, shares, signers) {
  return signers.map((id) => wasm.Keyshare.fromBytes(shares[id]));
}

/**
 * The message-independent part of signing: a session per signer (each consumes its key
 * share) and three rounds, after which each holds a pre-signature.
 * `Session` is the session class (SignSession, or the OT variant of BitGo's build).
 */
export function presign(Session, keyshares, signers, measure = false) {
  const sessions = keyshares.map((share) => new Session(share, 'm'));
  const bytes = [];
  let messages = sessions.map((s) => s.createFirstMessage());
  for (let r = 0; r < 3; r++) {
    const next = sessions.flatMap((s, i) => s.handleMessages(inbox(messages, signers[i])));
    if (measure) bytes.push(payloadBytes(messages));
    freeAll(messages);
    messages = next;
  }
  if (messages.length !== 0) throw new Error('pre-signing produced messages after its third round');
  return { sessions, roundBytes: bytes };
}

/** The online round: each signer broadcasts its last message for `digest`, then each combines. */
export function online(sessions, signers, digest, measure = false) {
  const last = sessions.map((s) => s.lastMessage(digest));
  const bytes = measure ? payloadBytes(last) : 0;
  const signatures = sessions.map((s, i) => s.combine(inbox(last, signers[i])));
  freeAll(last);
  const [r, s] = signatures[0];
  for (const [ri, si] of signatures) {
    if (Buffer.compare(Buffer.from(ri), Buffer.from(r)) !== 0 || Buffer.compare(Buffer.from(si), Buffer.from(s)) !== 0) {
      throw new Error('signers produced different signatures');
    }
  }
  return { r: Uint8Array.from(r), s: Uint8Array.from(s), bytes };
}

/** Every `t`-element subset of 0..n-1, in lexicographic order. */
export function subsets(n, t) {
  const out = [];
  const walk = (start, picked) => {
    if (picked.length === t) {
      out.push([...picked]);
      return;
    }
    for (let i = start; i < n; i++) walk(i + 1, [...picked, i]);
  };
  walk(0, []);
  return out;
}
