// Proofs computed in the browser from the public C2SP tlog-tiles (`/tile/<L>/<N>[.p/<W>]`):
// tile (L, N) holds the level-8L node hashes 256N ... 256N + W - 1 of the tree at `size`.
// Nothing read here is trusted: every proof built from tiles is checked by merkle.js against a
// root whose checkpoint signature note.js verified, so a wrong tile makes verification fail.

import { HASH_SIZE, VerificationError, leafHash, nodeHash, splitPoint } from "./merkle.js";

const WIDTH = 256;
const HEIGHT = 8;

export function tilePath(index) {
  let text = String(index);
  text = "0".repeat((3 - (text.length % 3)) % 3) + text;
  const groups = text.match(/.{3}/g);
  return groups.map((g, i) => (i < groups.length - 1 ? "x" + g : g)).join("/");
}

function log2(n) {
  let l = 0;
  while (n > 1) {
    n /= 2;
    l++;
  }
  return l;
}

export class TileLog {
  // `base`: the server's URL prefix ("" for this origin); `size`: the verified checkpoint's size.
  constructor(base, size, fetcher = (url) => fetch(url)) {
    this.base = base;
    this.size = size;
    this.fetcher = fetcher;
    this.tiles = new Map();
    this.nodes = new Map();
    this.fetched = 0;
  }

  async _get(path) {
    const response = await this.fetcher(`${this.base}${path}`);
    if (!response.ok) throw new VerificationError(`${path}: the server answered ${response.status}`);
    this.fetched++;
    return new Uint8Array(await response.arrayBuffer());
  }

  _width(level, index) {
    const count = Math.floor(this.size / WIDTH ** level);
    const width = Math.min(WIDTH, count - index * WIDTH);
    if (width <= 0) throw new VerificationError(`no tile ${level}/${index} in a tree of size ${this.size}`);
    return width;
  }

  // The hashes of tile (level, index) as the tree of `size` has them.
  tile(level, index) {
    const width = this._width(level, index);
    const key = `${level}/${index}/${width}`;
    if (!this.tiles.has(key)) {
      const path = `/tile/${level}/${tilePath(index)}${width < WIDTH ? `.p/${width}` : ""}`;
      const promise = this._get(path).then((blob) => {
        if (blob.length !== width * HASH_SIZE) {
          throw new VerificationError(`${path} is ${blob.length} bytes, not ${width * HASH_SIZE}`);
        }
        return Array.from({ length: width }, (_, i) => blob.slice(i * HASH_SIZE, (i + 1) * HASH_SIZE));
      });
      this.tiles.set(key, promise);
      promise.catch(() => this.tiles.delete(key));
    }
    return this.tiles.get(key);
  }

  // The hash of the complete node (level, index): leaves [index 2^level, (index + 1) 2^level).
  node(level, index) {
    const key = `${level}/${index}`;
    if (!this.nodes.has(key)) this.nodes.set(key, this._node(level, index));
    return this.nodes.get(key);
  }

  async _node(level, index) {
    const tileLevel = Math.floor(level / HEIGHT);
    const below = 2 ** (level - tileLevel * HEIGHT);
    const first = index * below;
    const hashes = await this.tile(tileLevel, Math.floor(first / WIDTH));
    let layer = hashes.slice(first % WIDTH, (first % WIDTH) + below);
    if (layer.length !== below) throw new VerificationError(`node ${level}/${index} is not complete`);
    while (layer.length > 1) {
      const next = [];
      for (let i = 0; i < layer.length; i += 2) next.push(nodeHash(layer[i], layer[i + 1]));
      layer = await Promise.all(next);
    }
    return layer[0];
  }

  // MTH(D[start:end]) (RFC 9162 §2.1.1), from complete nodes.
  async subtree(start, end) {
    const n = end - start;
    const k = n === 1 ? 1 : splitPoint(n);
    if (k * 2 === n || n === 1) {
      if (start % n === 0) return this.node(log2(n), start / n);
    }
    return nodeHash(await this.subtree(start, start + k), await this.subtree(start + k, end));
  }

  async root() {
    if (this.size === 0) return new Uint8Array(await crypto.subtle.digest("SHA-256", new Uint8Array()));
    return this.subtree(0, this.size);
  }

  // PATH(m, D[n]) (RFC 9162 §2.1.3.1), hashes from the leaf up.
  async inclusionProof(m) {
    const path = async (at, start, end) => {
      if (end - start === 1) return [];
      const k = splitPoint(end - start);
      if (at < start + k) return [...(await path(at, start, start + k)), await this.subtree(start + k, end)];
      return [...(await path(at, start + k, end)), await this.subtree(start, start + k)];
    };
    return path(m, 0, this.size);
  }

  // PROOF(m, D[n]) (RFC 9162 §2.1.4.1).
  async consistencyProof(m) {
    const sub = async (mm, start, end, whole) => {
      const n = end - start;
      if (mm === n) return whole ? [] : [await this.subtree(start, end)];
      const k = splitPoint(n);
      if (mm <= k) return [...(await sub(mm, start, start + k, whole)), await this.subtree(start + k, end)];
      return [...(await sub(mm - k, start + k, end, false)), await this.subtree(start, start + k)];
    };
    return sub(m, 0, this.size, true);
  }
}

export { leafHash };
