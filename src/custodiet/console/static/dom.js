// Small DOM helpers: every value from the server goes in as text, never as HTML.

export const $ = (selector) => document.querySelector(selector);

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) {
    if (c !== null && c !== undefined) node.append(c instanceof Node ? c : String(c));
  }
  return node;
}

// A table in its own horizontally scrolling box (narrow screens scroll the table, not the page).
export function table(columns, rows, caption) {
  return el("div", { class: "scroll" }, el(
    "table",
    {},
    caption ? el("caption", {}, caption) : null,
    el("thead", {}, el("tr", {}, columns.map((c) => el("th", { scope: "col" }, c)))),
    el("tbody", {}, rows.map((r) => el("tr", {}, r.map((v) => el("td", {}, v ?? ""))))),
  ));
}

export function say(node, text, kind = "") {
  node.textContent = text;
  node.className = kind;
}
