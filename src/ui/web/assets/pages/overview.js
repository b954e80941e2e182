// Overview: headline numbers, throughput / errors / latency over the
// chosen range, status classes, top endpoints, active alerts and the
// latest events. One overview API call plus one latency query per refresh.
import { h, replace, kpi, table, fmtInt, fmtPct, fmtMs, fmtRate, fmtNum, fmtTime, statusBadge, loading, empty, errorView, fmtBytes } from "../dom.js";
import { api, query, rowsOf, tenantParam } from "../api.js";
import { lineChart, statusBar } from "../chart.js";

export const title = "Overview";

export function render(ctx) {
  const kpis = h("div", { class: "grid kpis" });
  const through = h("div", { class: "chart-slot" }, loading());
  const errors = h("div", { class: "chart-slot" }, loading());
  const latency = h("div", { class: "chart-slot" }, loading());
  const classes = h("div", { style: "min-height:60px" }, loading());
  const top = h("div", {}, loading());
  const alerts = h("div", {}, loading());
  const recent = h("div", {}, loading());
  const health = h("div", { class: "muted", style: "min-height:20px;font-size:12.5px" });
  const stamp = h("span", { class: "muted", style: "font-size:12.5px" });
  replace(ctx.root,
    h("div", { class: "row tight" }, h("h1", {}, "Overview"), h("span", { class: "spacer" }), stamp),
    kpis,
    h("div", { class: "grid three" },
      h("section", { class: "card" }, h("h2", {}, "Throughput (events/s)"), through),
      h("section", { class: "card" }, h("h2", {}, "Error rate"), errors),
      h("section", { class: "card" }, h("h2", {}, "Latency"), latency)),
    h("div", { class: "grid side section" },
      h("section", { class: "card" }, h("h2", {}, "Status classes"), classes, h("h2", { style: "margin-top:18px" }, "Active alerts"), alerts),
      h("section", { class: "card" }, h("h2", {}, "Top endpoints"), top),
      h("section", { class: "card" }, h("h2", {}, "Recent events"), recent)),
    h("div", { class: "section" }, health));
  // KPI placeholders of the final size so the first data does not move anything.
  const kpiDefs = ["Events/s now", "Events", "Error rate", "p50", "p95", "p99", "Active alerts"];
  replace(kpis, kpiDefs.map((k) => kpi(k, h("div", { class: "skeleton", style: "height:26px;width:70%" }))));
  const disposers = [];
  let busy = false;

  async function refresh() {
    if (busy) return;
    busy = true;
    try {
      const o = await api("GET", `/api/v1/dashboard/overview?window=${ctx.range}${tenantParam()}`);
      ctx.live.reportReach(true);
      const alertCount = o.active_alerts.total || 0;
      replace(kpis,
        kpi("Events/s now", fmtRate(o.throughput.events_per_second), `avg ${fmtRate(o.throughput.average_per_second)} over ${o.window}`),
        kpi("Events", fmtInt(o.totals.events), `${fmtInt(o.totals.api_calls)} API calls · ${fmtInt(o.totals.user_actions)} user actions`),
        kpi("Error rate", fmtPct(o.error_rate), `${fmtInt(o.totals.errors)} errors`, o.error_rate > 0.05 ? "bad" : ""),
        kpi("p50", fmtMs(o.latency_ms.p50), `avg ${fmtMs(o.latency_ms.avg)}`),
        kpi("p95", fmtMs(o.latency_ms.p95)),
        kpi("p99", fmtMs(o.latency_ms.p99)),
        kpi("Active alerts", fmtInt(alertCount), `${o.active_alerts.critical || 0} critical · ${o.active_alerts.warning || 0} warning`, alertCount ? "bad" : ""));
      const times = o.throughput.series.map((p) => Date.parse(p.bucket));
      disposers.splice(0).forEach((d) => d());
      if (o.totals.events === 0) {
        replace(through, empty(`No events in the last ${o.window}. Send some with an API key from Settings.`));
        replace(errors, empty("No events, no errors."));
      } else {
        disposers.push(lineChart(through, { times, series: [{ name: "events/s", values: o.throughput.series.map((p) => p.events_per_second) }], yFormat: fmtNum }));
        disposers.push(lineChart(errors, { times, series: [
          { name: "error rate", values: o.throughput.series.map((p) => (p.count ? p.errors / p.count : null)), color: "var(--c2)" }], yFormat: fmtPct }));
      }
      replace(classes, statusBar(o.status_codes));
      replace(top, o.top_endpoints.length === 0 ? empty("No endpoints in this range.") : table([
        { label: "Endpoint", get: (r) => r.endpoint, mono: true, wrap: true },
        { label: "Requests", get: (r) => fmtInt(r.requests), num: true },
        { label: "Error rate", get: (r) => fmtPct(r.error_rate), num: true },
        { label: "p95", get: (r) => fmtMs(r.p95), num: true },
      ], o.top_endpoints));
      replace(recent, o.recent_events.length === 0 ? empty("No recent events.") : table([
        { label: "Time", get: (e) => fmtTime(e.timestamp), mono: true },
        { label: "Type", get: (e) => e.event_type },
        { label: "Endpoint", get: (e) => [e.method || "", " ", e.endpoint || e.service || ""], mono: true, wrap: true },
        { label: "Status", get: (e) => statusBadge(e.status_code) },
        { label: "Latency", get: (e) => fmtMs(e.latency_ms), num: true },
      ], o.recent_events, { onRow: () => ctx.navigate("/tail") }));
      health.textContent = `Server ${o.health.status} · version ${o.health.version} · up ${fmtNum(o.health.uptime_s / 3600)} h · this tenant stores ${fmtInt(o.health.storage.events)} events in ${fmtBytes(o.health.storage.bytes)}`;
      stamp.textContent = `${o.window} to ${fmtTime(o.to)}`;
      await refreshLatency(o);
      await refreshAlerts(alertCount);
    } catch (e) {
      if (e.status === 0) ctx.live.reportReach(false);
      replace(through, errorView(e, refresh));
    } finally {
      busy = false;
    }
  }

  async function refreshLatency(o) {
    try {
      const r = await query({
        from: o.from, to: o.to, interval: o.throughput.interval,
        aggregations: [{ op: "p50", field: "latency_ms", as: "p50" }, { op: "p95", field: "latency_ms", as: "p95" }, { op: "p99", field: "latency_ms", as: "p99" }],
        order_by: [{ field: "bucket", desc: false }], limit: 10000,
      });
      const rows = rowsOf(r);
      if (!rows.some((x) => x.p50 != null)) { replace(latency, empty("No latencies in this range.")); return; }
      disposers.push(lineChart(latency, { times: rows.map((x) => Date.parse(x.bucket)), series: ["p50", "p95", "p99"].map((k, i) => ({ name: k, values: rows.map((x) => x[k]), color: ["var(--c3)", "var(--c4)", "var(--c2)"][i] })), yFormat: fmtMs }));
    } catch (e) {
      replace(latency, errorView(e));
    }
  }

  async function refreshAlerts(count) {
    try {
      const r = await api("GET", "/api/v1/alerting/alerts?state=firing&limit=5");
      const list = r.alerts || [];
      replace(alerts, list.length === 0 ? h("div", { class: "muted" }, count ? `${count} active` : "No firing alerts.") : table([
        { label: "Severity", get: (a) => h("span", { class: `badge ${a.severity}` }, a.severity) },
        { label: "Rule", get: (a) => a.rule_name, wrap: true },
        { label: "Since", get: (a) => fmtTime(a.fired_at || a.started_at, true) },
      ], list, { onRow: () => ctx.navigate("/alerts") }));
    } catch (e) {
      replace(alerts, h("div", { class: "muted" }, e.status === 404 ? "Alerting is not available on this server." : `Alerts could not be read: ${e.message}`));
    }
  }

  refresh();
  const off = ctx.live.onTick(refresh);
  return () => { off(); disposers.forEach((d) => d()); };
}
