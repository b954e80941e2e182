// Explore: the query language (contract section 5) as a form: filters,
// group-by, interval, aggregations, order and limit. The form writes the
// JSON query, which can also be edited by hand; results show as a table
// and a chart, and download as CSV; the matching raw events export as
// NDJSON or CSV through the export API.
import { h, replace, table, fmtNum, loading, empty, errorView, toast } from "../dom.js";
import { api, query, rowsOf, accessToken, isPlatformAdmin, currentTenant } from "../api.js";
import { lineChart, barList } from "../chart.js";

export const title = "Explore";

const FIELDS = ["event_type", "service", "endpoint", "method", "status_code", "status_class", "latency_ms", "severity", "user_id", "region", "trace_id", "message", "request_bytes", "response_bytes"];
const OPS = ["count", "sum", "avg", "min", "max", "p50", "p90", "p95", "p99", "count_distinct", "error_rate", "apdex"];
const FILTER_OPS = ["=", "gte", "gt", "lte", "lt", "prefix", "contains", "in"];
const MAX_CHART_GROUPS = 6; // lines drawn at once; more are unreadable
// Filters the export endpoint understands as query parameters (equality only).
const EXPORT_PARAMS = ["event_type", "service", "endpoint", "method", "status_code", "user_id", "trace_id"];

function select(options, value, label) {
  return h("select", { "aria-label": label }, options.map((o) => h("option", { value: o, selected: o === value }, o)));
}

