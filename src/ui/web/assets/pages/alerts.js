// Alerts (contract section 7): active alerts and history with acknowledge
// and resolve, the rule editor with the server's validation messages,
// notification channels with "send test", and silences. Says so plainly
// when the server has no alerting API (404).
import { h, replace, table, fmtTime, fmtNum, loading, empty, errorView, errorText, toast, tabs } from "../dom.js";
import { api } from "../api.js";

export const title = "Alerts";

const METRICS = ["count", "rate", "error_rate", "error_count", "avg_latency", "p50_latency", "p90_latency", "p95_latency", "p99_latency", "count_distinct_users", "no_data"];
const SEVERITIES = ["critical", "warning", "info"];
const CMP = [">", ">=", "<", "<="];
const CHANNEL_TYPES = ["webhook", "slack", "email"];

function unavailable(e) {
  return e.status === 404
    ? h("div", { class: "notice warn" }, "Alerting is not available on this server: it answered 404 for the alerting API. Rules, alerts, channels and silences appear here once the server provides them.")
    : errorView(e);
}

function field(label, input, id) {
  input.id = id;
  return h("label", { class: "field", for: id }, label, input);
}

export function render(ctx) {
  const canWrite = ["admin", "owner"].includes(ctx.role);
  const body = h("div", {});
  const views = { Active: active, History: history, Rules: rules, Channels: channels, Silences: silences };
  replace(ctx.root, h("h1", {}, "Alerts"), tabs(Object.keys(views), (n) => views[n]()), h("div", { class: "card" }, body));
  let current = null;

  // Every alert, newest first; the loading view only on a tab's first
  // load, so periodic refreshes do not flash.
  async function alertList(quiet) {
    if (!quiet) replace(body, loading());
    try {
      return (await api("GET", "/api/v1/alerting/alerts")).alerts || [];
    } catch (e) { replace(body, unavailable(e)); return null; }
  }

  function alertTable(list, actions) {
    return table([
      { label: "Severity", get: (a) => h("span", { class: `badge ${a.severity}` }, a.severity) },
      { label: "State", get: (a) => h("span", { class: `badge ${a.state}` }, a.state + (a.silenced ? " (silenced)" : "")) },
      { label: "Rule", get: (a) => a.rule_name, wrap: true },
      { label: "Group", get: (a) => Object.entries(a.group || {}).map(([k, v]) => `${k}=${v}`).join(", ") || "–", mono: true, wrap: true },
      { label: "Value", get: (a) => `${fmtNum(a.value)} / ${fmtNum(a.threshold)}`, num: true },
      { label: "Since", get: (a) => fmtTime(a.fired_at || a.started_at, true) },
      { label: "Acknowledged", get: (a) => (a.acknowledged_by ? `${a.acknowledged_by} ${fmtTime(a.acknowledged_at, true)}` : "–") },
      actions ? { label: "", get: (a) => h("span", { class: "row tight" },
        canWrite && a.state === "firing" ? h("button", { type: "button", class: "small", onclick: () => act(a, "acknowledge") }, "Acknowledge") : null,
        canWrite && a.state !== "resolved" ? h("button", { type: "button", class: "ghost small", onclick: () => act(a, "resolve") }, "Resolve") : null) } : null,
    ].filter(Boolean), list);
  }

  async function act(a, what) {
    try {
      await api("POST", `/api/v1/alerting/alerts/${encodeURIComponent(a.id)}/${what}`);
      toast(what === "acknowledge" ? "Alert acknowledged" : "Alert resolved");
      current();
    } catch (e) { toast(errorText(e), true); }
  }

  async function active(quiet) {
    current = active;
    const all = await alertList(quiet === true);
    if (!all) return;
    const list = all.filter((a) => a.state !== "resolved");
    replace(body, list.length ? alertTable(list, true) : empty("No active alerts."));
  }

  async function history() {
    current = history;
    const list = await alertList(false);
    if (!list) return;
    replace(body, list.length ? [alertTable(list, false),
      h("p", { class: "muted", style: "font-size:12.5px" }, "Each alert's state changes: ", list.slice(0, 20).map((a) => h("div", { class: "mono" }, `${a.rule_name}: ${(a.history || []).map((x) => `${x.state} ${fmtTime(x.at, true)}`).join(" → ")}`)))] : empty("No alerts yet."));
  }

  async function rules() {
    current = rules;
    replace(body, loading());
    let list, chans;
    try {
      [list, chans] = await Promise.all([api("GET", "/api/v1/alerting/rules"), api("GET", "/api/v1/alerting/channels").catch(() => ({ channels: [] }))]);
    } catch (e) { replace(body, unavailable(e)); return; }
    const editor = h("div", {});
    replace(body,
      (list.rules || []).length ? table([
        { label: "Name", get: (r) => r.name },
        { label: "Enabled", get: (r) => (r.enabled === false ? "no" : "yes") },
        { label: "Severity", get: (r) => h("span", { class: `badge ${r.severity}` }, r.severity) },
        { label: "Condition", get: (r) => condText(r.condition), mono: true, wrap: true },
        { label: "", get: (r) => canWrite ? h("span", { class: "row tight" },
          h("button", { type: "button", class: "ghost small", onclick: () => ruleEditor(editor, r, chans.channels || []) }, "Edit"),
          h("button", { type: "button", class: "danger small", onclick: async () => { if (!confirm(`Delete rule "${r.name}"?`)) return; try { await api("DELETE", `/api/v1/alerting/rules/${r.id}`); toast("Rule deleted"); rules(); } catch (e) { toast(errorText(e), true); } } }, "Delete")) : null },
      ], list.rules) : empty("No rules yet."),
      canWrite ? h("button", { type: "button", style: "margin-top:12px", onclick: () => ruleEditor(editor, null, chans.channels || []) }, "New rule") : h("p", { class: "muted" }, "Rules are edited by admins."),
      editor);
  }

  function condText(c) {
    if (!c) return "–";
    const f = Object.entries(c.filter || {}).map(([k, v]) => `${k}=${typeof v === "object" ? JSON.stringify(v) : v}`).join(" ");
    return c.metric === "no_data" ? `no data for ${c.window}${f ? ` where ${f}` : ""}` : `${c.metric} ${c.op} ${c.threshold} over ${c.window}${f ? ` where ${f}` : ""}`;
  }

  function ruleEditor(box, rule, chans) {
    const r = rule || { name: "", enabled: true, severity: "warning", condition: { metric: "error_rate", window: "5m", op: ">", threshold: 0.05, filter: {} }, for: "1m", channels: [], labels: {} };
    const c = r.condition || {};
    const name = h("input", { value: r.name || "", size: 30 });
    const enabled = h("input", { type: "checkbox", checked: r.enabled !== false });
    const severity = h("select", {}, SEVERITIES.map((s) => h("option", { value: s, selected: s === r.severity }, s)));
    const metric = h("select", {}, METRICS.map((m) => h("option", { value: m, selected: m === c.metric }, m)));
    const op = h("select", {}, CMP.map((o) => h("option", { value: o, selected: o === c.op }, o)));
    const threshold = h("input", { value: c.threshold ?? "", size: 8 });
    const windowIn = h("input", { value: c.window || "5m", size: 6 });
    const forIn = h("input", { value: r.for || "0s", size: 6 });
    const service = h("input", { value: (c.filter || {}).service || "", size: 14, placeholder: "any" });
    const endpoint = h("input", { value: (c.filter || {}).endpoint || "", size: 20, placeholder: "any" });
    const groupBy = h("input", { value: (r.group_by || []).join(", "), size: 16, placeholder: "endpoint" });
    const minEvents = h("input", { value: c.min_events ?? "", size: 6 });
    const channelSel = h("select", { multiple: true, size: Math.min(4, Math.max(2, chans.length)) }, chans.map((ch) => h("option", { value: ch.id, selected: (r.channels || []).includes(ch.id) }, `${ch.name} (${ch.type})`)));
    const runbook = h("input", { value: r.runbook_url || "", size: 30 });
    const errs = h("div", { role: "alert" });
    const preview = h("pre", { class: "code" });
    const build = () => {
      const filter = {};
      if (service.value.trim()) filter.service = service.value.trim();
      if (endpoint.value.trim()) filter.endpoint = endpoint.value.trim();
      const cond = { metric: metric.value, filter, window: windowIn.value.trim() };
      if (metric.value !== "no_data") { cond.op = op.value; cond.threshold = threshold.value.trim() === "" ? null : Number(threshold.value); }
      if (minEvents.value.trim()) cond.min_events = Number(minEvents.value);
      // An edited rule keeps what the form does not show (labels,
      // escalation, repeat and keep-firing intervals, other filters).
      const { id: _id, ...kept } = rule || {};
      const keptCond = { ...(kept.condition || {}) };
      delete keptCond.op;
      delete keptCond.threshold;
      delete keptCond.min_events;
      const out = { ...kept, name: name.value.trim(), enabled: enabled.checked, severity: severity.value,
        condition: { ...keptCond, ...cond, filter: { ...(keptCond.filter || {}), ...filter } }, for: forIn.value.trim(),
        group_by: groupBy.value.split(",").map((x) => x.trim()).filter(Boolean), channels: [...channelSel.selectedOptions].map((o) => o.value) };
      if (!service.value.trim()) delete out.condition.filter.service;
      if (!endpoint.value.trim()) delete out.condition.filter.endpoint;
      if (runbook.value.trim()) out.runbook_url = runbook.value.trim(); else delete out.runbook_url;
      return out;
    };
    const sync = () => {
      preview.textContent = JSON.stringify(build(), null, 2);
      op.disabled = threshold.disabled = metric.value === "no_data";
    };
    const local = (b) => {
      const out = [];
      if (!b.name) out.push({ field: "name", message: "is required" });
      if (!/^\d+[smhd]$/.test(b.condition.window)) out.push({ field: "condition.window", message: "must be a duration like 30s, 5m, 1h" });
      if (!/^\d+[smhd]$/.test(b.for)) out.push({ field: "for", message: "must be a duration like 0s, 1m" });
      if (b.condition.metric !== "no_data" && !Number.isFinite(b.condition.threshold)) out.push({ field: "condition.threshold", message: "must be a number" });
      return out;
    };
    const showErrs = (list, msg) => replace(errs, list.length || msg ? h("div", { class: "notice error" }, msg || "Please fix:", h("ul", {}, list.map((d) => h("li", {}, h("b", {}, d.field), ` ${d.message}`)))) : null);
    const form = h("form", {
      onsubmit: async (e) => {
        e.preventDefault();
        const b = build();
        const problems = local(b);
        if (problems.length) { showErrs(problems); return; }
        try {
          if (rule) await api("PUT", `/api/v1/alerting/rules/${rule.id}`, b);
          else await api("POST", "/api/v1/alerting/rules", b);
          toast(rule ? "Rule saved" : "Rule created");
          rules();
        } catch (err) { showErrs(err.details || [], err.details && err.details.length ? "The server refused the rule:" : errorText(err)); }
      },
      oninput: sync, onchange: sync,
    },
    h("h2", { style: "margin-top:16px" }, rule ? `Edit rule “${rule.name}”` : "New rule"),
    h("div", { class: "row" }, field("Name", name, "r-name"), field("Severity", severity, "r-sev"), h("label", { class: "field" }, "Enabled", enabled)),
    h("div", { class: "row" }, field("Metric", metric, "r-metric"), field("Operator", op, "r-op"), field("Threshold", threshold, "r-thr"), field("Window", windowIn, "r-win"), field("For", forIn, "r-for"), field("Min events", minEvents, "r-min")),
    h("div", { class: "row" }, field("Service", service, "r-svc"), field("Endpoint", endpoint, "r-ep"), field("Group by", groupBy, "r-gb"), field("Runbook URL", runbook, "r-rb")),
    h("div", { class: "row" }, field("Channels", channelSel, "r-ch")),
    errs,
    h("details", {}, h("summary", {}, "JSON sent to the server"), preview),
    h("div", { class: "row tight", style: "margin-top:8px" }, h("button", { type: "submit" }, rule ? "Save rule" : "Create rule"), h("button", { type: "button", class: "ghost", onclick: () => box.replaceChildren() }, "Cancel")));
    replace(box, form);
    sync();
    name.focus();
  }

  async function channels() {
    current = channels;
    replace(body, loading());
    let list;
    try { list = (await api("GET", "/api/v1/alerting/channels")).channels || []; } catch (e) { replace(body, unavailable(e)); return; }
    const type = h("select", {}, CHANNEL_TYPES.map((t) => h("option", { value: t }, t)));
    const name = h("input", { size: 20 });
    const target = h("input", { size: 40, placeholder: "https://hooks.example.com/... or an email address" });
    const secret = h("input", { size: 16, placeholder: "webhook only" });
    const msg = h("div", { role: "alert" });
    replace(body,
      list.length ? table([
        { label: "Name", get: (c) => c.name },
        { label: "Type", get: (c) => c.type },
        { label: "Target", get: (c) => c.config ? (c.config.url || c.config.to || JSON.stringify(c.config)) : "–", mono: true, wrap: true },
        { label: "", get: (c) => h("span", { class: "row tight" },
          h("button", { type: "button", class: "ghost small", onclick: () => sendTest(c) }, "Send test"),
          canWrite ? h("button", { type: "button", class: "danger small", onclick: async () => { if (!confirm(`Delete channel "${c.name}"?`)) return; try { await api("DELETE", `/api/v1/alerting/channels/${c.id}`); channels(); } catch (e) { toast(errorText(e), true); } } }, "Delete") : null) },
      ], list) : empty("No channels yet."),
      canWrite ? h("form", { class: "section", onsubmit: async (e) => {
        e.preventDefault();
        const config = type.value === "email" ? { to: target.value.trim() } : { url: target.value.trim() };
        if (type.value === "webhook" && secret.value) config.secret = secret.value;
        try { await api("POST", "/api/v1/alerting/channels", { name: name.value.trim(), type: type.value, config }); toast("Channel created"); channels(); }
        catch (err) { replace(msg, h("div", { class: "notice error" }, errorText(err))); }
      } }, h("h2", {}, "New channel"),
      h("div", { class: "row" }, field("Name", name, "c-name"), field("Type", type, "c-type"), field("URL or address", target, "c-target"), field("Secret", secret, "c-secret"), h("button", { type: "submit" }, "Add channel")), msg) : null);
  }

  async function sendTest(c) {
    try {
      const r = await api("POST", "/api/v1/alerting/notifications/test", { channel_id: c.id });
      const ok = r && (r.ok === true || r.success === true || r.status === "delivered" || r.delivered === true);
      toast(`Test to ${c.name}: ${ok ? "delivered" : JSON.stringify(r)}`, !ok);
    } catch (e) { toast(`Test to ${c.name} failed: ${errorText(e)}`, true); }
  }

  async function silences() {
    current = silences;
    replace(body, loading());
    let list;
    try { list = (await api("GET", "/api/v1/alerting/silences")).silences || []; } catch (e) { replace(body, unavailable(e)); return; }
    const mName = h("input", { size: 14, placeholder: "rule_id, team, endpoint…" });
    const mValue = h("input", { size: 18 });
    const hours = h("input", { type: "number", min: 1, value: 2, style: "width:70px" });
    const comment = h("input", { size: 30 });
    const msg = h("div", { role: "alert" });
    replace(body,
      list.length ? table([
        { label: "Matchers", get: (s) => (s.matchers || []).map((m) => `${m.name}=${m.value}`).join(", "), mono: true },
        { label: "Starts", get: (s) => fmtTime(s.starts_at, true) },
        { label: "Ends", get: (s) => fmtTime(s.ends_at, true) },
        { label: "Comment", get: (s) => s.comment || "", wrap: true },
        { label: "By", get: (s) => s.created_by || "–" },
        { label: "", get: (s) => canWrite ? h("button", { type: "button", class: "danger small", onclick: async () => { try { await api("DELETE", `/api/v1/alerting/silences/${s.id}`); silences(); } catch (e) { toast(errorText(e), true); } } }, "Remove") : null },
      ], list) : empty("No silences."),
      canWrite ? h("form", { class: "section", onsubmit: async (e) => {
        e.preventDefault();
        const now = new Date();
        const body2 = { matchers: [{ name: mName.value.trim(), value: mValue.value.trim() }], starts_at: now.toISOString(), ends_at: new Date(now.getTime() + Number(hours.value) * 3600e3).toISOString(), comment: comment.value };
        try { await api("POST", "/api/v1/alerting/silences", body2); toast("Silence created"); silences(); }
        catch (err) { replace(msg, h("div", { class: "notice error" }, errorText(err))); }
      } }, h("h2", {}, "New silence"),
      h("div", { class: "row" }, field("Label", mName, "s-name"), field("Value", mValue, "s-value"), field("Hours", hours, "s-hours"), field("Comment", comment, "s-comment"), h("button", { type: "submit" }, "Silence")), msg) : null);
  }

  const off = ctx.live.onTick(() => { if (current === active) active(true); });
  return off;
}
