// Inline SVG bar charts, no library: stacked bars over time buckets, and plain bars by label.
// Colours come from one fixed palette; each bar has a <title> and the chart an accessible name.

const SVG = "http://www.w3.org/2000/svg";
export const PALETTE = ["#1f5fa8", "#b3541e", "#2e7d32", "#7b3fa0", "#8a6d00", "#00707a", "#a0275a", "#555555"];

function svg(tag, attrs = {}, text = null) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (text !== null) node.textContent = text;
  return node;
}

// buckets: [{label, counts: {series: n}}]; series: names in legend order.
export function stackedBars(buckets, series, name) {
  const width = 640;
  const height = 220;
  const pad = { left: 40, right: 10, top: 10, bottom: 40 };
  const max = Math.max(1, ...buckets.map((b) => Object.values(b.counts).reduce((a, n) => a + n, 0)));
  const root = svg("svg", { viewBox: `0 0 ${width} ${height + 20 * Math.ceil(series.length / 3)}`, role: "img", "aria-label": name, class: "chart" });
  root.append(svg("title", {}, name));
  const plotW = width - pad.left - pad.right;
  const plotH = height - pad.top - pad.bottom;
  const step = plotW / Math.max(1, buckets.length);
  root.append(svg("line", { x1: pad.left, y1: pad.top + plotH, x2: width - pad.right, y2: pad.top + plotH, class: "axis" }));
  root.append(svg("text", { x: pad.left - 6, y: pad.top + 10, "text-anchor": "end", class: "tick" }, String(max)));
  root.append(svg("text", { x: pad.left - 6, y: pad.top + plotH, "text-anchor": "end", class: "tick" }, "0"));
  buckets.forEach((b, i) => {
    let y = pad.top + plotH;
    series.forEach((s, j) => {
      const n = b.counts[s] || 0;
      if (!n) return;
      const h = (n / max) * plotH;
      y -= h;
      const rect = svg("rect", { x: pad.left + i * step + 1, y, width: Math.max(1, step - 2), height: h, fill: PALETTE[j % PALETTE.length] });
      rect.append(svg("title", {}, `${b.label}: ${s}, ${n}`));
      root.append(rect);
    });
    if (buckets.length <= 12 || i % Math.ceil(buckets.length / 8) === 0) {
      root.append(svg("text", { x: pad.left + i * step + step / 2, y: pad.top + plotH + 16, "text-anchor": "middle", class: "tick" }, b.label));
    }
  });
  series.forEach((s, j) => {
    const x = pad.left + (j % 3) * 200;
    const y = height + 20 * Math.floor(j / 3);
    root.append(svg("rect", { x, y: y - 10, width: 12, height: 12, fill: PALETTE[j % PALETTE.length] }));
    root.append(svg("text", { x: x + 18, y, class: "legend" }, s));
  });
  return root;
}

// bars: [{label, value}] drawn horizontally; format writes a value (String by default).
export function bars(items, name, format = String) {
  const row = 26;
  const width = 640;
  const labelW = 200;
  const max = Math.max(1, ...items.map((b) => b.value));
  const root = svg("svg", { viewBox: `0 0 ${width} ${row * items.length + 10}`, role: "img", "aria-label": name, class: "chart" });
  root.append(svg("title", {}, name));
  items.forEach((b, i) => {
    const w = ((width - labelW - 60) * b.value) / max;
    root.append(svg("text", { x: labelW - 8, y: i * row + 18, "text-anchor": "end", class: "legend" }, b.label));
    const rect = svg("rect", { x: labelW, y: i * row + 5, width: Math.max(1, w), height: row - 8, fill: PALETTE[0] });
    rect.append(svg("title", {}, `${b.label}: ${format(b.value)}`));
    root.append(rect);
    root.append(svg("text", { x: labelW + w + 6, y: i * row + 18, class: "legend" }, format(b.value)));
  });
  return root;
}
