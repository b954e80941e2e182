// Live tail: the newest events with search filters, pause and resume, and
// an event's full detail on click. Pushed over the WebSocket when the
// server offers it; otherwise the events stream endpoint is polled.
import { h, replace, table, fmtTime, fmtMs, statusBadge, loading, empty, errorView } from "../dom.js";
import { api, filterParams, tenantParam } from "../api.js";

export const title = "Live tail";

const MAX_ROWS = 500;      // rows kept on screen; older ones scroll away
const FETCH_LIMIT = 100;   // events read per poll
const TAIL_POLL_MS = 1_000; // the tail polls faster than the aggregates: new events on screen within 2 s
// In a flood the server pushes each tail only the newest events of every
// 250 ms batch and reports the rest as `lagged`; the stream stays current,
// so the gap is filled from the API at most this often, not on every batch.
const LAG_REFRESH_MS = 10_000;

const FILTERS = [
  ["service", "Service"], ["endpoint", "Endpoint"], ["method", "Method"], ["status_code", "Status (500, 5xx)"],
  ["event_type", "Event type"], ["user_id", "User id"], ["q", "Message contains"],
];

export function render(ctx) {
  const inputs = Object.fromEntries(FILTERS.map(([k]) => [k, h("input", { name: k, id: `f-${k}`, size: 12, autocomplete: "off" })]));
  const pauseBtn = h("button", { type: "button", class: "ghost", "aria-pressed": "false" }, "Pause");
  const status = h("span", { class: "muted", role: "status", style: "font-size:12.5px;min-width:220px" });
  const list = h("div", {}, loading());
  const detail = h("aside", { class: "card detail", "aria-label": "Event detail" }, h("div", { class: "muted" }, "Select an event to see all its fields."));
  let events = [];
  let seen = new Set();
  let paused = false;
  let buffered = [];
  let selected = null;
  let filters = {};
  let busy = false;
  let unsub = null;

  const form = h("form", {
    class: "row", onsubmit: (e) => {
      e.preventDefault();
      filters = Object.fromEntries(Object.entries(inputs).map(([k, el]) => [k, el.value.trim()]).filter(([, v]) => v));
      events = []; seen = new Set(); buffered = [];
      replace(list, loading());
      resubscribe();
      poll(true);
    },
  }, FILTERS.map(([k, label]) => h("label", { class: "field", for: `f-${k}` }, label, inputs[k])),
  h("button", { type: "submit" }, "Apply"), pauseBtn, status);

  pauseBtn.addEventListener("click", () => {
    paused = !paused;
    pauseBtn.textContent = paused ? "Resume" : "Pause";
    pauseBtn.setAttribute("aria-pressed", String(paused));
    if (!paused && buffered.length) { add(buffered); buffered = []; }
    draw();
  });

  replace(ctx.root, h("h1", {}, "Live tail"), h("div", { class: "card" }, form),
    h("div", { class: "split section" }, h("section", { class: "card" }, list), detail));

  function add(batch) {
    const fresh = batch.filter((e) => e.id && !seen.has(e.id));
    if (!fresh.length) return;
    fresh.forEach((e) => seen.add(e.id));
    events = fresh.concat(events).sort((a, b) => (a.id < b.id ? 1 : a.id > b.id ? -1 : 0));
    if (events.length > MAX_ROWS) {
      events.slice(MAX_ROWS).forEach((e) => seen.delete(e.id));
      events = events.slice(0, MAX_ROWS);
    }
  }

  function receive(batch) {
    if (paused) { buffered = buffered.concat(batch.filter((e) => !seen.has(e.id))); draw(); return; }
    add(batch);
    draw();
  }

  function draw() {
    status.textContent = paused ? `Paused · ${buffered.length} new event(s) waiting` : `${events.length} events shown · newest first`;
    if (!events.length) { replace(list, empty(Object.keys(filters).length ? "No events match these filters in the last 24 hours." : "No events in the last 24 hours. They appear here as they arrive.")); return; }
    replace(list, table([
      { label: "Time", get: (e) => fmtTime(e.timestamp), mono: true },
      { label: "Type", get: (e) => e.event_type },
      { label: "Service", get: (e) => e.service || "–" },
      { label: "Request", get: (e) => [e.method || "", " ", e.endpoint || ""], mono: true, wrap: true },
      { label: "Status", get: (e) => statusBadge(e.status_code) },
      { label: "Latency", get: (e) => fmtMs(e.latency_ms), num: true },
      { label: "User", get: (e) => e.user_id || "–" },
    ], events, { onRow: (e, tr) => { selected = e.id; list.querySelectorAll("tr.selected").forEach((r) => r.classList.remove("selected")); tr.classList.add("selected"); show(e); } }));
    const idx = events.findIndex((e) => e.id === selected);
    if (idx >= 0) list.querySelectorAll("tbody tr")[idx].classList.add("selected");
  }

  function show(e) {
    replace(detail, h("h2", {}, "Event ", h("span", { class: "mono" }, e.id)),
      h("pre", { class: "code" }, JSON.stringify(e, null, 2)),
      e.trace_id ? h("button", { type: "button", class: "ghost small", onclick: () => { inputs.user_id.value = ""; inputs.q.value = ""; filters = { trace_id: e.trace_id }; events = []; seen = new Set(); poll(true); } }, "Show this trace") : null);
  }

  async function poll(force) {
    if (busy || (!force && ctx.live.isLive)) return;
    busy = true;
    try {
      const qs = filterParams({ ...filters, limit: FETCH_LIMIT });
      const r = await api("GET", `/api/v1/dashboard/events/stream?${qs}${tenantParam()}`);
      ctx.live.reportReach(true);
      receive(r.events);
    } catch (e) {
      if (e.status === 0) ctx.live.reportReach(false);
      if (!events.length) replace(list, errorView(e, () => poll(true)));
      else status.textContent = `Could not refresh: ${e.message}`;
    } finally {
      busy = false;
    }
  }

  let lastLagRefresh = 0;
  function resubscribe() {
    if (unsub) unsub();
    unsub = ctx.live.subscribe({ channels: ["events"], filter: filters }, (msg) => {
      if (msg.type === "events") receive(msg.events || []);
      if (msg.type === "lagged") {
        status.textContent = `The server skipped ${msg.dropped} event(s) to keep up; showing the newest`;
        const now = Date.now();
        if (now - lastLagRefresh >= LAG_REFRESH_MS) {
          lastLagRefresh = now;
          poll(true);
        }
      }
    });
  }

  resubscribe();
  poll(true);
  const timer = setInterval(() => { if (!document.hidden) poll(false); }, TAIL_POLL_MS);
  return () => { clearInterval(timer); if (unsub) unsub(); };
}
