// C2SP signed notes, tlog-checkpoint and tlog-cosignature/v1 in the browser (docs/ledger.md §3),
// as custodiet.ledger.verify checks them: Ed25519 with WebCrypto; signatures by unknown keys are
// ignored, a known key's signature that does not verify makes the note invalid.

import { VerificationError, b64decode, concat, equal, sha256 } from "./merkle.js";

export const LOG_KEY = 0x01;
export const WITNESS_KEY = 0x04;
const PREFIX = "\u2014 ";
const MAX_SIGNATURES = 100;
const encoder = new TextEncoder();

function validName(name) {
  return name.length > 0 && !name.includes("+") && !/\s/u.test(name);
}

function decode(text, what) {
  try {
    return b64decode(text);
  } catch {
    throw new VerificationError(`${what} is not valid base64`);
  }
}

export async function keyId(name, type, publicKey) {
  const digest = await sha256(concat(encoder.encode(name + "\n"), new Uint8Array([type]), publicKey));
  return digest.slice(0, 4);
}

export async function parseVkey(vkey) {
  const text = vkey.trim();
  const first = text.indexOf("+");
  const second = first < 0 ? -1 : text.indexOf("+", first + 1);
  if (second < 0 || second - first - 1 !== 8) {
    throw new VerificationError("verifier key is not name+keyid+key");
  }
  const name = text.slice(0, first);
  const hexId = text.slice(first + 1, second);
  if (!validName(name)) throw new VerificationError("key name is empty or contains '+' or whitespace");
  const raw = decode(text.slice(second + 1), "verifier key");
  if (raw.length !== 33 || (raw[0] !== LOG_KEY && raw[0] !== WITNESS_KEY)) {
    throw new VerificationError("verifier key is not an Ed25519 key");
  }
  const id = await keyId(name, raw[0], raw.slice(1));
  const idHex = Array.from(id, (b) => b.toString(16).padStart(2, "0")).join("");
  if (hexId.toLowerCase() !== idHex) throw new VerificationError("verifier key id does not match its key");
  return { name, keyId: id, type: raw[0], publicKey: raw.slice(1) };
}

export function splitNote(text) {
  for (const ch of text) {
    if (ch < " " && ch !== "\n") throw new VerificationError("note holds a control character");
  }
  const at = text.lastIndexOf("\n\n");
  const sigs = at < 0 ? "" : text.slice(at + 2);
  if (at < 0 || !sigs.endsWith("\n")) {
    throw new VerificationError("note has no blank line before its signatures");
  }
  const lines = sigs.slice(0, -1).split("\n");
  if (lines.length > MAX_SIGNATURES) {
    throw new VerificationError(`note has more than ${MAX_SIGNATURES} signature lines`);
  }
  const signatures = lines.map((line) => {
    const rest = line.startsWith(PREFIX) ? line.slice(PREFIX.length) : "";
    const space = rest.indexOf(" ");
    const name = space < 0 ? rest : rest.slice(0, space);
    const encoded = space < 0 ? "" : rest.slice(space + 1);
    if (!line.startsWith(PREFIX) || !encoded || encoded.includes(" ")) {
      throw new VerificationError("malformed signature line in note");
    }
    if (!validName(name)) throw new VerificationError("key name is empty or contains '+' or whitespace");
    const raw = decode(encoded, "note signature");
    if (raw.length < 5) throw new VerificationError("note signature is too short");
    return { name, raw };
  });
  return { body: text.slice(0, at) + "\n", signatures };
}

async function ed25519Verify(publicKey, signature, message) {
  const key = await crypto.subtle.importKey("raw", publicKey, { name: "Ed25519" }, false, ["verify"]);
  return crypto.subtle.verify({ name: "Ed25519" }, key, signature, message);
}

async function signatureValid(key, raw, body) {
  let payload;
  let message;
  let timestamp = null;
  if (key.type === LOG_KEY) {
    payload = raw.slice(4);
    message = encoder.encode(body);
  } else {
    const view = new DataView(raw.buffer, raw.byteOffset + 4, 8);
    const big = view.getBigUint64(0);
    if (big >= 2n ** 63n) {
      throw new VerificationError(`cosignature by ${key.name} has a timestamp of 2^63 or more`);
    }
    timestamp = Number(big);
    payload = raw.slice(12);
    message = encoder.encode(`cosignature/v1\ntime ${big}\n${body}`);
  }
  if (payload.length !== 64) throw new VerificationError(`signature by ${key.name} has the wrong length`);
  return { valid: await ed25519Verify(key.publicKey, payload, message), timestamp };
}

// The checkpoint `text` signed by `logKey` (and by every witness in `witnesses`, parsed vkeys).
// Returns {origin, size, root, body, signers: [{name, kind, timestamp}], unknown: [names]}.
export async function verifyCheckpoint(text, logKey, witnesses = []) {
  const { body, signatures } = splitNote(text);
  const lines = body.split("\n");
  const origin = lines[0];
  const size = lines.length >= 4 ? lines[1] : "";
  if (!origin || !/^[0-9]+$/.test(size) || size !== String(Number(size))) {
    throw new VerificationError("checkpoint body is not origin, size, root");
  }
  const root = decode(lines[2], "checkpoint root");
  if (root.length !== 32) throw new VerificationError(`checkpoint root is ${root.length} bytes, not 32`);
  if (origin !== logKey.name) {
    throw new VerificationError(`checkpoint origin ${origin} is not the key's ${logKey.name}`);
  }
  const known = [logKey, ...witnesses];
  const signers = [];
  const unknown = [];
  for (const { name, raw } of signatures) {
    const key = known.find((k) => k.name === name && equal(k.keyId, raw.slice(0, 4)));
    if (!key) {
      unknown.push(name);
      continue;
    }
    const { valid, timestamp } = await signatureValid(key, raw, body);
    if (!valid) throw new VerificationError(`invalid signature by ${name}`);
    signers.push({ name, kind: key.type === LOG_KEY ? "log" : "witness", timestamp });
  }
  const missing = known.filter((k) => !signers.some((s) => s.name === k.name)).map((k) => k.name);
  if (missing.length) {
    throw new VerificationError(`checkpoint lacks a valid signature by ${missing.join(", ")}`);
  }
  return { origin, size: Number(size), root, body, signers, unknown };
}
