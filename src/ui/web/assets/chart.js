// Charts drawn as SVG: a time-series line chart with a hover/keyboard
// read-out, and a horizontal bar list. Sized from their container (whose
// height the CSS fixes, so drawing never moves the page) and redrawn on
// resize.
import { h } from "./dom.js";

const NS = "http://www.w3.org/2000/svg";
const M = { left: 52, right: 12, top: 10, bottom: 22 }; // plot margins in px
const Y_TICKS = 4;
const X_TICKS = 6;
export const PALETTE = ["var(--c1)", "var(--c2)", "var(--c3)", "var(--c4)", "var(--c5)", "var(--c6)"];

function s(tag, attrs) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, String(v));
  return el;
}

function niceMax(v) {
  if (!(v > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

function integerStep(v) {
  if (!(v > 1)) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

function timeLabel(ms, spanMs) {
  const d = new Date(ms);
  if (spanMs > 2 * 86400e3) return d.toLocaleDateString(undefined, { month: "short", day: "numeric" }) + " " + d.toLocaleTimeString(undefined, { hour: "2-digit", hour12: false });
  return d.toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit", hour12: false });
}

// data: {times: [ms], series: [{name, values: [number|null], color?}], yFormat?, integer?}
export function lineChart(box, data) {
  const legend = h("div", { class: "legend" }, data.series.map((sr, i) =>
    h("span", {}, h("i", { style: `background:${sr.color || PALETTE[i % PALETTE.length]}` }), sr.name)));
  const plot = h("div", { class: "chart-box" });
  box.replaceChildren(legend, plot);
  const draw = () => drawLine(plot, data);
  draw();
  const ro = new ResizeObserver(() => draw());
  ro.observe(plot);
  return () => ro.disconnect();
}

function drawLine(plot, data) {
  const W = Math.max(plot.clientWidth, 200);
  const H = Math.max(plot.clientHeight, 120);
  const fmt = data.yFormat || ((v) => String(v));
  const times = data.times;
  const n = times.length;
  const svg = s("svg", { class: "chart", viewBox: `0 0 ${W} ${H}`, role: "img", tabindex: 0 });
  svg.setAttribute("aria-label", `${data.series.map((sr) => sr.name).join(", ")} over ${n} points. Use the arrow keys to read values.`);
  if (n === 0) { plot.replaceChildren(h("div", { class: "state" }, "No data in this range.")); return; }
  const t0 = times[0];
  const t1 = times[n - 1] === t0 ? t0 + 1 : times[n - 1];
  let max = 0;
  for (const sr of data.series) for (const v of sr.values) if (v > max) max = v;
  // Counts get whole-number ticks (1, 2, 5 × 10^k per step), other values
  // a nice maximum.
  max = data.integer ? integerStep(max / Y_TICKS) * Y_TICKS : niceMax(max);
  const pw = W - M.left - M.right;
  const ph = H - M.top - M.bottom;
  const x = (t) => M.left + ((t - t0) / (t1 - t0)) * pw;
  const y = (v) => M.top + ph - (v / max) * ph;

  for (let i = 0; i <= Y_TICKS; i++) {
    const v = (max * i) / Y_TICKS;
    svg.append(s("line", { class: "grid-line", x1: M.left, x2: W - M.right, y1: y(v), y2: y(v) }));
    const t = s("text", { x: M.left - 6, y: y(v) + 4, "text-anchor": "end" });
    t.textContent = fmt(v);
    svg.append(t);
  }
  const ticks = Math.min(X_TICKS, n);
  for (let i = 0; i < ticks; i++) {
    const tm = t0 + ((t1 - t0) * i) / Math.max(ticks - 1, 1);
    const t = s("text", { x: x(tm), y: H - 6, "text-anchor": i === 0 ? "start" : i === ticks - 1 ? "end" : "middle" });
    t.textContent = timeLabel(tm, t1 - t0);
    svg.append(t);
  }
  data.series.forEach((sr, si) => {
    const color = sr.color || PALETTE[si % PALETTE.length];
    // Contiguous runs of known values; a null is a gap, not a zero.
    const runs = [];
    let run = null;
    sr.values.forEach((v, i) => {
      if (v === null || v === undefined) { run = null; return; }
      if (!run) { run = []; runs.push(run); }
      run.push([x(times[i]), y(v)]);
    });
    for (const pts of runs) {
      const d = pts.map(([px, py], i) => `${i ? "L" : "M"}${px.toFixed(1)},${py.toFixed(1)}`).join("");
      if (data.series.length === 1) {
        const area = `${d}L${pts[pts.length - 1][0].toFixed(1)},${y(0)}L${pts[0][0].toFixed(1)},${y(0)}Z`;
        svg.append(s("path", { d: area, fill: color, "fill-opacity": 0.12, stroke: "none" }));
      }
      svg.append(s("path", { d, fill: "none", stroke: color, "stroke-width": 1.8, "stroke-linejoin": "round" }));
      if (pts.length === 1) svg.append(s("circle", { cx: pts[0][0], cy: pts[0][1], r: 2.5, fill: color }));
    }
  });

  const hover = s("line", { class: "hover-line", y1: M.top, y2: M.top + ph, visibility: "hidden" });
  svg.append(hover);
  const tip = h("div", { class: "tooltip", hidden: true });
  let idx = -1;
  const show = (i) => {
    idx = Math.max(0, Math.min(n - 1, i));
    const px = x(times[idx]);
    hover.setAttribute("x1", px); hover.setAttribute("x2", px); hover.setAttribute("visibility", "visible");
    tip.replaceChildren(h("div", { class: "muted" }, new Date(times[idx]).toLocaleString()),
      ...data.series.map((sr, si) => h("div", {}, h("span", { style: `color:${sr.color || PALETTE[si % PALETTE.length]}` }, "■ "), `${sr.name}: ${sr.values[idx] == null ? "–" : fmt(sr.values[idx])}`)));
    tip.hidden = false;
    const left = px + 12 + 180 > W ? px - 190 : px + 12;
    tip.style.left = `${Math.max(0, left)}px`;
    tip.style.top = `${M.top}px`;
  };
  const hide = () => { hover.setAttribute("visibility", "hidden"); tip.hidden = true; };
  svg.addEventListener("mousemove", (e) => {
    const r = svg.getBoundingClientRect();
    const t = t0 + ((e.clientX - r.left - M.left) / pw) * (t1 - t0);
    let best = 0;
    for (let i = 1; i < n; i++) if (Math.abs(times[i] - t) < Math.abs(times[best] - t)) best = i;
    show(best);
  });
  svg.addEventListener("mouseleave", hide);
  svg.addEventListener("blur", hide);
  svg.addEventListener("keydown", (e) => {
    if (e.key === "ArrowRight") { e.preventDefault(); show(idx < 0 ? 0 : idx + 1); }
    if (e.key === "ArrowLeft") { e.preventDefault(); show(idx < 0 ? n - 1 : idx - 1); }
    if (e.key === "Escape") hide();
  });
  plot.replaceChildren(svg, tip);
}

// rows: [{label, value, color?}] drawn as proportional horizontal bars.
export function barList(rows, fmt) {
  const max = Math.max(...rows.map((r) => r.value || 0), 0) || 1;
  return h("div", { class: "bar-list" }, rows.map((r, i) => h("div", { style: "margin:6px 0" },
    h("div", { class: "row tight", style: "justify-content:space-between;font-size:13px" },
      h("span", { class: "mono", style: "overflow:hidden;text-overflow:ellipsis;white-space:nowrap;max-width:70%" }, r.label),
      h("span", { class: "num" }, fmt ? fmt(r.value) : r.value)),
    h("div", { class: "bars" }, h("span", { style: `width:${((r.value || 0) / max) * 100}%;background:${r.color || PALETTE[i % PALETTE.length]}` })))));
}

// A single stacked bar of status classes with a legend.
export function statusBar(classes) {
  const colors = { "1xx": "var(--c5)", "2xx": "var(--c3)", "3xx": "var(--c6)", "4xx": "var(--c4)", "5xx": "var(--c2)" };
  const total = Object.values(classes).reduce((a, v) => a + v, 0);
  return h("div", {},
    h("div", { class: "bars", style: "height:18px", role: "img", "aria-label": Object.entries(classes).map(([k, v]) => `${k}: ${v}`).join(", ") },
      total === 0 ? null : Object.entries(classes).map(([k, v]) => h("span", { style: `width:${(v / total) * 100}%;background:${colors[k]}`, title: `${k}: ${v}` }))),
    h("div", { class: "legend", style: "margin-top:8px" }, Object.entries(classes).map(([k, v]) =>
      h("span", {}, h("i", { style: `background:${colors[k]}` }), `${k} ${v.toLocaleString()}${total ? ` (${((v / total) * 100).toFixed(1)} %)` : ""}`))));
}
