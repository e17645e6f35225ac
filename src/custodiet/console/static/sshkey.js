// An unencrypted OpenSSH Ed25519 private key (openssh-key-v1, as `ssh-keygen -t ed25519` and
// `custodiet key new` write it) parsed in the browser and imported into WebCrypto as a
// non-extractable signing key. The file's bytes stay in this page: nothing here sends them.

import { b64decode, b64encode, equal } from "./merkle.js";

const MAGIC = new TextEncoder().encode("openssh-key-v1\0");

export class KeyError extends Error {}

class Reader {
  constructor(bytes) {
    this.bytes = bytes;
    this.at = 0;
  }
  uint32() {
    if (this.at + 4 > this.bytes.length) throw new KeyError("the key file is truncated");
    const v = new DataView(this.bytes.buffer, this.bytes.byteOffset + this.at, 4).getUint32(0);
    this.at += 4;
    return v;
  }
  string() {
    const n = this.uint32();
    if (this.at + n > this.bytes.length) throw new KeyError("the key file is truncated");
    const out = this.bytes.slice(this.at, this.at + n);
    this.at += n;
    return out;
  }
  text() {
    return new TextDecoder().decode(this.string());
  }
}

function b64url(bytes) {
  return b64encode(bytes).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function sshString(bytes) {
  const out = new Uint8Array(4 + bytes.length);
  new DataView(out.buffer).setUint32(0, bytes.length);
  out.set(bytes, 4);
  return out;
}

// The `ssh-ed25519 AAAA...` line of a 32-byte public key.
export function publicKeyLine(publicKey) {
  const type = new TextEncoder().encode("ssh-ed25519");
  const blob = new Uint8Array([...sshString(type), ...sshString(publicKey)]);
  return `ssh-ed25519 ${b64encode(blob)}`;
}

export function parsePrivateKey(text) {
  const match = /-----BEGIN OPENSSH PRIVATE KEY-----([\s\S]*?)-----END OPENSSH PRIVATE KEY-----/.exec(text);
  if (!match) throw new KeyError("not an OpenSSH private key (-----BEGIN OPENSSH PRIVATE KEY-----)");
  let bytes;
  try {
    bytes = b64decode(match[1].replace(/\s+/g, ""));
  } catch {
    throw new KeyError("the key's base64 is damaged");
  }
  if (!equal(bytes.slice(0, MAGIC.length), MAGIC)) throw new KeyError("not an openssh-key-v1 key");
  const r = new Reader(bytes.slice(MAGIC.length));
  const cipher = r.text();
  const kdf = r.text();
  r.string(); // kdf options
  if (cipher !== "none" || kdf !== "none") {
    throw new KeyError("the key is passphrase-protected; the console reads unencrypted keys only");
  }
  if (r.uint32() !== 1) throw new KeyError("the file holds more than one key");
  r.string(); // public key blob
  const p = new Reader(r.string());
  if (p.uint32() !== p.uint32()) throw new KeyError("the key's check bytes differ (damaged file)");
  if (p.text() !== "ssh-ed25519") throw new KeyError("not an Ed25519 key");
  const publicKey = p.string();
  const secret = p.string();
  const comment = p.text();
  if (publicKey.length !== 32 || secret.length !== 64 || !equal(secret.slice(32), publicKey)) {
    throw new KeyError("the Ed25519 key is malformed");
  }
  return { seed: secret.slice(0, 32), publicKey, comment };
}

// {key: CryptoKey (sign only, not extractable), publicKey, line} from the key file's text.
export async function importPrivateKey(text) {
  const { seed, publicKey } = parsePrivateKey(text);
  const jwk = { kty: "OKP", crv: "Ed25519", d: b64url(seed), x: b64url(publicKey) };
  seed.fill(0);
  const key = await crypto.subtle.importKey("jwk", jwk, { name: "Ed25519" }, false, ["sign"]);
  return { key, publicKey, line: publicKeyLine(publicKey) };
}
