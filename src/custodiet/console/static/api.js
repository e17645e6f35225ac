// The console's only way to the vault: the service's public HTTP API (docs/openapi.json).
// Signed actions are built and signed here, with a key that never leaves the page.

import { canonical } from "./canonical.js";
import { b64encode } from "./merkle.js";

export class ApiError extends Error {
  constructor(status, error) {
    super(error?.message || `the server answered ${status}`);
    this.status = status;
    this.code = error?.code || "";
    this.hint = error?.hint || "";
    this.span = error?.span || null; // where in the query's SQL a refusal points (code points)
  }
}

async function answer(response) {
  if (response.ok) return response;
  let body = {};
  try {
    body = await response.json();
  } catch {
    // not the JSON error shape
  }
  throw new ApiError(response.status, body.error);
}

export async function getJSON(path) {
  return (await answer(await fetch(path, { headers: { accept: "application/json" } }))).json();
}

export async function getText(path) {
  return (await answer(await fetch(path))).text();
}

const ROUTES = {
  "agreement.approve": "/v1/agreements/approve",
  "reid.approve": "/v1/reid/approve",
  "reid.deny": "/v1/reid/deny",
  "reid.request": "/v1/reid/request",
  query: "/v1/query",
  "screen.run": "/v1/screens/run",
};

function now() {
  // RFC 3339 UTC with microseconds, as the Python client writes it
  return new Date().toISOString().replace(/\.(\d{3})Z$/, ".$1000Z");
}

function nonce() {
  return Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) =>
    b.toString(16).padStart(2, "0"),
  ).join("");
}

// The request object `principal` signs to do `action` with `args` on the log `origin`.
export function requestObject(origin, principal, action, args) {
  return { v: 1, origin, principal, action, args, time: now(), nonce: nonce() };
}

export function message(request) {
  return new TextEncoder().encode("custodiet/request/v1\n" + canonical(request));
}

export async function sign(key, request) {
  const signature = await crypto.subtle.sign({ name: "Ed25519" }, key, message(request));
  return { request, signature: b64encode(new Uint8Array(signature)) };
}

export async function act(document) {
  const route = ROUTES[document.request.action];
  const response = await fetch(route, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(document),
  });
  return (await answer(response)).json();
}
