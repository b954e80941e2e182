// Endpoints: per endpoint and method the requests, error rate, p50/p95/p99
// and Apdex over the chosen range; one endpoint's traffic, latency,
// Apdex and status codes over time on click.
import { h, replace, table, fmtInt, fmtPct, fmtMs, fmtNum, loading, empty, errorView } from "../dom.js";
import { query, rowsOf } from "../api.js";
import { lineChart } from "../chart.js";

export const title = "Endpoints";

const DEFAULT_APDEX_T_MS = 300; // the contract's default `apdex_t_ms`
const MAX_ENDPOINTS = 200;      // rows listed; the busiest first
const STEP_FOR = { "15m": "1m", "1h": "1m", "6h": "5m", "24h": "15m", "7d": "3h" };

// The Apdex score from counts, used when the server's query language has
// no `apdex` op: (satisfied + tolerating / 2) / total, errors frustrated.
async function apdexByCounts(base, key, t) {
  const ok = { ...(base.filter || {}), status_code: { lt: 500 } };
  const count = (lte) => query({ ...base, filter: { ...ok, latency_ms: { lte } }, aggregations: [{ op: "count", as: "n" }] });
  const [sat, tol] = await Promise.all([count(t), count(4 * t)]);
  const m = new Map();
  for (const r of rowsOf(sat)) m.set(key(r), { sat: r.n, tol: 0 });
  for (const r of rowsOf(tol)) { const x = m.get(key(r)) || { sat: 0 }; x.tol = r.n - x.sat; m.set(key(r), x); }
  return m;
}

function apdexClass(a) { return a == null ? "" : a >= 0.94 ? "ok" : a >= 0.7 ? "warn" : "bad"; }

