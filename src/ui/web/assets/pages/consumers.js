// Consumers: who calls the API. The busiest user ids and customer tiers by
// requests, errors and latency, and one consumer's traffic over time.
import { h, replace, table, fmtInt, fmtPct, fmtMs, fmtNum, loading, empty, errorView } from "../dom.js";
import { query, rowsOf } from "../api.js";
import { lineChart, barList } from "../chart.js";

export const title = "Consumers";

const TOP_USERS = 25; // consumers listed
const STEP_FOR = { "15m": "1m", "1h": "1m", "6h": "5m", "24h": "15m", "7d": "3h" };
const AGGS = [{ op: "count", as: "requests" }, { op: "error_rate", as: "error_rate" },
  { op: "avg", field: "latency_ms", as: "avg" }, { op: "p95", field: "latency_ms", as: "p95" }];

export function render(ctx) {
  const from = `now-${ctx.range}`;
  const sortSel = h("select", { id: "c-sort", "aria-label": "Order consumers by" },
    h("option", { value: "requests" }, "requests"), h("option", { value: "error_rate" }, "error rate"), h("option", { value: "p95" }, "p95 latency"));
  const users = h("div", {}, loading());
  const tiers = h("div", {}, loading());
  const one = h("div", {});
  const userInput = h("input", { id: "c-user", placeholder: "u-1842", size: 16 });
  replace(ctx.root,
    h("h1", {}, "Consumers"),
    h("div", { class: "grid two" },
      h("section", { class: "card" }, h("div", { class: "row tight" }, h("h2", { style: "margin:0" }, "Top user ids"), h("span", { class: "spacer" }), h("label", { class: "field", for: "c-sort" }, "Order by", sortSel)), users),
      h("section", { class: "card" }, h("h2", {}, "Customer tiers (attributes.customer_tier)"), tiers)),
    h("section", { class: "card section" },
      h("form", { class: "row", onsubmit: (e) => { e.preventDefault(); if (userInput.value.trim()) showUser(userInput.value.trim()); } },
        h("label", { class: "field", for: "c-user" }, "One consumer over time", userInput), h("button", { type: "submit" }, "Show")),
      one));

  async function loadUsers() {
    replace(users, loading());
    try {
      const r = rowsOf(await query({ from, to: "now", filter: { user_id: { exists: true } }, group_by: ["user_id"], aggregations: AGGS, order_by: [{ field: sortSel.value, desc: true }], limit: TOP_USERS }));
      const rows = r.filter((x) => x.user_id != null);
      if (!rows.length) { replace(users, empty(`No events with a user_id in the last ${ctx.range}.`)); return; }
      replace(users, table([
        { label: "User id", get: (x) => x.user_id, mono: true },
        { label: "Requests", get: (x) => fmtInt(x.requests), num: true },
        { label: "Error rate", get: (x) => fmtPct(x.error_rate), num: true },
        { label: "Avg", get: (x) => fmtMs(x.avg), num: true },
        { label: "p95", get: (x) => fmtMs(x.p95), num: true },
      ], rows, { onRow: (x) => { userInput.value = x.user_id; showUser(x.user_id); } }));
      ctx.live.reportReach(true);
    } catch (e) {
      if (e.status === 0) ctx.live.reportReach(false);
      replace(users, errorView(e, loadUsers));
    }
  }

  async function loadTiers() {
    try {
      const rows = rowsOf(await query({ from, to: "now", group_by: ["attributes.customer_tier"], aggregations: AGGS, order_by: [{ field: "requests", desc: true }], limit: 50 }))
        .filter((x) => x["attributes.customer_tier"] != null);
      if (!rows.length) { replace(tiers, empty("No events carry attributes.customer_tier.")); return; }
      replace(tiers, barList(rows.map((x) => ({ label: String(x["attributes.customer_tier"]), value: x.requests })), fmtInt),
        table([
          { label: "Tier", get: (x) => String(x["attributes.customer_tier"]) },
          { label: "Requests", get: (x) => fmtInt(x.requests), num: true },
          { label: "Error rate", get: (x) => fmtPct(x.error_rate), num: true },
          { label: "p95", get: (x) => fmtMs(x.p95), num: true },
        ], rows));
    } catch (e) {
      replace(tiers, errorView(e, loadTiers));
    }
  }

  async function showUser(id) {
    const box = h("div", {}, loading());
    replace(one, h("h2", { style: "margin-top:12px" }, "Traffic of ", h("span", { class: "mono" }, id)), box);
    try {
      const rows = rowsOf(await query({ from, to: "now", filter: { user_id: id }, interval: STEP_FOR[ctx.range] || "5m", aggregations: AGGS, order_by: [{ field: "bucket", desc: false }], limit: 100000 }));
      if (!rows.some((x) => x.requests > 0)) { replace(box, empty(`No events from ${id} in the last ${ctx.range}.`)); return; }
      const times = rows.map((x) => Date.parse(x.bucket));
      const a = h("div", {});
      const b = h("div", {});
      replace(box, h("div", { class: "grid two" }, a, b));
      lineChart(a, { times, series: [{ name: "requests", values: rows.map((x) => x.requests) }], yFormat: fmtNum, integer: true });
      lineChart(b, { times, series: [{ name: "avg latency", values: rows.map((x) => x.avg), color: "var(--c3)" }, { name: "p95 latency", values: rows.map((x) => x.p95), color: "var(--c4)" }], yFormat: fmtMs });
    } catch (e) {
      replace(box, errorView(e));
    }
  }

  sortSel.addEventListener("change", loadUsers);
  loadUsers();
  loadTiers();
  return null;
}
