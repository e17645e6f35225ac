// RFC 6962 / RFC 9162 §2.1 in the browser: leaf and node hashes with WebCrypto SHA-256, and the
// strict inclusion and consistency proof checks of custodiet.ledger.verify (same algorithm, same
// refusals: hashes that are not 32 bytes, proofs too long or too short, an index outside the tree,
// a consistency proof from an empty tree). Sizes are plain numbers (exact up to 2^53).

export const HASH_SIZE = 32;

export class VerificationError extends Error {
  constructor(message, expected = null, computed = null) {
    super(message);
    this.name = "VerificationError";
    this.expected = expected;
    this.computed = computed;
  }
}

export function b64decode(text) {
  if (typeof text !== "string" || !/^[A-Za-z0-9+/]*={0,2}$/.test(text) || text.length % 4) {
    throw new VerificationError("not valid base64");
  }
  const raw = atob(text);
  const out = new Uint8Array(raw.length);
  for (let i = 0; i < raw.length; i++) out[i] = raw.charCodeAt(i);
  return out;
}

export function b64encode(bytes) {
  let raw = "";
  for (const b of bytes) raw += String.fromCharCode(b);
  return btoa(raw);
}

export function hex(bytes) {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

export function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

export function equal(a, b) {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i] ^ b[i];
  return diff === 0;
}

export async function sha256(bytes) {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
}

const LEAF = new Uint8Array([0]);
const NODE = new Uint8Array([1]);

export function leafHash(data) {
  return sha256(concat(LEAF, data));
}

export function nodeHash(left, right) {
  return sha256(concat(NODE, left, right));
}

const half = (n) => Math.floor(n / 2);
const odd = (n) => n % 2 === 1;

// The walk §2.1.3.2 and §2.1.4.2 share: fr hashes in only the proof nodes on the left, sr all.
async function walk(fn, sn, seed, path, what) {
  for (const h of [seed, ...path]) {
    if (h.length !== HASH_SIZE) {
      throw new VerificationError(`a hash is ${h.length} bytes, not ${HASH_SIZE}`);
    }
  }
  let fr = seed;
  let sr = seed;
  for (const c of path) {
    if (sn === 0) throw new VerificationError(`${what} proof is too long`);
    if (odd(fn) || fn === sn) {
      fr = await nodeHash(c, fr);
      sr = await nodeHash(c, sr);
      while (fn !== 0 && !odd(fn)) {
        fn = half(fn);
        sn = half(sn);
      }
    } else {
      sr = await nodeHash(sr, c);
    }
    fn = half(fn);
    sn = half(sn);
  }
  if (sn !== 0) throw new VerificationError(`${what} proof is too short`);
  return [fr, sr];
}

function match(expected, computed, message) {
  if (!equal(expected, computed)) throw new VerificationError(message, expected, computed);
}

export async function verifyInclusion(index, size, leaf, proof, root) {
  if (!(Number.isSafeInteger(index) && Number.isSafeInteger(size) && 0 <= index && index < size)) {
    throw new VerificationError(`index ${index} is outside a tree of size ${size}`);
  }
  const [, computed] = await walk(index, size - 1, leaf, proof, "inclusion");
  match(root, computed, `inclusion proof for index ${index} does not lead to the root`);
}

export async function verifyConsistency(size1, size2, proof, root1, root2) {
  if (!(Number.isSafeInteger(size1) && Number.isSafeInteger(size2) && 0 < size1 && size1 <= size2)) {
    throw new VerificationError(`sizes ${size1} and ${size2} are not 0 < old <= new`);
  }
  if (size1 === size2) {
    if (proof.length || !equal(root1, root2)) {
      throw new VerificationError("equal sizes need an empty proof and equal roots", root1, root2);
    }
    return;
  }
  if (!proof.length) throw new VerificationError("consistency proof is empty");
  const path = isPowerOfTwo(size1) ? [root1, ...proof] : [...proof];
  let fn = size1 - 1;
  let sn = size2 - 1;
  while (odd(fn)) {
    fn = half(fn);
    sn = half(sn);
  }
  const [fr, sr] = await walk(fn, sn, path[0], path.slice(1), "consistency");
  match(root1, fr, "old root does not match");
  match(root2, sr, "new root does not match");
}

export function isPowerOfTwo(n) {
  while (n > 1 && !odd(n)) n = half(n);
  return n === 1;
}

// The largest power of two strictly below n (n >= 2).
export function splitPoint(n) {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}