export function render(ctx) {
  const tInput = h("input", { id: "apdex-t", type: "number", min: 1, value: DEFAULT_APDEX_T_MS, style: "width:90px" });
  const note = h("div", { class: "muted", style: "font-size:12.5px;min-height:18px" });
  const list = h("div", {}, loading());
  const detail = h("div", {});
  replace(ctx.root,
    h("div", { class: "row" }, h("h1", {}, "Endpoints"), h("span", { class: "spacer" }),
      h("label", { class: "field", for: "apdex-t" }, "Apdex T (ms)", tInput),
      h("button", { type: "button", class: "ghost", onclick: () => load() }, "Apply")),
    h("section", { class: "card" }, note, list), detail);

  const from = `now-${ctx.range}`;
  async function load() {
    const t = Number(tInput.value) || DEFAULT_APDEX_T_MS;
    replace(list, loading());
    const base = { from, to: "now", filter: { event_type: "api_call" }, group_by: ["endpoint", "method"], limit: MAX_ENDPOINTS, order_by: [{ field: "requests", desc: true }] };
    const aggs = [{ op: "count", as: "requests" }, { op: "error_rate", as: "error_rate" },
      { op: "p50", field: "latency_ms", as: "p50" }, { op: "p95", field: "latency_ms", as: "p95" }, { op: "p99", field: "latency_ms", as: "p99" }];
    try {
      let rows;
      try {
        rows = rowsOf(await query({ ...base, aggregations: [...aggs, { op: "apdex", field: "latency_ms", t, as: "apdex" }] }));
        note.textContent = `Apdex from the query language's apdex op, T = ${t} ms.`;
      } catch (e) {
        if (e.status !== 400) throw e;
        rows = rowsOf(await query({ ...base, aggregations: aggs }));
        const key = (r) => `${r.endpoint} ${r.method}`;
        const m = await apdexByCounts({ from, to: "now", filter: base.filter, group_by: base.group_by, limit: 100000 }, key, t);
        for (const r of rows) {
          const c = m.get(key(r));
          r.apdex = r.requests ? ((c ? c.sat : 0) + (c ? c.tol : 0) / 2) / r.requests : null;
        }
        note.textContent = `Apdex computed from counts (satisfied ≤ ${t} ms, tolerating ≤ ${4 * t} ms, server errors frustrated): this server's query language has no apdex op.`;
      }
      rows = rows.filter((r) => r.endpoint != null);
      if (!rows.length) { replace(list, empty(`No API calls with an endpoint in the last ${ctx.range}.`)); return; }
      replace(list, table([
        { label: "Endpoint", get: (r) => r.endpoint, mono: true, wrap: true },
        { label: "Method", get: (r) => r.method || "–" },
        { label: "Requests", get: (r) => fmtInt(r.requests), num: true },
        { label: "Error rate", get: (r) => h("span", { class: r.error_rate > 0.05 ? "bad" : "" }, fmtPct(r.error_rate)), num: true },
        { label: "p50", get: (r) => fmtMs(r.p50), num: true },
        { label: "p95", get: (r) => fmtMs(r.p95), num: true },
        { label: "p99", get: (r) => fmtMs(r.p99), num: true },
        { label: "Apdex", get: (r) => h("span", { class: apdexClass(r.apdex) }, r.apdex == null ? "–" : r.apdex.toFixed(2)), num: true },
      ], rows, { onRow: (r) => showEndpoint(r, t) }));
      ctx.live.reportReach(true);
    } catch (e) {
      if (e.status === 0) ctx.live.reportReach(false);
      replace(list, errorView(e, load));
    }
  }

  async function showEndpoint(r, t) {
    const step = STEP_FOR[ctx.range] || "5m";
    const filter = { event_type: "api_call", endpoint: r.endpoint };
    if (r.method) filter.method = r.method;
    const traffic = h("div", {}, loading());
    const lat = h("div", {}, loading());
    const codes = h("div", {}, loading());
    replace(detail, h("section", { class: "card section" },
      h("h2", {}, h("span", { class: "mono" }, `${r.method || ""} ${r.endpoint}`), " over time"),
      h("div", { class: "grid two" }, h("div", {}, h("h2", {}, "Requests and errors"), traffic), h("div", {}, h("h2", {}, "Latency"), lat)),
      h("div", { class: "section" }, h("h2", {}, "Status codes"), codes)));
    detail.scrollIntoView({ behavior: "smooth", block: "start" });
    try {
      const [a, b] = await Promise.all([
        query({ from, to: "now", filter, interval: step, limit: 100000, order_by: [{ field: "bucket", desc: false }],
          aggregations: [{ op: "count", as: "requests" }, { op: "error_rate", as: "error_rate" },
            { op: "p50", field: "latency_ms", as: "p50" }, { op: "p95", field: "latency_ms", as: "p95" }, { op: "p99", field: "latency_ms", as: "p99" }] }),
        query({ from, to: "now", filter, interval: step, group_by: ["status_class"], limit: 100000, aggregations: [{ op: "count", as: "n" }] }),
      ]);
      const rows = rowsOf(a);
      const times = rows.map((x) => Date.parse(x.bucket));
      lineChart(traffic, { times, series: [{ name: "requests", values: rows.map((x) => x.requests) },
        { name: "errors", values: rows.map((x) => Math.round(x.requests * (x.error_rate || 0))), color: "var(--c2)" }], yFormat: fmtNum, integer: true });
      lineChart(lat, { times, series: ["p50", "p95", "p99"].map((k, i) => ({ name: k, values: rows.map((x) => x[k]), color: ["var(--c3)", "var(--c4)", "var(--c2)"][i] })), yFormat: fmtMs });
      const byClass = new Map();
      for (const x of rowsOf(b)) {
        if (x.status_class == null) continue;
        if (!byClass.has(x.status_class)) byClass.set(x.status_class, new Map());
        byClass.get(x.status_class).set(x.bucket, x.n);
      }
      const colors = { "1xx": "var(--c5)", "2xx": "var(--c3)", "3xx": "var(--c6)", "4xx": "var(--c4)", "5xx": "var(--c2)" };
      const buckets = [...new Set(rowsOf(b).map((x) => x.bucket))].sort();
      if (!byClass.size) replace(codes, empty("No status codes recorded."));
      else lineChart(codes, { times: buckets.map((x) => Date.parse(x)), series: [...byClass.keys()].sort().map((c) => ({ name: c, color: colors[c], values: buckets.map((x) => byClass.get(c).get(x) || 0) })), yFormat: fmtNum, integer: true });
    } catch (e) {
      replace(traffic, errorView(e));
    }
  }

  load();
  return null;
}
