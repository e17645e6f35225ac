// The custodian desk: pending agreement versions and re-identification requests, each shown as
// exactly what an approval signs, approved or denied with a request signed in this page.

import { act, getJSON, requestObject, sign } from "./api.js";
import { $, el, say, table } from "./dom.js";
import { keyPanel, me } from "./identity.js";

let classes = {};

async function signAndSend(action, args, out) {
  if (!me.key) {
    say(out, "Load your private key first.", "bad");
    return null;
  }
  const document = await sign(me.key, requestObject(me.origin, me.principal, action, args));
  try {
    const result = await act(document);
    const what = `${action} ${JSON.stringify(args)}`;
    say(out, `Signed by ${me.principal} and recorded at ledger entry ${result.ledger_index ?? "?"}.`, "ok");
    say($("#desk-out"), `Last action: ${what}, signed by ${me.principal}; recorded at ledger entry ${result.ledger_index ?? "?"}.`, "ok");
    return result;
  } catch (error) {
    const text = `Refused (${error.code}): ${error.message}${error.hint ? ` — ${error.hint}` : ""}`;
    say(out, text, "bad");
    say($("#desk-out"), text, "bad");
    return null;
  }
}

function columnsTable(document) {
  const rows = [];
  for (const [dataset, grant] of Object.entries(document.datasets || {})) {
    for (const [column, treatment] of Object.entries(grant.columns || {})) {
      rows.push([dataset, column, classes[dataset]?.[column] ?? "(unregistered)", treatment]);
    }
  }
  return table(["Dataset", "Column", "Class", "Treatment"], rows, "Columns and their treatments");
}

function agreementCard(a) {
  const args = { agreement: a.id, version: a.version, sha256: a.sha256 };
  const out = el("p", { role: "status", "aria-live": "polite" });
  const headingId = `agreement-${a.id}`;
  return el(
    "article",
    { class: "card", "aria-labelledby": headingId, "data-agreement": a.id },
    el("h3", { id: headingId }, `${a.id} — version ${a.version}`),
    el("p", {}, `Purpose: ${a.document.purpose ?? ""}`),
    el("p", {}, `Reviewer ${a.reviewer}; proposed by ${a.proposer}; mode ${a.document.mode ?? ""}; expires ${a.expires}; approvals ${a.approvals.length} of ${a.approvals_required}${a.approvals.length ? ` (${a.approvals.join(", ")})` : ""}.`),
    el("h4", {}, "Difference from the active version"),
    el("ul", {}, a.changes.map((c) => el("li", { class: c.startsWith("-") ? "removed" : "added" }, c))),
    columnsTable(a.document),
    el("details", {}, el("summary", {}, "The whole document"), el("pre", {}, JSON.stringify(a.document, null, 2))),
    el("h4", {}, "What your approval signs"),
    el("pre", { class: "signs" }, JSON.stringify({ action: "agreement.approve", args }, null, 2)),
    el("button", { type: "button", class: "approve", onclick: async () => {
      if (await signAndSend("agreement.approve", args, out)) await load();
    } }, `Approve ${a.id} v${a.version}`),
    out,
  );
}

function reidCard(r) {
  const out = el("p", { role: "status", "aria-live": "polite" });
  const reasonId = `deny-reason-${r.id}`;
  const reason = el("input", { id: reasonId, type: "text" });
  const args = { request: r.id, sha256: r.sha256 };
  return el(
    "article",
    { class: "card", "aria-labelledby": `reid-${r.id}`, "data-reid": r.id },
    el("h3", { id: `reid-${r.id}` }, `Request ${r.id} by ${r.requester} under ${r.agreement} v${r.version}`),
    el("p", {}, `Reason: ${r.reason}`),
    el("p", {}, `Fields: ${r.fields.join(", ")}; approvals so far: ${r.approvals.length ? r.approvals.join(", ") : "none"}; expires ${r.expires}.`),
    table(["Case token"], r.tokens.map((t) => [t]), "Case tokens"),
    el("h4", {}, "What your approval signs"),
    el("pre", { class: "signs" }, JSON.stringify({ action: "reid.approve", args }, null, 2)),
    el("button", { type: "button", onclick: async () => {
      if (await signAndSend("reid.approve", args, out)) await load();
    } }, `Approve request ${r.id}`),
    el("div", { class: "row" },
      el("div", {}, el("label", { for: reasonId }, "Reason to deny"), reason),
      el("button", { type: "button", class: "secondary", onclick: async () => {
        if (!reason.value.trim()) return say(out, "Say why you deny it.", "bad");
        if (await signAndSend("reid.deny", { request: r.id, reason: reason.value.trim() }, out)) await load();
      } }, `Deny request ${r.id}`)),
    out,
  );
}

async function load() {
  const [agreements, datasets, reids] = await Promise.all([
    getJSON("/v1/agreements"), getJSON("/v1/datasets"), getJSON("/v1/reid/pending"),
  ]);
  classes = Object.fromEntries(datasets.map((d) => [d.name, Object.fromEntries(d.columns.map((c) => [c.name, c.class]))]));
  const pending = agreements.filter((a) => a.status === "pending");
  const detailed = await Promise.all(pending.map((a) => getJSON(`/v1/agreements/${encodeURIComponent(a.id)}`)));
  $("#agreements").replaceChildren(...detailed.map(agreementCard));
  const active = agreements.filter((a) => a.status === "active").map((a) => `${a.id} v${a.active_version}`);
  say($("#agreements-status"), `${pending.length} pending. Active: ${active.length ? active.join(", ") : "none"}.`);
  $("#reids").replaceChildren(...reids.map(reidCard));
  say($("#reid-status"), `${reids.length} pending.`);
  document.body.dataset.ready = "true";
}

keyPanel(load);
load().catch((error) => say($("#agreements-status"), `Could not read the vault: ${error.message}`, "bad"));
