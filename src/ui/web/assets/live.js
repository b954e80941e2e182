// Live updates. Uses the server's WebSocket (`/api/v1/dashboard/ws`,
// contract section 6) when it offers one, and polls otherwise; the header
// pill always says which, and says so when the server is unreachable.
//
// Pages register two kinds of interest:
//   onTick(fn)            refresh your data now (every POLL_MS while
//                         polling; on metrics/alert pushes while live)
//   subscribe(spec, fn)   pushed messages of some channels ("events",
//                         "alerts") with a search filter, while live
import { accessToken } from "./api.js";

const POLL_MS = 5_000;            // polling period: fresh enough for a wall screen, light on the server
const LIVE_REFRESH_MS = 2_000;     // while live, pages re-read aggregates at most this often
const HEARTBEAT_MS = 20_000;       // client heartbeat period
const SILENCE_LIMIT_MS = 65_000;   // no frame for this long: the connection is dead
const PROBE_AGAIN_MS = 60_000;     // server without WebSocket: try again this much later
const BACKOFF_MS = [1_000, 2_000, 4_000, 8_000, 15_000, 30_000]; // reconnect delays after a drop

export class Live {
  constructor(onState) {
    this.onState = onState;
    this.ticks = new Set();
    this.subs = new Set();
    this.ws = null;
    this.everOpen = false;
    this.attempt = 0;
    this.state = "";
    this.lastTick = 0;
    this.stopped = false;
    this.unreachable = false;
    this.pollTimer = setInterval(() => this.poll(), POLL_MS);
    document.addEventListener("visibilitychange", () => { if (!document.hidden) this.fire(true); });
  }

  start() { this.connect(); }

  stop() {
    this.stopped = true;
    clearInterval(this.pollTimer);
    clearTimeout(this.retryTimer);
    clearInterval(this.beatTimer);
    if (this.ws) this.ws.close();
  }

  setState(state, text, detail) {
    this.state = state;
    this.onState(state, text, detail || text);
  }

  // Pages tell us when a read failed for want of a server, so the pill
  // can say "unreachable" rather than pretending all is well.
  reportReach(ok) {
    if (ok === !this.unreachable) return;
    this.unreachable = !ok;
    if (this.state !== "live") this.describePolling();
  }

  describePolling() {
    if (this.unreachable) this.setState("offline", "server unreachable · retrying");
    else if (this.everOpen) this.setState("reconnecting", "disconnected · reconnecting", `The live connection dropped; reconnecting with backoff, polling every ${POLL_MS / 1000} s meanwhile.`);
    else this.setState("polling", "live updates: polling", `This server offers no live stream; the pages re-read their data every ${POLL_MS / 1000} s.`);
  }

  onTick(fn) { this.ticks.add(fn); return () => this.ticks.delete(fn); }

  subscribe(spec, fn) {
    const s = { spec, fn };
    this.subs.add(s);
    this.sendSubscribe();
    return () => { this.subs.delete(s); this.sendSubscribe(); };
  }

  get isLive() { return this.state === "live"; }

  poll() { if (this.state !== "live" && !document.hidden) this.fire(true); }

  fire(force) {
    const now = Date.now();
    if (!force && now - this.lastTick < LIVE_REFRESH_MS) return;
    this.lastTick = now;
    this.ticks.forEach((f) => { try { f(); } catch (e) { console.error(e); } });
  }

  async connect() {
    if (this.stopped) return;
    let token;
    try { token = await accessToken(); } catch { token = null; }
    if (!token) { this.describePolling(); return; }
    const proto = location.protocol === "https:" ? "wss:" : "ws:";
    const url = `${proto}//${location.host}/api/v1/dashboard/ws?token=${encodeURIComponent(token)}`;
    if (!this.everOpen) this.setState("polling", "connecting…");
    let ws;
    try { ws = new WebSocket(url); } catch { this.scheduleRetry(); return; }
    this.ws = ws;
    let opened = false;
    ws.onopen = () => {
      opened = true;
      this.everOpen = true;
      this.attempt = 0;
      this.lastFrame = Date.now();
      this.setState("live", "live", "Live: the server pushes new events and metrics.");
      this.sendSubscribe();
      clearInterval(this.beatTimer);
      this.beatTimer = setInterval(() => {
        if (Date.now() - this.lastFrame > SILENCE_LIMIT_MS) { ws.close(); return; }
        this.send({ type: "heartbeat" });
      }, HEARTBEAT_MS);
      this.fire(true);
    };
    ws.onmessage = (m) => {
      this.lastFrame = Date.now();
      let msg;
      try { msg = JSON.parse(m.data); } catch { return; }
      this.dispatch(msg);
    };
    ws.onclose = () => {
      clearInterval(this.beatTimer);
      if (this.ws === ws) this.ws = null;
      if (this.stopped) return;
      this.scheduleRetry(opened);
    };
  }

  scheduleRetry(wasOpen) {
    let delay;
    if (this.everOpen) {
      delay = BACKOFF_MS[Math.min(this.attempt, BACKOFF_MS.length - 1)];
      this.attempt++;
      this.describePolling();
      if (wasOpen) this.fire(true);
    } else {
      // The server does not offer a WebSocket (or refused it): poll, and
      // look again now and then in case it was upgraded.
      delay = PROBE_AGAIN_MS;
      this.describePolling();
    }
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => this.connect(), delay);
  }

  send(msg) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(msg));
  }

  sendSubscribe() {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN) return;
    const channels = new Set(["metrics", "alerts"]);
    let filter = {};
    for (const s of this.subs) {
      (s.spec.channels || []).forEach((c) => channels.add(c));
      if (s.spec.filter) filter = s.spec.filter;
    }
    this.send({ type: "subscribe", channels: [...channels], filter });
  }

  dispatch(msg) {
    switch (msg.type) {
      case "events":
        this.subs.forEach((s) => (s.spec.channels || []).includes("events") && s.fn(msg));
        break;
      case "alert":
        this.subs.forEach((s) => (s.spec.channels || []).includes("alerts") && s.fn(msg));
        this.fire(true);
        break;
      case "metrics":
        this.fire(false);
        break;
      case "lagged":
        this.subs.forEach((s) => s.fn(msg));
        break;
      default:
        break;
    }
  }
}
