// The overseer's ledger explorer: entries from /v1/entries, filtered and paged here; each entry's
// inclusion proof is computed from the public tiles and checked against the checkpoint, whose
// signature (and the witnesses' cosignatures) this browser verifies with the key it pinned. The
// last verified checkpoint is kept in localStorage: a newer one must be proven consistent with it
// (a consistency proof computed from tiles), and anything else raises the alarm.

import { getJSON, getText } from "./api.js";
import { stackedBars } from "./chart.js";
import { $, el, say } from "./dom.js";
import { b64decode, b64encode, hex, leafHash, verifyConsistency, verifyInclusion } from "./merkle.js";
import { parseVkey, verifyCheckpoint } from "./note.js";
import { TileLog } from "./tiles.js";

const PER = Number(new URLSearchParams(location.search).get("per"));
const PAGE = Number.isInteger(PER) && PER >= 5 && PER <= 500 ? PER : 50; // entries a page (?per=N)
const CHUNK = 10000; // what one /v1/entries call returns at most
const ACCESSES = new Set(["intent"]);
const encoder = new TextEncoder();

const state = { checkpoint: null, tiles: null, entries: [], shown: [], page: 0 };

// What this browser remembers about the log served here, keyed by the server's address (never
// by what the server says about itself: a server renaming its log must not get a clean slate).
const store = {
  get(name) {
    try {
      return JSON.parse(localStorage.getItem(`custodiet.${location.origin}.${name}`) || "null");
    } catch {
      return null;
    }
  },
  set(name, value) {
    localStorage.setItem(`custodiet.${location.origin}.${name}`, JSON.stringify(value));
  },
};

function alarm(text) {
  const box = $("#alarm");
  box.hidden = false;
  box.textContent = text;
}

async function trustedKeys(info) {
  let pinned = store.get("vkey");
  if (!pinned) {
    pinned = info.vkey;
    store.set("vkey", pinned);
  }
  $("#vkey").value = pinned;
  const witnesses = store.get("witnesses") || [];
  $("#witnesses").value = witnesses.join("\n");
  if (pinned !== info.vkey) {
    alarm(
      "The server names another log key than the one this browser pinned. If the custodians " +
        "rotated the key (ledger entry key.rotate), paste the new key below; otherwise do not trust this log.",
    );
  }
  return { log: await parseVkey(pinned), witnesses: await Promise.all(witnesses.map(parseVkey)) };
}

// Checks the new checkpoint against the last one this browser verified; true when consistent.
async function checkHistory(cp) {
  const seen = store.get("checkpoint");
  if (!seen) return true;
  const oldRoot = b64decode(seen.root);
  if (seen.size > cp.size) {
    alarm(`Rollback: this browser verified a checkpoint of size ${seen.size}; the log now shows size ${cp.size}.`);
    return false;
  }
  try {
    const proof = seen.size === 0 || seen.size === cp.size ? [] : await state.tiles.consistencyProof(seen.size);
    if (seen.size > 0) await verifyConsistency(seen.size, cp.size, proof, oldRoot, cp.root);
    else if (cp.size === 0 && b64encode(cp.root) !== seen.root) throw new Error("empty trees differ");
  } catch (error) {
    alarm(
      `Inconsistent log: the checkpoint of size ${cp.size} is not an extension of the checkpoint of ` +
        `size ${seen.size} this browser verified before (${error.message}). Keep both as evidence.`,
    );
    return false;
  }
  return true;
}

async function loadCheckpoint() {
  const info = await getJSON("/v1/info");
  const known = store.get("origin");
  if (known && known !== info.origin) {
    alarm(`This server served the log ${known} before; it now names another log, ${info.origin}.`);
  }
  if (!known) store.set("origin", info.origin);
  const keys = await trustedKeys(info);
  const note = await getText("/checkpoint");
  const cp = await verifyCheckpoint(note, keys.log, keys.witnesses);
  state.checkpoint = cp;
  state.tiles = new TileLog("", cp.size);
  const consistent = await checkHistory(cp);
  if (consistent) store.set("checkpoint", { size: cp.size, root: b64encode(cp.root), note });
  const signers = cp.signers.map((s) => (s.kind === "log" ? s.name : `witness ${s.name}`)).join(", ");
  say(
    $("#checkpoint-status"),
    `Checkpoint verified in this browser: ${cp.size} entries, root ${hex(cp.root).slice(0, 16)}…, ` +
      `signed by ${signers}${cp.unknown.length ? `; ${cp.unknown.length} signature(s) by keys not trusted here` : ""}` +
      (consistent ? "; consistent with what this browser saw before." : "."),
    consistent ? "ok" : "bad",
  );
}

