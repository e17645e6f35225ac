// RFC 8785 (JCS) canonical JSON: members sorted by the UTF-16 code units of their keys (the
// order of JavaScript's default sort), strings and numbers exactly as JSON.stringify writes them
// (JCS is defined on ECMAScript's serialization). Integers beyond 2^53 - 1 are refused, as the
// ledger refuses them (docs/ledger.md §1): JSON.stringify would write them as digits.

export function canonical(value) {
  if (value === null || typeof value === "boolean" || typeof value === "string") {
    return JSON.stringify(value);
  }
  if (typeof value === "number") {
    if (!Number.isFinite(value)) throw new Error("a number has no canonical JSON form");
    // Written as digits (below 1e21), it would be read back as an integer the ledger refuses.
    if (Number.isInteger(value) && !Number.isSafeInteger(value) && Math.abs(value) < 1e21) {
      throw new Error("an integer beyond 2^53 - 1 has no canonical JSON form here");
    }
    return JSON.stringify(value);
  }
  if (Array.isArray(value)) return `[${value.map(canonical).join(",")}]`;
  if (typeof value === "object") {
    const keys = Object.keys(value).sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonical(value[k])}`).join(",")}}`;
  }
  throw new Error(`a ${typeof value} has no JSON form`);
}
