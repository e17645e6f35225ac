// The reviewer workbench: queries and screen runs under an active agreement, signed in this page
// with the reviewer's own key; results paged here and exported as CSV or JSON; a refusal shown
// with its rule (the CUST code, docs/errors.md).

import { act, getJSON, requestObject, sign } from "./api.js";
import { bars } from "./chart.js";
import { $, el, say, table } from "./dom.js";
import { keyPanel, me } from "./identity.js";

const PAGE = 100;
const result = { columns: [], rows: [], page: 0 };
let cases = [];
let agreements = [];

async function signed(action, args) {
  if (!me.key) throw Object.assign(new Error("load your private key first"), { code: "" });
  return act(await sign(me.key, requestObject(me.origin, me.principal, action, args)));
}

function refusal(out, error) {
  say(out, error.code ? `Refused by rule ${error.code}: ${error.message}${error.hint ? ` — ${error.hint}` : ""}` : `Not sent: ${error.message}`, "bad");
}

function download(name, type, text) {
  const a = el("a", { href: URL.createObjectURL(new Blob([text], { type })), download: name });
  document.body.append(a);
  a.click();
  a.remove();
}

function csv(columns, rows) {
  const cell = (v) => {
    const s = v === null || v === undefined ? "" : typeof v === "object" ? JSON.stringify(v) : String(v);
    return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
  };
  return [columns, ...rows].map((r) => r.map(cell).join(",")).join("\r\n") + "\r\n";
}

function showGrants() {
  const a = agreements.find((x) => x.id === $("#agreement").value);
  const tables = Object.entries(a?.document?.datasets || {}).map(([name, grant]) =>
    table(["Column", "Treatment"], Object.entries(grant.columns || {}), `Dataset ${name}`),
  );
  $("#grant-tables").replaceChildren(...tables);
}

function renderResult() {
  const pages = Math.max(1, Math.ceil(result.rows.length / PAGE));
  result.page = Math.max(0, Math.min(result.page, pages - 1));
  const slice = result.rows.slice(result.page * PAGE, (result.page + 1) * PAGE);
  $("#results").replaceChildren(table(result.columns, slice.map((r) => r.map((v) => (v === null ? "NULL" : String(v)))), "Query result"));
  $("#r-page").textContent = `Page ${result.page + 1} of ${pages} (${result.rows.length} rows)`;
  $("#r-prev").disabled = result.page === 0;
  $("#r-next").disabled = result.page >= pages - 1;
}

async function runQuery() {
  const out = $("#query-out");
  say(out, "Running…");
  try {
    const done = await signed("query", { agreement: $("#agreement").value, sql: $("#sql").value });
    Object.assign(result, { columns: done.columns, rows: done.rows, page: 0 });
    $("#notices").replaceChildren(...done.notices.map((n) => el("li", {}, n)));
    say(out, `${done.rows.length} rows; recorded at ledger entry ${done.ledger_index}.`, "ok");
    renderResult();
  } catch (error) {
    Object.assign(result, { columns: [], rows: [], page: 0 });
    $("#results").replaceChildren();
    refusal(out, error);
  }
}

async function runScreens() {
  const out = $("#screens-out");
  say(out, "Running the screens…");
  try {
    const report = await signed("screen.run", { agreement: $("#agreement").value, screens: [] });
    cases = report.cases;
    say(out, `${report.total.cases} cases, ${report.total.amount_at_risk} at risk${report.refused.length ? `; refused: ${report.refused.map((r) => `${r.screen} (${r.rule})`).join(", ")}` : ""}.`, "ok");
    $("#screens-chart").replaceChildren(bars(report.summary.map((s) => ({ label: s.screen, value: s.cases })), "Cases by screen"));
    $("#cases").replaceChildren(table(
      ["Table", "Record", "Screens", "Payee token", "Amount at risk"],
      cases.map((c) => [c.record_table, c.record_id, c.patterns.join(", "), c.payee, c.amount_at_risk]),
      "Cases",
    ));
  } catch (error) {
    refusal(out, error);
  }
}

async function requestReid() {
  const out = $("#reid-out");
  try {
    const done = await signed("reid.request", {
      agreement: $("#agreement").value,
      tokens: $("#reid-tokens").value.split("\n").map((s) => s.trim()).filter(Boolean),
      fields: $("#reid-fields").value.split(",").map((s) => s.trim()).filter(Boolean),
      reason: $("#reid-reason").value.trim(),
    });
    say(out, `Request ${done.id} filed; custodians approve it at the desk.`, "ok");
  } catch (error) {
    refusal(out, error);
  }
}

async function load() {
  const all = await getJSON("/v1/agreements");
  agreements = all.filter((a) => a.status === "active");
  const select = $("#agreement");
  const kept = select.value;
  select.replaceChildren(...agreements.map((a) => el("option", { value: a.id }, `${a.id} (v${a.active_version}, reviewer ${a.reviewer})`)));
  if (kept) select.value = kept;
  showGrants();
  document.body.dataset.ready = "true";
}

$("#agreement").addEventListener("change", showGrants);
$("#run").addEventListener("click", runQuery);
$("#r-prev").addEventListener("click", () => { result.page--; renderResult(); });
$("#r-next").addEventListener("click", () => { result.page++; renderResult(); });
$("#csv").addEventListener("click", () => download("result.csv", "text/csv", csv(result.columns, result.rows)));
$("#json").addEventListener("click", () => download("result.json", "application/json", JSON.stringify({ columns: result.columns, rows: result.rows })));
$("#screens").addEventListener("click", runScreens);
const caseColumns = ["record_table", "record_id", "patterns", "payee", "amount_at_risk"];
$("#cases-csv").addEventListener("click", () => download("cases.csv", "text/csv", csv(caseColumns, cases.map((c) => caseColumns.map((k) => (k === "patterns" ? c[k].join(";") : c[k]))))));
$("#cases-json").addEventListener("click", () => download("cases.json", "application/json", JSON.stringify(cases)));
$("#reid").addEventListener("click", requestReid);
keyPanel(load);
load().catch((error) => say($("#query-out"), `Could not read the vault: ${error.message}`, "bad"));