async function loadEntries() {
  const size = state.checkpoint.size;
  const entries = [];
  for (let from = 0; from < size; from += CHUNK) {
    const to = Math.min(size, from + CHUNK) - 1;
    const text = await getText(`/v1/entries?from=${from}&to=${to}`);
    for (const line of text.split("\n")) {
      if (line) entries.push({ raw: line, entry: JSON.parse(line) });
    }
  }
  state.entries = entries;
  const options = (select, values) => {
    for (const v of [...new Set(values)].filter(Boolean).sort()) select.append(el("option", {}, v));
  };
  options($("#f-action"), entries.map((e) => e.entry.action));
  options($("#f-agreement"), entries.map((e) => e.entry.agreement));
}

function decision(entry) {
  return entry.decision || (entry.action === "refusal" ? "refused" : "");
}

function filtered() {
  const f = Object.fromEntries(new FormData($("#filters")));
  const from = f.from ? `${f.from}` : "";
  const to = f.to ? `${f.to}` : "";
  const actor = f.actor.trim().toLowerCase();
  return state.entries
    .filter(({ entry }) => {
      if (actor && !String(entry.actor || "").toLowerCase().includes(actor)) return false;
      if (f.action && entry.action !== f.action) return false;
      if (f.agreement && entry.agreement !== f.agreement) return false;
      if (f.decision && decision(entry) !== f.decision) return false;
      const t = String(entry.time || "").slice(0, 16);
      if (from && t < from) return false;
      if (to && t > to) return false;
      return true;
    })
    .reverse();
}

function render() {
  state.shown = filtered();
  const pages = Math.max(1, Math.ceil(state.shown.length / PAGE));
  state.page = Math.min(state.page, pages - 1);
  const rows = state.shown.slice(state.page * PAGE, (state.page + 1) * PAGE).map(({ entry }) =>
    el(
      "tr",
      {},
      el("td", {}, entry.index),
      el("td", {}, String(entry.time || "").replace("T", " ").slice(0, 19)),
      el("td", {}, entry.actor ?? ""),
      el("td", {}, entry.action === "intent" ? `intent: ${entry.attempted}` : entry.action),
      el("td", {}, entry.agreement ?? ""),
      el("td", {}, decision(entry)),
      el("td", {}, el("button", { type: "button", class: "verify", "data-index": entry.index, onclick: () => show(entry.index) }, `Verify #${entry.index}`)),
    ),
  );
  $("#entries tbody").replaceChildren(...rows);
  say($("#count"), `${state.shown.length} of ${state.entries.length} entries match.`);
  $("#page").textContent = `Page ${state.page + 1} of ${pages}`;
  $("#prev").disabled = state.page === 0;
  $("#next").disabled = state.page >= pages - 1;
  drawChart(state.shown);
}

function drawChart(entries) {
  const accesses = entries.filter(({ entry }) => ACCESSES.has(entry.action) && entry.agreement);
  const target = $("#chart");
  if (!accesses.length) {
    target.replaceChildren(el("p", {}, "No accesses among the entries shown."));
    return;
  }
  const times = accesses.map(({ entry }) => Date.parse(entry.time));
  const span = Math.max(...times) - Math.min(...times);
  const width = span > 3 * 86400e3 ? 10 : span > 3 * 3600e3 ? 13 : 16; // day, hour or minute
  const buckets = new Map();
  const series = [...new Set(accesses.map(({ entry }) => entry.agreement))].sort();
  for (const { entry } of [...accesses].reverse()) {
    const label = String(entry.time).slice(0, width).replace("T", " ");
    if (!buckets.has(label)) buckets.set(label, { label, counts: {} });
    const counts = buckets.get(label).counts;
    counts[entry.agreement] = (counts[entry.agreement] || 0) + 1;
  }
  const list = [...buckets.values()];
  const summary = series.map((s) => `${s}: ${accesses.filter((a) => a.entry.agreement === s).length}`).join("; ");
  target.replaceChildren(stackedBars(list, series, `Access attempts per ${width === 10 ? "day" : width === 13 ? "hour" : "minute"} by agreement (${summary})`));
}

