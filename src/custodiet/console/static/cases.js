// The screen run's cases as a table the reviewer sorts and filters (screen, program, month, match
// category, amount), with the count and dollars at risk of the rows shown, and charts of cases and
// dollars by screen, program and month. Program, month and match come from each case's evidence
// (what the screens' queries returned); a case whose evidence names none shows "—".

import { bars } from "./chart.js";
import { $, el } from "./dom.js";

export const NONE = "—";
const COLUMNS = [
  ["record_table", "Table"],
  ["record_id", "Record"],
  ["screens", "Screens"],
  ["payee", "Payee token"],
  ["amount", "Amount at risk"],
  ["program", "Program"],
  ["month", "Month"],
  ["match", "Match"],
];
const state = { rows: [], sort: "amount", descending: true };

function evidenceValue(c, keys) {
  for (const found of Object.values(c.evidence || {})) {
    for (const e of found) {
      for (const k of keys) if (e[k] !== null && e[k] !== undefined && e[k] !== "") return String(e[k]);
    }
  }
  return null;
}

// One row per case: what the table shows, sorts and filters on.
export function caseRow(c) {
  const date = evidenceValue(c, ["payment_date", "refund_date", "award_date", "date"]);
  return {
    record_table: c.record_table,
    record_id: String(c.record_id),
    screens: c.patterns,
    payee: c.payee,
    amount: Number(c.amount_at_risk),
    program: evidenceValue(c, ["program"]) ?? NONE,
    month: date && /^\d{4}-\d{2}/.test(date) ? date.slice(0, 7) : NONE,
    match: evidenceValue(c, ["match"]) ?? NONE,
  };
}

export const dollars = (n) => `$${n.toLocaleString("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 })}`;
const cents = (n) => Math.round(n * 100);

function filters() {
  const min = $("#c-min").value;
  const max = $("#c-max").value;
  return {
    screen: $("#c-screen").value,
    program: $("#c-program").value,
    month: $("#c-month").value,
    match: $("#c-match").value,
    min: min === "" ? null : Number(min),
    max: max === "" ? null : Number(max),
  };
}

export function selected() {
  const f = filters();
  const rows = state.rows.filter((r) =>
    (!f.screen || r.screens.includes(f.screen)) &&
    (!f.program || r.program === f.program) &&
    (!f.month || r.month === f.month) &&
    (!f.match || r.match === f.match) &&
    (f.min === null || r.amount >= f.min) &&
    (f.max === null || r.amount <= f.max));
  const key = state.sort;
  const sign = state.descending ? -1 : 1;
  const value = (r) => (key === "screens" ? r.screens.join(", ") : r[key]);
  return rows.sort((a, b) => {
    const x = value(a);
    const y = value(b);
    const order = typeof x === "number" ? x - y : String(x).localeCompare(String(y), "en", { numeric: true });
    return sign * order || a.record_table.localeCompare(b.record_table) || a.record_id.localeCompare(b.record_id, "en", { numeric: true });
  });
}

function grouped(rows, key) {
  const groups = new Map();
  for (const r of rows) {
    for (const label of key === "screens" ? r.screens : [r[key]]) {
      const g = groups.get(label) || { cases: 0, cents: 0 };
      g.cases += 1;
      g.cents += cents(r.amount);
      groups.set(label, g);
    }
  }
  return [...groups.entries()].sort(([a], [b]) => a.localeCompare(b));
}

function charts(rows) {
  const figures = [["screens", "screen"], ["program", "program"], ["month", "month"]].map(([key, name]) => {
    const groups = grouped(rows, key);
    return el("figure", { class: "charts" },
      el("figcaption", {}, `Cases and dollars at risk by ${name}`),
      bars(groups.map(([label, g]) => ({ label, value: g.cases })), `Cases by ${name}`),
      bars(groups.map(([label, g]) => ({ label, value: g.cents / 100 })), `Dollars at risk by ${name}`, dollars));
  });
  $("#screens-chart").replaceChildren(...figures);
}

function header([key, title]) {
  const sorted = state.sort === key;
  const button = el("button", { type: "button", class: "sort", "data-sort": key }, title, sorted ? (state.descending ? " ▼" : " ▲") : "");
  button.addEventListener("click", () => {
    state.descending = state.sort === key ? !state.descending : key === "amount";
    state.sort = key;
    render();
  });
  return el("th", { scope: "col", "aria-sort": sorted ? (state.descending ? "descending" : "ascending") : "none" }, button);
}

export function render() {
  const rows = selected();
  const total = rows.reduce((n, r) => n + cents(r.amount), 0);
  const shown = $("#cases-total");
  shown.textContent = `${rows.length} of ${state.rows.length} cases shown; ${dollars(total / 100)} at risk.`;
  shown.dataset.cases = String(rows.length);
  shown.dataset.cents = String(total);
  $("#cases").replaceChildren(el("table", {},
    el("caption", {}, "Cases"),
    el("thead", {}, el("tr", {}, COLUMNS.map(header))),
    el("tbody", {}, rows.map((r) => el("tr", {}, COLUMNS.map(([key]) =>
      el("td", key === "amount" ? { "data-cents": cents(r.amount) } : {}, key === "screens" ? r.screens.join(", ") : key === "amount" ? dollars(r.amount) : r[key])))))));
  charts(rows);
}

function options(select, values) {
  const kept = select.value;
  select.replaceChildren(el("option", { value: "" }, "any"), ...[...new Set(values)].sort().map((v) => el("option", { value: v }, v)));
  select.value = values.includes(kept) ? kept : "";
}

export function showCases(cases) {
  state.rows = cases.map(caseRow);
  options($("#c-screen"), state.rows.flatMap((r) => r.screens));
  options($("#c-program"), state.rows.map((r) => r.program));
  options($("#c-month"), state.rows.map((r) => r.month));
  options($("#c-match"), state.rows.map((r) => r.match));
  $("#case-filters").hidden = false;
  render();
}

for (const id of ["#c-screen", "#c-program", "#c-month", "#c-match", "#c-min", "#c-max"]) {
  $(id).addEventListener("input", render);
}