export function render(ctx) {
  const filterRows = h("div", {});
  const aggRows = h("div", {});
  const groupBy = h("input", { id: "q-group", placeholder: "endpoint, method", size: 24 });
  const interval = select(["", "1m", "5m", "15m", "1h", "1d"], "", "Interval");
  const orderBy = h("input", { id: "q-order", placeholder: "requests desc", size: 16 });
  const limit = h("input", { id: "q-limit", type: "number", min: 1, max: 100000, value: 50, style: "width:90px" });
  const json = h("textarea", { id: "q-json", spellcheck: "false", "aria-label": "Query as JSON" });
  const result = h("div", {}, empty("Build a query and run it."));
  const chart = h("div", {});
  const statsLine = h("div", { class: "muted", style: "font-size:12.5px;min-height:18px" });
  const exportBox = h("div", { class: "row tight" });
  let lastRows = null;

  function filterRow(field = "service", op = "=", value = "") {
    const f = select([...FIELDS, "attributes."], field, "Filter field");
    const attr = h("input", { placeholder: "key", size: 10, "aria-label": "Attribute key", hidden: field !== "attributes." });
    f.addEventListener("change", () => { attr.hidden = f.value !== "attributes."; sync(); });
    const o = select(FILTER_OPS, op, "Filter operator");
    const v = h("input", { value, size: 18, "aria-label": "Filter value" });
    const row = h("div", { class: "row tight filter-row", style: "margin:4px 0" }, f, attr, o, v,
      h("button", { type: "button", class: "ghost small", "aria-label": "Remove filter", onclick: () => { row.remove(); sync(); } }, "✕"));
    row.read = () => ({ field: f.value === "attributes." ? `attributes.${attr.value.trim()}` : f.value, op: o.value, value: v.value.trim() });
    [o, v, attr].forEach((el) => el.addEventListener("input", sync));
    filterRows.append(row);
  }
  function aggRow(op = "count", field = "", as = "") {
    const o = select(OPS, op, "Aggregation");
    const f = select(["", ...FIELDS], field, "Aggregation field");
    const a = h("input", { value: as, placeholder: "as", size: 12, "aria-label": "Column name" });
    const t = h("input", { placeholder: "t ms", size: 6, "aria-label": "Apdex threshold (ms)", hidden: op !== "apdex" });
    o.addEventListener("change", () => { t.hidden = o.value !== "apdex"; sync(); });
    const row = h("div", { class: "row tight agg-row", style: "margin:4px 0" }, o, f, t, a,
      h("button", { type: "button", class: "ghost small", "aria-label": "Remove aggregation", onclick: () => { row.remove(); sync(); } }, "✕"));
    row.read = () => {
      const x = { op: o.value };
      if (f.value) x.field = f.value;
      if (a.value.trim()) x.as = a.value.trim();
      if (o.value === "apdex" && t.value.trim()) x.t = Number(t.value);
      return x;
    };
    [f, a, t].forEach((el) => el.addEventListener("input", sync));
    aggRows.append(row);
  }

  function parseValue(op, v) {
    if (op === "in") return v.split(",").map((x) => x.trim()).filter(Boolean).map((x) => (/^-?\d+(\.\d+)?$/.test(x) ? Number(x) : x));
    return /^-?\d+(\.\d+)?$/.test(v) ? Number(v) : v;
  }

  function build() {
    const q = { from: `now-${ctx.range}`, to: "now" };
    const filter = {};
    for (const r of filterRows.children) {
      const { field, op, value } = r.read();
      if (!value || field === "attributes.") continue;
      filter[field] = op === "=" ? parseValue(op, value) : op === "in" ? parseValue(op, value) : { [op]: parseValue(op, value) };
    }
    if (Object.keys(filter).length) q.filter = filter;
    const gb = groupBy.value.split(",").map((x) => x.trim()).filter(Boolean);
    if (gb.length) q.group_by = gb;
    if (interval.value) q.interval = interval.value;
    q.aggregations = [...aggRows.children].map((r) => r.read());
    const ob = orderBy.value.trim().split(/\s+/);
    if (ob[0]) q.order_by = [{ field: ob[0], desc: (ob[1] || "").toLowerCase() === "desc" }];
    if (limit.value) q.limit = Number(limit.value);
    return q;
  }
  function sync() { json.value = JSON.stringify(build(), null, 2); updateExport(); }
  [groupBy, orderBy, limit].forEach((el) => el.addEventListener("input", sync));
  interval.addEventListener("change", sync);

  function updateExport() {
    const q = build();
    const p = new URLSearchParams({ from: q.from, to: q.to });
    let skipped = 0;
    for (const [k, v] of Object.entries(q.filter || {})) {
      if (EXPORT_PARAMS.includes(k) && typeof v !== "object") p.set(k, v);
      else if (k.startsWith("attributes.") && typeof v !== "object") p.set(`attr.${k.slice(11)}`, v);
      else skipped++;
    }
    const dl = (fmt) => h("button", { type: "button", class: "ghost small", onclick: () => download(`/api/v1/export?format=${fmt}&${p}`, `events.${fmt === "csv" ? "csv" : "ndjson"}`) }, `Export events (${fmt.toUpperCase()})`);
    replace(exportBox, dl("ndjson"), dl("csv"),
      h("button", { type: "button", class: "ghost small", disabled: !lastRows, onclick: downloadResults }, "Download results (CSV)"),
      skipped ? h("span", { class: "muted", style: "font-size:12px" }, `${skipped} filter(s) other than equality are not applied to the event export.`) : null,
      isPlatformAdmin() ? h("span", { class: "muted", style: "font-size:12px" }, "Event export needs a tenant user's login.") : null);
  }

  async function download(path, name) {
    try {
      const token = await accessToken();
      const r = await fetch(path, { headers: { Authorization: `Bearer ${token}` } });
      if (!r.ok) { const e = await r.json().catch(() => ({})); throw new Error((e.error && e.error.message) || r.statusText); }
      saveBlob(await r.blob(), name);
    } catch (e) { toast(`Export failed: ${e.message}`, true); }
  }
  function saveBlob(blob, name) {
    const url = URL.createObjectURL(blob);
    const a = h("a", { href: url, download: name });
    document.body.append(a); a.click(); a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10_000);
  }
  function downloadResults() {
    if (!lastRows) return;
    const esc = (v) => (v == null ? "" : /[",\n]/.test(String(v)) ? `"${String(v).replace(/"/g, '""')}"` : String(v));
    const text = [lastRows.columns.map(esc).join(","), ...lastRows.rows.map((r) => r.map(esc).join(","))].join("\n");
    saveBlob(new Blob([text], { type: "text/csv" }), "query-results.csv");
  }

  async function run(e) {
    if (e) e.preventDefault();
    let q;
    try { q = JSON.parse(json.value); } catch (err) { replace(result, errorView({ message: `The query is not valid JSON: ${err.message}` })); return; }
    replace(result, loading("Running…"));
    chart.replaceChildren();
    try {
      const r = await query(q);
      lastRows = r;
      updateExport();
      const s = r.stats || {};
      statsLine.textContent = `${r.rows.length} row(s) · scanned ${fmtNum(s.scanned_rows)} rows · ${s.segments_scanned} segments read, ${s.segments_pruned} pruned · ${fmtNum(s.elapsed_ms)} ms${s.truncated ? " · truncated to the limit" : ""}`;
      if (!r.rows.length) { replace(result, empty("No rows.")); return; }
      replace(result, table(r.columns.map((c, i) => ({ label: c, get: (row) => (row[i] === null ? "–" : typeof row[i] === "number" ? fmtNum(row[i]) : String(row[i])), num: typeof r.rows[0][i] === "number" })), r.rows.slice(0, 1000)));
      drawChart(r, q);
    } catch (err) {
      lastRows = null;
      statsLine.textContent = "";
      replace(result, errorView(err));
    }
  }

  function drawChart(r, q) {
    const rows = rowsOf(r);
    const metric = r.columns[r.columns.length - 1];
    const groups = (q.group_by || []);
    const key = (row) => groups.map((g) => row[g] ?? "∅").join(" · ") || metric;
    if (r.columns.includes("bucket")) {
      const times = [...new Set(rows.map((x) => x.bucket))].sort();
      const byGroup = new Map();
      for (const row of rows) {
        const k = key(row);
        if (!byGroup.has(k)) byGroup.set(k, new Map());
        byGroup.get(k).set(row.bucket, row[metric]);
      }
      const series = [...byGroup.entries()].slice(0, MAX_CHART_GROUPS).map(([name, m]) => ({ name, values: times.map((t) => m.get(t) ?? null) }));
      lineChart(chart, { times: times.map((t) => Date.parse(t)), series, yFormat: fmtNum });
    } else if (rows.length > 1 || groups.length) {
      replace(chart, h("h2", {}, metric), barList(rows.slice(0, 20).map((x) => ({ label: key(x), value: Number(x[metric]) || 0 })), fmtNum));
    }
  }

  filterRow("event_type", "=", "api_call");
  aggRow("count", "", "requests");
  aggRow("error_rate", "", "error_rate");
  aggRow("p95", "latency_ms", "p95_ms");
  groupBy.value = "endpoint";
  orderBy.value = "requests desc";
  sync();

  replace(ctx.root, h("h1", {}, "Explore"),
    h("form", { class: "grid two", onsubmit: run },
      h("section", { class: "card" },
        h("h2", {}, "Filters"), filterRows,
        h("button", { type: "button", class: "ghost small", onclick: () => { filterRow(); sync(); } }, "+ filter"),
        h("h2", { style: "margin-top:14px" }, "Aggregations"), aggRows,
        h("button", { type: "button", class: "ghost small", onclick: () => { aggRow(); sync(); } }, "+ aggregation"),
        h("div", { class: "row", style: "margin-top:14px" },
          h("label", { class: "field", for: "q-group" }, "Group by (comma-separated)", groupBy),
          h("label", { class: "field" }, "Interval", interval),
          h("label", { class: "field", for: "q-order" }, "Order by", orderBy),
          h("label", { class: "field", for: "q-limit" }, "Limit", limit)),
        h("p", { class: "muted", style: "font-size:12.5px" }, `Range: the header's time range (last ${ctx.range}). Edit the JSON for absolute times.`)),
      h("section", { class: "card" }, h("h2", {}, "Query (JSON)"), json,
        h("div", { class: "row tight", style: "margin-top:8px" }, h("button", { type: "submit" }, "Run query"), h("span", { class: "muted", style: "font-size:12px" }, currentTenant() && isPlatformAdmin() ? "Runs on the tenant chosen in the header." : "")))),
    h("section", { class: "card section" }, h("div", { class: "row tight" }, h("h2", { style: "margin:0" }, "Results"), h("span", { class: "spacer" }), exportBox), statsLine, chart, result));
  run();
  return null;
}