// Verifies entry `index` against the verified checkpoint; returns the evidence or throws.
export async function verifyEntry(index) {
  const cp = state.checkpoint;
  const item = state.entries[index];
  if (!item || index >= cp.size) throw new Error(`entry ${index} is not covered by the checkpoint`);
  const leaf = await leafHash(encoder.encode(item.raw));
  const proof = await state.tiles.inclusionProof(index);
  await verifyInclusion(index, cp.size, leaf, proof, cp.root);
  return { leaf, proof };
}

async function show(index) {
  const item = state.entries[index];
  const section = $("#detail");
  section.hidden = false;
  $("#detail-heading").textContent = `Entry ${index}`;
  $("#entry-json").textContent = JSON.stringify(item.entry, null, 2);
  const verdict = $("#verdict");
  say(verdict, "Verifying in this browser…");
  $("#proof").replaceChildren();
  try {
    const { leaf, proof } = await verifyEntry(index);
    say(verdict, `Verified: entry ${index} is in the log of ${state.checkpoint.size} entries signed by ${state.checkpoint.origin}.`, "ok");
    const row = (k, v) => [el("dt", {}, k), el("dd", {}, el("code", {}, v))];
    $("#proof").replaceChildren(
      ...row("Leaf hash", b64encode(leaf)),
      ...proof.flatMap((h, i) => row(`Proof ${i + 1}`, b64encode(h))),
      ...row("Root (signed)", b64encode(state.checkpoint.root)),
    );
  } catch (error) {
    say(verdict, `NOT verified: ${error.message}`, "bad");
  }
  $("#detail-heading").focus();
}

// The server's verdict of the governance replay (GET /v1/audit), labelled as the server's.
async function loadAudit() {
  const out = $("#audit");
  try {
    const audit = await getJSON("/v1/audit");
    const at = `up to checkpoint size ${audit.checkpoint_size}`;
    out.dataset.verdict = audit.verdict;
    if (audit.violation) {
      const v = audit.violation;
      out.dataset.index = String(v.index);
      out.dataset.code = v.code;
      say(out, `The server's audit: NOT authorized ${at}: ledger entry ${v.index} breaks rule ${v.code}: ${v.rule}`, "bad");
      return;
    }
    const unfinished = audit.unfinished.length
      ? ` Unfinished intents (no outcome yet): entries ${audit.unfinished.join(", ")}.`
      : "";
    say(out, `The server's audit: authorized ${at}; every access was authorized when it happened.${unfinished}`, "ok");
  } catch (error) {
    say(out, `The server gave no audit verdict: ${error.message}`, "bad");
  }
}

async function main() {
  $("#filters").addEventListener("input", () => {
    state.page = 0;
    render();
  });
  $("#filters").addEventListener("submit", (e) => e.preventDefault());
  $("#prev").addEventListener("click", () => {
    state.page--;
    render();
  });
  $("#next").addEventListener("click", () => {
    state.page++;
    render();
  });
  $("#save-keys").addEventListener("click", async () => {
    try {
      const vkey = $("#vkey").value.trim();
      const witnesses = $("#witnesses").value.split("\n").map((s) => s.trim()).filter(Boolean);
      await parseVkey(vkey);
      await Promise.all(witnesses.map(parseVkey));
      store.set("vkey", vkey);
      store.set("witnesses", witnesses);
      location.reload();
    } catch (error) {
      alarm(`Keys not saved: ${error.message}`);
    }
  });
  try {
    await loadCheckpoint();
    await loadEntries();
    render();
    await loadAudit();
    document.body.dataset.ready = "true";
  } catch (error) {
    say($("#checkpoint-status"), `The checkpoint does not verify: ${error.message}`, "bad");
    alarm(`The log could not be verified: ${error.message}`);
    document.body.dataset.ready = "error";
  }
}

window.custodietLedger = { verifyEntry, state };
main();
