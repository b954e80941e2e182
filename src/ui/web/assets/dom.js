// Small DOM and formatting helpers shared by every page. No framework:
// h() builds elements, the fmt* functions render numbers the same way
// everywhere, and the state views keep loading/empty/error honest.

export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") el.className = v;
    else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "dataset") Object.assign(el.dataset, v);
    else if (v === true) el.setAttribute(k, "");
    else el.setAttribute(k, String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === undefined || c === null || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

const nf = new Intl.NumberFormat(undefined, { maximumFractionDigits: 0 });
const nf1 = new Intl.NumberFormat(undefined, { maximumFractionDigits: 1 });
const nf2 = new Intl.NumberFormat(undefined, { maximumFractionDigits: 2 });

export function fmtInt(v) { return v === null || v === undefined ? "–" : nf.format(v); }
export function fmtNum(v) {
  if (v === null || v === undefined || Number.isNaN(v)) return "–";
  return Math.abs(v) >= 100 ? nf.format(v) : Math.abs(v) >= 10 ? nf1.format(v) : nf2.format(v);
}
export function fmtPct(v) { return v === null || v === undefined ? "–" : `${nf2.format(v * 100)} %`; }
export function fmtMs(v) {
  if (v === null || v === undefined) return "–";
  return v >= 1000 ? `${nf2.format(v / 1000)} s` : `${fmtNum(v)} ms`;
}
export function fmtRate(v) { return v === null || v === undefined ? "–" : `${fmtNum(v)}/s`; }
export function fmtTime(iso, withDate) {
  if (!iso) return "–";
  const d = new Date(iso);
  const t = d.toLocaleTimeString(undefined, { hour12: false });
  const ms = String(d.getMilliseconds()).padStart(3, "0");
  return withDate ? `${d.toLocaleDateString()} ${t}` : `${t}.${ms}`;
}
export function fmtBytes(v) {
  if (v === null || v === undefined) return "–";
  const u = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (v >= 1024 && i < u.length - 1) { v /= 1024; i++; }
  return `${nf1.format(v)} ${u[i]}`;
}

export function statusBadge(code) {
  if (code === null || code === undefined) return h("span", { class: "badge" }, "–");
  return h("span", { class: `badge s${String(code)[0]}` }, code);
}

export function loading(label) {
  return h("div", { class: "state", role: "status" }, label || "Loading…");
}
export function empty(label) {
  return h("div", { class: "state" }, label);
}
export function errorView(err, retry) {
  return h("div", { class: "state error", role: "alert" },
    h("div", {}, h("div", {}, errorText(err)),
      retry ? h("button", { class: "ghost small", type: "button", onclick: retry, style: "margin-top:8px" }, "Retry") : null));
}

export function errorText(err) {
  if (!err) return "Something went wrong.";
  if (err.status === 0) return "The server cannot be reached. Retrying…";
  const details = (err.details || []).map((d) => `${d.field}: ${d.message}`).join("; ");
  return `${err.message || "Request failed"}${details ? ` (${details})` : ""}`;
}

export function toast(text, isError) {
  const box = document.getElementById("toasts");
  const t = h("div", { class: `toast${isError ? " error" : ""}`, role: isError ? "alert" : "status" }, text);
  box.append(t);
  setTimeout(() => t.remove(), 4000);
}

export async function copy(text) {
  try {
    await navigator.clipboard.writeText(text);
    toast("Copied to the clipboard");
  } catch {
    toast("Copy failed: select the text and copy it by hand", true);
  }
}

// A table from column specs [{label, get(row) -> Node|string, num}] and rows.
export function table(columns, rows, opts = {}) {
  const head = h("tr", {}, columns.map((c) => h("th", { class: c.num ? "num" : null, scope: "col" }, c.label)));
  const body = rows.map((r, i) => {
    const tr = h("tr", {
      class: opts.onRow ? "clickable" : null,
      tabindex: opts.onRow ? 0 : null,
      onclick: opts.onRow ? () => opts.onRow(r, tr) : null,
      onkeydown: opts.onRow ? (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); opts.onRow(r, tr); } } : null,
    }, columns.map((c) => h("td", { class: [c.num ? "num" : "", c.wrap ? "wrap" : "", c.mono ? "mono" : ""].join(" ").trim() || null }, c.get(r, i))));
    return tr;
  });
  return h("div", { class: "table-wrap" }, h("table", {}, h("thead", {}, head), h("tbody", {}, body)));
}

export function kpi(label, value, sub, cls) {
  return h("div", { class: "card kpi" },
    h("div", { class: "label" }, label),
    h("div", { class: `value ${cls || ""}`.trim(), "data-kpi": label }, value),
    h("div", { class: "sub" }, sub || ""));
}

// Tabs with roving keyboard focus; returns the container and a select function.
export function tabs(names, onSelect, initial) {
  const bar = h("div", { class: "tabs", role: "tablist" });
  const buttons = names.map((n) => h("button", {
    type: "button", role: "tab", "aria-selected": "false", tabindex: -1,
    onclick: () => select(n),
    onkeydown: (e) => {
      const i = names.indexOf(n);
      if (e.key === "ArrowRight") { e.preventDefault(); select(names[(i + 1) % names.length], true); }
      if (e.key === "ArrowLeft") { e.preventDefault(); select(names[(i + names.length - 1) % names.length], true); }
    },
  }, n));
  bar.append(...buttons);
  function select(n, focus) {
    buttons.forEach((b, i) => {
      const on = names[i] === n;
      b.setAttribute("aria-selected", on ? "true" : "false");
      b.tabIndex = on ? 0 : -1;
      if (on && focus) b.focus();
    });
    onSelect(n);
  }
  queueMicrotask(() => select(initial || names[0]));
  return bar;
}
