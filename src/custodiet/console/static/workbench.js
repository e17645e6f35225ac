// The reviewer workbench: queries and screen runs under an active agreement, signed in this page
// with the reviewer's own key; results paged here; a refusal shown with its rule (the CUST code,
// docs/errors.md). Every export is a signed request naming args.output: the server renders the
// file (CSV, JSON or Parquet) and records its SHA-256 on the ledger, the page downloads exactly
// those bytes and shows the receipt (the entry's index and the file's SHA-256, checked against
// the entry as /v1/entries serves it).

import { act, getJSON, getText, requestObject, sign } from "./api.js";
import { showCases } from "./cases.js";
import { $, el, say, table } from "./dom.js";
import { keyPanel, me } from "./identity.js";
import { b64decode, hex } from "./merkle.js";

const PAGE = 100;
const result = { columns: [], rows: [], page: 0 };
let agreements = [];

async function signed(action, args) {
  if (!me.key) throw Object.assign(new Error("load your private key first"), { code: "" });
  return act(await sign(me.key, requestObject(me.origin, me.principal, action, args)));
}

function refusal(out, error) {
  say(out, error.code ? `Refused by rule ${error.code}: ${error.message}${error.hint ? ` — ${error.hint}` : ""}` : `Not sent: ${error.message}`, "bad");
}

const TYPES = { csv: "text/csv", json: "application/json", parquet: "application/vnd.apache.parquet" };

function download(name, type, bytes) {
  const a = el("a", { href: URL.createObjectURL(new Blob([bytes], { type })), download: name });
  document.body.append(a);
  a.click();
  a.remove();
}

// Sign `action` with `args` asking for a `format` file, download the bytes the server rendered
// and show the receipt beside the buttons: the outcome entry's index and the file's SHA-256,
// compared with the output_sha256 that entry records.
async function exportFile(action, args, format, name, out) {
  say(out, `Asking the server to render ${name}…`);
  try {
    const done = await signed(action, { ...args, output: format });
    const bytes = b64decode(done.output);
    const digest = hex(new Uint8Array(await crypto.subtle.digest("SHA-256", bytes)));
    download(name, TYPES[format], bytes);
    const line = (await getText(`/v1/entries?from=${done.ledger_index}&to=${done.ledger_index}`)).split("\n")[0];
    const recorded = JSON.parse(line).output_sha256;
    out.dataset.index = String(done.ledger_index);
    out.dataset.sha256 = digest;
    if (recorded === digest) {
      say(out, `Receipt: ${name} is recorded at ledger entry ${done.ledger_index}, SHA-256 ${digest}.`, "ok");
    } else {
      say(out, `${name}: its SHA-256 ${digest} is NOT the one ledger entry ${done.ledger_index} records.`, "bad");
    }
  } catch (error) {
    refusal(out, error);
  }
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

// The SQL as sent, with the text the refusal points at underlined; hidden when the refusal has
// no place in the SQL (or one that does not fit it: then nothing is underlined).
function showAtFault(sql, span) {
  const view = $("#sql-view");
  const chars = Array.from(sql); // the server counts code points, not UTF-16 units
  const fits = span && Number.isInteger(span.start) && Number.isInteger(span.end) && 0 <= span.start && span.start < span.end && span.end <= chars.length;
  if (!fits) {
    view.hidden = true;
    view.replaceChildren();
    return;
  }
  const at = chars.slice(span.start, span.end).join("");
  view.replaceChildren(
    el("span", { class: "visually-hidden" }, "Your query, the refused part marked: "),
    chars.slice(0, span.start).join(""),
    el("mark", { class: "at-fault", title: "refused here" }, at),
    chars.slice(span.end).join(""),
  );
  view.hidden = false;
}

async function runQuery() {
  const out = $("#query-out");
  const sql = $("#sql").value;
  say(out, "Running…");
  showAtFault(sql, null);
  try {
    const done = await signed("query", { agreement: $("#agreement").value, sql });
    Object.assign(result, { columns: done.columns, rows: done.rows, page: 0 });
    $("#notices").replaceChildren(...done.notices.map((n) => el("li", {}, n)));
    say(out, `${done.rows.length} rows; recorded at ledger entry ${done.ledger_index}.`, "ok");
    renderResult();
  } catch (error) {
    Object.assign(result, { columns: [], rows: [], page: 0 });
    $("#results").replaceChildren();
    refusal(out, error);
    showAtFault(sql, error.span);
  }
}

async function runScreens() {
  const out = $("#screens-out");
  say(out, "Running the screens…");
  try {
    const report = await signed("screen.run", { agreement: $("#agreement").value, screens: [] });
    say(out, `${report.total.cases} cases, ${report.total.amount_at_risk} at risk; recorded at ledger entry ${report.ledger_index}${report.refused.length ? `; refused: ${report.refused.map((r) => `${r.screen} (${r.rule})`).join(", ")}` : ""}.`, "ok");
    showCases(report.cases);
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
$("#screens").addEventListener("click", runScreens);
for (const format of ["csv", "json", "parquet"]) {
  $(`#${format}`).addEventListener("click", () =>
    exportFile("query", { agreement: $("#agreement").value, sql: $("#sql").value }, format, `result.${format}`, $("#query-receipt")));
  $(`#cases-${format}`).addEventListener("click", () =>
    exportFile("screen.run", { agreement: $("#agreement").value, screens: [] }, format, `cases.${format}`, $("#cases-receipt")));
}
$("#reid").addEventListener("click", requestReid);
keyPanel(load);
load().catch((error) => say($("#query-out"), `Could not read the vault: ${error.message}`, "bad"));
