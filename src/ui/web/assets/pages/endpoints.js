// Endpoints: per endpoint and method the requests, error rate, p50/p95/p99
// and Apdex over the chosen range; one endpoint's traffic, latency,
// Apdex and status codes over time on click.
import { h, replace, table, fmtInt, fmtPct, fmtMs, fmtNum, loading, empty, errorView } from "../dom.js";
import { query, rowsOf } from "../api.js";
import { lineChart } from "../chart.js";

export const title = "Endpoints";

const MAX_ENDPOINTS = 200;      // rows listed; the busiest first
const STEP_FOR = { "15m": "1m", "1h": "1m", "6h": "5m", "24h": "15m", "7d": "3h" };

// The query language's apdex aggregation: with no T typed, the server uses
// the tenant's `apdex_t_ms`.
function apdexAgg(t) {
  return t ? { op: "apdex", field: "latency_ms", t, as: "apdex" } : { op: "apdex", field: "latency_ms", as: "apdex" };
}

function apdexClass(a) { return a == null ? "" : a >= 0.94 ? "ok" : a >= 0.7 ? "warn" : "bad"; }

export function render(ctx) {
  const tInput = h("input", { id: "apdex-t", type: "number", min: 1, placeholder: "tenant's", style: "width:90px" });
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
    const t = Number(tInput.value) > 0 ? Number(tInput.value) : null;
    replace(list, loading());
    const base = { from, to: "now", filter: { event_type: "api_call" }, group_by: ["endpoint", "method"], limit: MAX_ENDPOINTS, order_by: [{ field: "requests", desc: true }] };
    const aggs = [{ op: "count", as: "requests" }, { op: "error_rate", as: "error_rate" },
      { op: "p50", field: "latency_ms", as: "p50" }, { op: "p95", field: "latency_ms", as: "p95" }, { op: "p99", field: "latency_ms", as: "p99" }];
    try {
      let rows = rowsOf(await query({ ...base, aggregations: [...aggs, apdexAgg(t)] }));
      note.textContent = `Apdex: satisfied ≤ T, tolerating ≤ 4T, errors frustrated; T = ${t ? `${t} ms` : "the tenant's setting"}.`;
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
    const apdex = h("div", {}, loading());
    replace(detail, h("section", { class: "card section" },
      h("h2", {}, h("span", { class: "mono" }, `${r.method || ""} ${r.endpoint}`), " over time"),
      h("div", { class: "grid two" }, h("div", {}, h("h2", {}, "Requests and errors"), traffic), h("div", {}, h("h2", {}, "Latency"), lat)),
      h("div", { class: "grid two section" }, h("div", {}, h("h2", {}, "Status codes"), codes), h("div", {}, h("h2", {}, "Apdex"), apdex))));
    detail.scrollIntoView({ behavior: "smooth", block: "start" });
    try {
      const [a, b] = await Promise.all([
        query({ from, to: "now", filter, interval: step, limit: 100000, order_by: [{ field: "bucket", desc: false }],
          aggregations: [{ op: "count", as: "requests" }, { op: "error_rate", as: "error_rate" },
            { op: "p50", field: "latency_ms", as: "p50" }, { op: "p95", field: "latency_ms", as: "p95" }, { op: "p99", field: "latency_ms", as: "p99" }, apdexAgg(t)] }),
        query({ from, to: "now", filter, interval: step, group_by: ["status_class"], limit: 100000, aggregations: [{ op: "count", as: "n" }] }),
      ]);
      const rows = rowsOf(a);
      const times = rows.map((x) => Date.parse(x.bucket));
      lineChart(traffic, { times, series: [{ name: "requests", values: rows.map((x) => x.requests) },
        { name: "errors", values: rows.map((x) => Math.round(x.requests * (x.error_rate || 0))), color: "var(--c2)" }], yFormat: fmtNum, integer: true });
      lineChart(lat, { times, series: ["p50", "p95", "p99"].map((k, i) => ({ name: k, values: rows.map((x) => x[k]), color: ["var(--c3)", "var(--c4)", "var(--c2)"][i] })), yFormat: fmtMs });
      lineChart(apdex, { times, series: [{ name: "apdex", values: rows.map((x) => x.apdex), color: "var(--c3)" }], yFormat: (v) => (v == null ? "–" : v.toFixed(2)) });
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
