// Browser tests of the web dashboard against a running server (started
// by scripts/ui-tests.sh). Each test is a function run in order on one
// browser; a failure is reported and the rest still run. Exit code 1 when
// any test failed.
import { createRequire } from "node:module";
import { mkdirSync } from "node:fs";

const require = createRequire(`${process.env.PW_DIR}/package.json`);
const { chromium } = require("playwright-core");

const BASE = process.env.BASE_URL;
const ADMIN = { email: "admin@localhost", password: process.env.ADMIN_PASSWORD };
const OWNER = { email: "owner@acme.test", password: "owner-password-123" };
const SHOTS = process.env.SCREENSHOT_DIR;
const TAIL_DEADLINE_MS = 2_000;   // the bound: a live event on screen within 2 s
const STEP_TIMEOUT_MS = 10_000;    // any single wait
const PAGES = ["overview", "tail", "explore", "endpoints", "consumers", "alerts", "settings"];
mkdirSync(SHOTS, { recursive: true });

// ---- API helpers (the test's own view of the server).
async function call(method, path, body, token, headers = {}) {
  const r = await fetch(BASE + path, {
    method,
    headers: { "content-type": "application/json", ...(token ? { authorization: `Bearer ${token}` } : {}), ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await r.text();
  let json = null;
  try { json = JSON.parse(text); } catch { /* not JSON */ }
  if (!r.ok) throw new Error(`${method} ${path}: ${r.status} ${text}`);
  return json;
}
const login = async (u) => (await call("POST", "/api/v1/auth/login", u)).access_token;

function events(n) {
  const now = Date.now();
  const eps = ["/api/v1/orders/{id}", "/api/v1/orders", "/api/v1/cart", "/api/v1/login", "/api/v1/search"];
  const tiers = ["free", "gold", "platinum"];
  return Array.from({ length: n }, (_, i) => ({
    timestamp: new Date(now - 50 * 60_000 + (i * 49 * 60_000) / n).toISOString(),
    event_type: i % 23 === 0 ? "user_action" : "api_call",
    service: ["checkout", "auth", "search"][i % 3],
    endpoint: eps[i % eps.length],
    method: i % 4 === 0 ? "POST" : "GET",
    status_code: i % 13 === 0 ? 503 : i % 7 === 0 ? 404 : 200,
    latency_ms: 20 + ((i * 37) % 500) + (i % 13 === 0 ? 1500 : 0),
    user_id: `u-${(i * 7) % 40}`,
    attributes: { customer_tier: tiers[i % 3] },
  }));
}

// ---- A tiny runner.
const results = [];
async function test(name, fn) {
  const t0 = Date.now();
  try {
    await fn();
    results.push({ name, ok: true, ms: Date.now() - t0 });
    console.log(`ok   ${name} (${Date.now() - t0} ms)`);
  } catch (e) {
    results.push({ name, ok: false, ms: Date.now() - t0, error: e });
    console.log(`FAIL ${name}: ${String(e && e.stack ? e.stack.split("\n").slice(0, 4).join("\n  ") : e).slice(0, 1500)}`);
  }
}
function assert(cond, msg) { if (!cond) throw new Error(`assertion failed: ${msg}`); }
const digits = (s) => (s || "").replace(/[^0-9]/g, "");

// ---- Setup: a tenant with an owner and realistic traffic.
const adminToken = await login(ADMIN);
const reg = await call("POST", "/api/v1/auth/register/tenant", { tenant_name: "Acme", owner_email: OWNER.email, owner_password: OWNER.password }, adminToken);
const ingestKey = reg.api_key;
const batch = await call("POST", "/api/v1/ingestion/events/batch", { events: events(600) }, null, { "x-api-key": ingestKey });
assert(batch.accepted === 600, `seeded 600 events: ${JSON.stringify(batch)}`);
const ownerToken = await login(OWNER);

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM,
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"],
});
const context = await browser.newContext({ viewport: { width: 1440, height: 900 }, locale: "en-US", timezoneId: "UTC" });
context.setDefaultTimeout(STEP_TIMEOUT_MS);
const page = await context.newPage();
// Errors the page did not expect: uncaught exceptions and console errors.
// Failed HTTP requests are left out: the pages show those themselves
// (a wrong password's 401, a bad query's 400, the 404s of a server
// without the WebSocket or the alerting API), and tests check that.
const pageErrors = [];
page.on("pageerror", (e) => pageErrors.push(String(e)));
page.on("console", (m) => {
  if (m.type() !== "error") return;
  const t = m.text();
  if (/WebSocket|Failed to load resource/.test(t)) return;
  pageErrors.push(t);
});

// Bytes on the wire (compressed bodies) of the document and the assets
// a page loaded, from the browser's own resource timing.
async function assetBytes(p) {
  return p.evaluate(() => {
    const entries = [...performance.getEntriesByType("navigation"), ...performance.getEntriesByType("resource")]
      .filter((e) => !new URL(e.name).pathname.startsWith("/api/"));
    return { bytes: entries.reduce((a, e) => a + e.encodedBodySize, 0), requests: entries.length };
  });
}

async function shot(name) {
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.screenshot({ path: `${SHOTS}/${name}.png`, fullPage: true });
}
async function noErrorStates() {
  const errs = await page.locator(".state.error").allTextContents();
  assert(errs.length === 0, `error states on the page: ${errs.join(" | ")}`);
}

// Load times are printed against the 1 s target (a measurement, read in the
// output); the tests fail only past SLOW_MS, which no working page reaches.
const SLOW_MS = 5000;

await test("first load: login page with the first-run hint, timed, assets within budget", async () => {
  const t0 = Date.now();
  await page.goto(BASE + "/", { waitUntil: "load" });
  await page.locator("form button[type=submit]").waitFor();
  const ms = Date.now() - t0;
  const { bytes } = await assetBytes(page);
  assert(new URL(page.url()).pathname === "/login", `redirected to /login, got ${page.url()}`);
  const hint = await page.locator(".hint").textContent();
  assert(hint.includes("initial-admin-password") && hint.includes("admin@localhost"), `hint: ${hint}`);
  console.log(`     first paint of the login page: ${ms} ms (target 1000), ${bytes} bytes transferred`);
  assert(ms < SLOW_MS, `first load took ${ms} ms`);
  assert(bytes <= 500 * 1024, `transferred ${bytes} bytes`);
  await shot("login");
});

await test("a wrong password is refused with a message", async () => {
  await page.fill("#email", OWNER.email);
  await page.fill("#password", "wrong-password-x");
  await page.click("form button[type=submit]");
  await page.getByText("Wrong email or password.").waitFor();
});

await test("log in", async () => {
  await page.fill("#email", OWNER.email);
  await page.fill("#password", OWNER.password);
  await page.click("form button[type=submit]");
  await page.waitForURL("**/overview");
  await page.locator("#who").filter({ hasText: OWNER.email }).waitFor();
  assert(await page.locator("#tenant-pick").isHidden(), "no tenant switcher for a tenant user");
});

await test("first load of the overview (every asset, cold cache), timed, without layout shifts", async () => {
  // A new context has an empty HTTP cache; it gets the logged-in session only.
  const cold = await browser.newContext({ viewport: { width: 1440, height: 900 }, locale: "en-US", timezoneId: "UTC", storageState: await context.storageState() });
  const fresh = await cold.newPage();
  await fresh.addInitScript(() => {
    window.__cls = 0;
    new PerformanceObserver((l) => { for (const e of l.getEntries()) if (!e.hadRecentInput) window.__cls += e.value; })
      .observe({ type: "layout-shift", buffered: true });
  });
  const t0 = Date.now();
  await fresh.goto(BASE + "/overview");
  await fresh.locator('[data-kpi="Events"]').filter({ hasText: /\d/ }).waitFor();
  await fresh.locator("svg.chart").nth(2).waitFor();
  const ms = Date.now() - t0;
  await fresh.waitForTimeout(300); // let late layout shifts arrive
  const cls = await fresh.evaluate(() => window.__cls);
  const { bytes, requests } = await assetBytes(fresh);
  console.log(`     overview with data and charts: ${ms} ms (target 1000); ${requests} asset requests, ${bytes} bytes; cumulative layout shift ${cls.toFixed(4)}`);
  await cold.close();
  assert(ms < SLOW_MS, `took ${ms} ms`);
  assert(bytes <= 500 * 1024, `${bytes} bytes`);
  assert(cls < 0.1, `layout shift ${cls}`);
});

await test("overview numbers equal the API's", async () => {
  await page.locator('[data-kpi="Events"]').filter({ hasText: /\d/ }).waitFor();
  const api = await call("GET", "/api/v1/dashboard/overview?window=1h", undefined, ownerToken);
  const shown = await page.locator('[data-kpi="Events"]').textContent();
  assert(digits(shown) === String(api.totals.events), `events shown ${shown}, API ${api.totals.events}`);
  assert(api.totals.events === 600, `API total ${api.totals.events}`);
  const rate = await page.locator('[data-kpi="Error rate"]').textContent();
  assert(Math.abs(parseFloat(rate) - api.error_rate * 100) < 0.006, `error rate shown ${rate}, API ${api.error_rate}`);
  const p95 = await page.locator('[data-kpi="p95"]').textContent();
  assert(Math.abs(parseFloat(p95.replace(/,/g, "")) - api.latency_ms.p95) < 0.6 || p95.includes(" s"), `p95 shown ${p95}, API ${api.latency_ms.p95}`);
  const sub = await page.locator('[data-kpi="Error rate"] + .sub').textContent();
  assert(digits(sub) === String(api.totals.errors), `errors shown ${sub}, API ${api.totals.errors}`);
  const rows = await page.locator("section:has(h2:text('Top endpoints')) tbody tr").count();
  assert(rows === api.top_endpoints.length, `top endpoints rows ${rows} vs ${api.top_endpoints.length}`);
  await page.locator("svg.chart").first().waitFor();
  const pill = await page.locator("#live-state").textContent();
  assert(/polling|live/.test(pill), `live state says ${pill}`);
  await noErrorStates();
  await shot("overview");
});

await test("a live event appears in the tail within 2 s", async () => {
  await page.click('nav a[href="/tail"]');
  await page.locator("[data-page=tail] tbody tr").first().waitFor();
  const marker = `u-live-${Date.now()}`;
  const t0 = Date.now();
  await call("POST", "/api/v1/ingestion/events", { event_type: "api_call", service: "checkout", endpoint: "/api/v1/live", method: "GET", status_code: 200, latency_ms: 12, user_id: marker }, null, { "x-api-key": ingestKey });
  const acked = Date.now();
  await page.getByText(marker).first().waitFor({ timeout: 5_000 });
  const ms = Date.now() - acked;
  console.log(`     ack -> visible in the tail: ${ms} ms (request ${acked - t0} ms)`);
  assert(ms <= TAIL_DEADLINE_MS, `took ${ms} ms`);
  await page.getByText(marker).first().click();
  await page.locator("aside.detail pre").filter({ hasText: marker }).waitFor();
  await page.click("text=Pause");
  await page.getByText(/Paused/).waitFor();
  await call("POST", "/api/v1/ingestion/events", { event_type: "api_call", service: "auth", user_id: `${marker}-paused` }, null, { "x-api-key": ingestKey });
  await page.getByText(/1 new event\(s\) waiting/).waitFor({ timeout: 5_000 });
  assert(await page.getByText(`${marker}-paused`).count() === 0, "paused tail shows nothing new");
  await page.click("text=Resume");
  await page.getByText(`${marker}-paused`).first().waitFor();
  await shot("tail");
});

await test("WebSocket when offered: token in the URL, subscribe, pushed events in the tail, reconnect after a drop", async () => {
  // This server has no WebSocket hub yet; the browser's socket is answered
  // by a stand-in speaking the contract's protocol (section 6).
  const ws = await browser.newContext({ viewport: { width: 1440, height: 900 }, locale: "en-US", timezoneId: "UTC", storageState: await context.storageState() });
  ws.setDefaultTimeout(STEP_TIMEOUT_MS);
  const sockets = [];
  const received = [];
  await ws.routeWebSocket(/\/api\/v1\/dashboard\/ws/, (sock) => {
    sockets.push(sock);
    sock.onMessage((m) => {
      const msg = JSON.parse(String(m));
      received.push({ url: sock.url(), msg });
      if (msg.type === "subscribe") sock.send(JSON.stringify({ type: "subscribed", channels: msg.channels }));
    });
    sock.send(JSON.stringify({ type: "welcome", tenant: reg.tenant.id, server_time: new Date().toISOString() }));
  });
  const p = await ws.newPage();
  await p.goto(BASE + "/tail");
  await p.locator("#live-state[data-state=live]").waitFor();
  await p.locator("[data-page=tail] tbody tr").first().waitFor();
  const deadline = Date.now() + STEP_TIMEOUT_MS;
  while (!received.some((r) => r.msg.type === "subscribe" && r.msg.channels.includes("events")) && Date.now() < deadline) await p.waitForTimeout(50);
  const sub = received.find((r) => r.msg.type === "subscribe" && r.msg.channels.includes("events"));
  assert(sub, `subscribe with events: ${JSON.stringify(received.map((r) => r.msg))}`);
  assert(/[?&]token=[^&]+/.test(sub.url), `token in the URL: ${sub.url}`);
  const pushed = { id: "ffffffffffffffffffffffff", timestamp: new Date().toISOString(), event_type: "api_call", service: "checkout", endpoint: "/pushed", method: "GET", status_code: 201, latency_ms: 3, user_id: "u-pushed-over-ws" };
  sockets[sockets.length - 1].send(JSON.stringify({ type: "events", events: [pushed] }));
  await p.getByText("u-pushed-over-ws").waitFor({ timeout: 2_000 });
  await p.fill("#f-service", "checkout");
  await p.click("text=Apply");
  const deadline2 = Date.now() + STEP_TIMEOUT_MS;
  while (!received.some((r) => r.msg.type === "subscribe" && r.msg.filter && r.msg.filter.service === "checkout") && Date.now() < deadline2) await p.waitForTimeout(50);
  assert(received.some((r) => r.msg.type === "subscribe" && r.msg.filter && r.msg.filter.service === "checkout"), "the tail's filter is sent with subscribe");
  const before = sockets.length;
  await sockets[sockets.length - 1].close();
  await p.locator("#live-state[data-state=reconnecting]").waitFor();
  await p.locator("#live-state[data-state=live]").waitFor({ timeout: 5_000 });
  assert(sockets.length === before + 1, `reconnected once: ${sockets.length - before}`);
  await p.screenshot({ path: `${SHOTS}/tail-websocket.png` });
  await ws.close();
});

await test("tail filters", async () => {
  await page.fill("#f-status_code", "5xx");
  await page.click("text=Apply");
  await page.locator("[data-page=tail] tbody tr").first().waitFor();
  const statuses = await page.locator("[data-page=tail] tbody tr td:nth-child(5)").allTextContents();
  assert(statuses.length > 0 && statuses.every((s) => s.startsWith("5")), `statuses ${statuses.slice(0, 5)}`);
});

await test("explore runs a query and shows a table and a chart", async () => {
  await page.click('nav a[href="/explore"]');
  await page.locator("[data-page=explore] tbody tr").first().waitFor();
  // The five seeded endpoints, the tail test's one, and its event without an endpoint.
  const rows = await page.locator("[data-page=explore] tbody tr").count();
  assert(rows === 7, `7 endpoint groups, got ${rows}`);
  await page.locator("[data-page=explore] td", { hasText: "/api/v1/cart" }).waitFor();
  await page.selectOption("select[aria-label=Interval]", "5m");
  await page.click("text=Run query");
  await page.locator("[data-page=explore] svg.chart").waitFor();
  // A bad query shows the server's validation message.
  await page.fill("#q-json", '{"aggregations":[{"op":"nope"}]}');
  await page.click("text=Run query");
  await page.locator(".state.error").waitFor();
  await page.fill("#q-json", '{"from":"now-1h","group_by":["service"],"aggregations":[{"op":"count","as":"n"}]}');
  await page.click("text=Run query");
  await page.locator("[data-page=explore] tbody tr").nth(2).waitFor();
  // The export buttons download through the API with the session's token.
  const [csv] = await Promise.all([page.waitForEvent("download"), page.click("text=Download results (CSV)")]);
  const csvText = await (await import("node:fs")).promises.readFile(await csv.path(), "utf8");
  assert(csvText.split("\n")[0] === "service,n" && csvText.split("\n").length === 4, `results CSV: ${csvText}`);
  const [nd] = await Promise.all([page.waitForEvent("download"), page.click("text=Export events (NDJSON)")]);
  const lines = (await (await import("node:fs")).promises.readFile(await nd.path(), "utf8")).trim().split("\n");
  // The form's filter (event_type = api_call) applies to the export too.
  const exported = lines.map((l) => JSON.parse(l));
  assert(exported.length >= 573 && exported.every((e) => e.id && e.event_type === "api_call"), `export has ${lines.length} lines`);
  await shot("explore");
});

await test("endpoints list with Apdex, and one endpoint over time", async () => {
  await page.click('nav a[href="/endpoints"]');
  await page.locator("[data-page=endpoints] tbody tr").first().waitFor();
  const rows = await page.locator("[data-page=endpoints] tbody tr").count();
  assert(rows >= 5, `rows ${rows}`);
  const apdex = await page.locator("[data-page=endpoints] tbody tr td:nth-child(8)").allTextContents();
  assert(apdex.every((a) => /^[01]\.\d\d$/.test(a)), `apdex ${apdex}`);
  await page.getByText("T = the tenant's setting").waitFor();
  await page.locator("[data-page=endpoints] tbody tr").first().click();
  // Requests, latency, status codes and Apdex over time.
  await page.locator("[data-page=endpoints] svg.chart").nth(3).waitFor();
  await noErrorStates();
  await shot("endpoints");
});

await test("consumers: top users, tiers, one consumer", async () => {
  await page.click('nav a[href="/consumers"]');
  await page.locator("[data-page=consumers] tbody tr").first().waitFor();
  await page.getByText("platinum").first().waitFor();
  await page.locator("[data-page=consumers] tbody tr").first().click();
  await page.locator("[data-page=consumers] svg.chart").first().waitFor();
  await noErrorStates();
  await shot("consumers");
});

await test("alerts page renders (or says alerting is unavailable)", async () => {
  await page.click('nav a[href="/alerts"]');
  const rulesApi = await fetch(`${BASE}/api/v1/alerting/rules`, { headers: { authorization: `Bearer ${ownerToken}` } });
  if (rulesApi.status === 404) {
    await page.getByText("Alerting is not available on this server").waitFor();
  } else {
    await page.locator("[data-page=alerts] [role=tab]").first().waitFor();
    await page.click("[role=tab]:text('Rules')");
    await page.click("text=New rule");
    await page.fill("#r-name", "");
    await page.click("text=Create rule");
    await page.getByText("is required").waitFor();
    await page.fill("#r-name", "UI test: error rate");
    await page.click("text=Create rule");
    await page.locator("[data-page=alerts] td", { hasText: "UI test: error rate" }).waitFor();
  }
  await shot("alerts");
});

await test("alerts page against the contract's alerting API (stand-in): acknowledge, rule editor with validation, send test, silence", async () => {
  // The alerting API is built elsewhere; this stand-in answers with the
  // contract's shapes (section 7) so the page's requests and rendering
  // are checked now.
  const now = new Date().toISOString();
  const state = {
    alerts: [{ id: "al_1", rule_id: "r_1", rule_name: "Checkout errors", state: "firing", severity: "critical", group: { endpoint: "/api/v1/cart" },
      value: 0.21, threshold: 0.05, started_at: now, fired_at: now, acknowledged_at: null, acknowledged_by: null, resolved_at: null, silenced: false,
      history: [{ state: "pending", at: now }, { state: "firing", at: now }] }],
    rules: [], channels: [{ id: "ch_1", name: "ops", type: "webhook", config: { url: "http://hooks.invalid/ops" } }], silences: [],
  };
  const calls = [];
  const ctx = await browser.newContext({ viewport: { width: 1440, height: 900 }, locale: "en-US", timezoneId: "UTC", storageState: await context.storageState() });
  ctx.setDefaultTimeout(STEP_TIMEOUT_MS);
  await ctx.route(/\/api\/v1\/alerting\//, async (route) => {
    const req = route.request();
    const path = new URL(req.url()).pathname;
    const body = req.postData() ? JSON.parse(req.postData()) : null;
    calls.push({ method: req.method(), path, body });
    const json = (status, v) => route.fulfill({ status, contentType: "application/json", body: JSON.stringify(v) });
    if (req.method() === "GET" && path === "/api/v1/alerting/alerts") return json(200, { alerts: state.alerts, next_cursor: null });
    const act = path.match(/^\/api\/v1\/alerting\/alerts\/([^/]+)\/(acknowledge|resolve)$/);
    if (act && req.method() === "POST") {
      const a = state.alerts.find((x) => x.id === act[1]);
      if (act[2] === "acknowledge") Object.assign(a, { state: "acknowledged", acknowledged_by: OWNER.email, acknowledged_at: new Date().toISOString() });
      else Object.assign(a, { state: "resolved", resolved_at: new Date().toISOString() });
      return json(200, a);
    }
    if (path === "/api/v1/alerting/rules" && req.method() === "GET") return json(200, { rules: state.rules, next_cursor: null });
    if (path === "/api/v1/alerting/rules" && req.method() === "POST") {
      if (body.condition.metric === "error_rate" && !(body.condition.threshold <= 1)) {
        return json(400, { error: { code: "validation_failed", message: "the rule is not valid", details: [{ field: "condition.threshold", message: "an error rate is between 0 and 1" }] } });
      }
      const r = { id: `r_${state.rules.length + 2}`, ...body };
      state.rules.push(r);
      return json(201, r);
    }
    if (path === "/api/v1/alerting/channels" && req.method() === "GET") return json(200, { channels: state.channels, next_cursor: null });
    if (path === "/api/v1/alerting/notifications/test") return json(200, { ok: true, status: "delivered", http_status: 200 });
    if (path === "/api/v1/alerting/silences" && req.method() === "GET") return json(200, { silences: state.silences, next_cursor: null });
    if (path === "/api/v1/alerting/silences" && req.method() === "POST") {
      const x = { id: "si_1", created_by: OWNER.email, ...body };
      state.silences.push(x);
      return json(201, x);
    }
    return json(404, { error: { code: "not_found", message: "no such endpoint", details: [] } });
  });
  const p = await ctx.newPage();
  await p.goto(BASE + "/alerts");
  await p.locator("td", { hasText: "Checkout errors" }).waitFor();
  await p.click("button:text('Acknowledge')");
  await p.locator(".badge.acknowledged").waitFor();
  assert(calls.some((c) => c.method === "POST" && c.path === "/api/v1/alerting/alerts/al_1/acknowledge"), "acknowledge was posted");
  await p.locator("td", { hasText: OWNER.email }).waitFor();

  await p.click("[role=tab]:text('Rules')");
  await p.click("text=New rule");
  await p.click("text=Create rule");
  await p.getByText("is required").waitFor();
  await p.fill("#r-name", "Checkout error rate");
  await p.fill("#r-thr", "5");
  await p.fill("#r-svc", "checkout");
  await p.selectOption("#r-ch", "ch_1");
  await p.click("text=Create rule");
  await p.getByText("an error rate is between 0 and 1").waitFor();
  await p.fill("#r-thr", "0.05");
  await p.click("text=Create rule");
  await p.locator("td", { hasText: "Checkout error rate" }).waitFor();
  const posted = calls.filter((c) => c.method === "POST" && c.path === "/api/v1/alerting/rules").pop().body;
  assert(posted.name === "Checkout error rate" && posted.severity === "warning" && posted.condition.metric === "error_rate" &&
    posted.condition.op === ">" && posted.condition.threshold === 0.05 && posted.condition.window === "5m" &&
    posted.condition.filter.service === "checkout" && posted.channels[0] === "ch_1" && posted.for === "1m", `rule body ${JSON.stringify(posted)}`);
  // Editing keeps what the form does not show.
  state.rules[0].labels = { team: "payments" };
  state.rules[0].escalation = [{ after: "15m", channels: ["ch_1"] }];
  await p.click("[role=tab]:text('Active')");
  await p.click("[role=tab]:text('Rules')");
  await p.click("button:text('Edit')");
  await p.fill("#r-thr", "0.1");
  await ctx.route(/\/api\/v1\/alerting\/rules\/r_2$/, (route) => {
    const b = JSON.parse(route.request().postData());
    calls.push({ method: route.request().method(), path: "/api/v1/alerting/rules/r_2", body: b });
    Object.assign(state.rules[0], b);
    return route.fulfill({ status: 200, contentType: "application/json", body: JSON.stringify(state.rules[0]) });
  });
  await p.click("text=Save rule");
  await p.locator("td", { hasText: "error_rate > 0.1" }).waitFor();
  const put = calls.filter((c) => c.method === "PUT").pop().body;
  assert(put.labels.team === "payments" && put.escalation[0].after === "15m" && put.condition.threshold === 0.1 && !("id" in put), `PUT body ${JSON.stringify(put)}`);
  await p.screenshot({ path: `${SHOTS}/alerts-rules.png`, fullPage: true });

  await p.click("[role=tab]:text('Channels')");
  await p.click("button:text('Send test')");
  await p.getByText("Test to ops: delivered").waitFor();
  assert(calls.some((c) => c.path === "/api/v1/alerting/notifications/test" && c.body.channel_id === "ch_1"), "test notification posted");

  await p.click("[role=tab]:text('Silences')");
  await p.fill("#s-name", "rule_id");
  await p.fill("#s-value", "r_1");
  await p.fill("#s-comment", "deploy");
  await p.click("button[type=submit]:text-is('Silence')");
  await p.locator("td", { hasText: "rule_id=r_1" }).waitFor();
  const sil = calls.filter((c) => c.method === "POST" && c.path === "/api/v1/alerting/silences").pop().body;
  assert(sil.matchers[0].name === "rule_id" && sil.matchers[0].value === "r_1" && Date.parse(sil.ends_at) > Date.parse(sil.starts_at), `silence ${JSON.stringify(sil)}`);
  await p.click("[role=tab]:text('Active')");
  await p.locator("td", { hasText: "Checkout errors" }).waitFor();
  await p.screenshot({ path: `${SHOTS}/alerts-active.png`, fullPage: true });
  await ctx.close();
});

let newKey = null;
await test("create an API key: shown once with curl and OpenTelemetry snippets, and it works", async () => {
  await page.click('nav a[href="/settings"]');
  await page.locator("#k-name").waitFor();
  await page.fill("#k-name", "browser test key");
  await page.click("text=Create key");
  await page.locator("#new-key").waitFor();
  newKey = (await page.locator("#new-key").textContent()).trim();
  assert(newKey.startsWith("psk_"), `key ${newKey}`);
  const snippets = await page.locator("[data-new-key] pre").allTextContents();
  assert(snippets.some((s) => s.startsWith("curl") && s.includes(newKey)), "curl snippet");
  assert(snippets.some((s) => s.includes("/v1/traces") && s.includes(newKey)), "OpenTelemetry snippet");
  await shot("settings-new-key");
  const r = await call("POST", "/api/v1/ingestion/events", { event_type: "api_call" }, null, { "x-api-key": newKey });
  assert(r.accepted === 1, "the new key ingests");
  await page.reload();
  await page.locator("td", { hasText: "browser test key" }).waitFor();
  assert((await page.locator("#new-key").count()) === 0, "the key is not shown again");
});

await test("settings: users and tenant tabs", async () => {
  await page.click("[role=tab]:text('Users')");
  await page.locator("td", { hasText: OWNER.email }).waitFor();
  await page.fill("#u-email", "viewer@acme.test");
  await page.fill("#u-pass", "viewer-password-1");
  await page.click("text=Add user");
  await page.locator("td", { hasText: "viewer@acme.test" }).waitFor();
  await shot("settings-users");
  await page.click("[role=tab]:text('Tenant')");
  await page.locator("#t-retention_days").waitFor();
  await shot("settings");
});

await test("keyboard: the pages are reachable with Tab and Enter", async () => {
  await page.goto(BASE + "/overview");
  await page.locator('[data-kpi="Events"]').filter({ hasText: /\d/ }).waitFor();
  await page.keyboard.press("Tab"); // skip link
  let reached = false;
  for (let i = 0; i < 12 && !reached; i++) {
    await page.keyboard.press("Tab");
    reached = await page.evaluate(() => document.activeElement && document.activeElement.getAttribute("href") === "/tail");
  }
  assert(reached, "Tab reaches the Live tail link");
  await page.keyboard.press("Enter");
  await page.waitForURL("**/tail");
});

await test("dark theme", async () => {
  await page.goto(BASE + "/overview");
  await page.click("#theme-toggle");
  const theme = await page.evaluate(() => document.documentElement.dataset.theme);
  assert(theme === "dark" || theme === "light", theme);
  if (theme !== "dark") await page.click("#theme-toggle");
  await page.locator('[data-kpi="Events"]').filter({ hasText: /\d/ }).waitFor();
  await page.locator("svg.chart").first().waitFor();
  await shot("overview-dark");
  await page.click("#theme-toggle");
});

await test("platform administrator: tenant switcher and the tenant's overview", async () => {
  await page.click("#logout");
  await page.waitForURL("**/login");
  await page.fill("#email", ADMIN.email);
  await page.fill("#password", ADMIN.password);
  await page.click("form button[type=submit]");
  await page.waitForURL("**/overview");
  await page.locator("#tenant-pick").waitFor();
  const opts = await page.locator("#tenant-select option").allTextContents();
  assert(opts.includes("Acme"), `tenants ${opts}`);
  await page.locator('[data-kpi="Events"]').filter({ hasText: /\d/ }).waitFor();
  const api = await call("GET", `/api/v1/dashboard/overview?window=1h&tenant=${reg.tenant.id}`, undefined, adminToken);
  const shown = await page.locator('[data-kpi="Events"]').textContent();
  assert(digits(shown) === String(api.totals.events), `admin sees ${shown}, API ${api.totals.events}`);
  await page.click('nav a[href="/settings"]');
  await page.locator("td", { hasText: reg.tenant.id }).waitFor();
  await shot("settings-admin");
  // A tenant created here joins the switcher at once.
  await page.fill("#nt-name", "Globex");
  await page.fill("#nt-email", "owner@globex.test");
  await page.fill("#nt-pass", "globex-password-1");
  await page.click("text=Create tenant");
  await page.locator("#new-key").waitFor();
  await page.locator("#tenant-select option", { hasText: "Globex" }).waitFor({ state: "attached" });
});

await test("every page renders without script errors", async () => {
  for (const p of PAGES) {
    await page.goto(`${BASE}/${p}`);
    await page.locator(`[data-page=${p}] h1`).waitFor();
  }
  assert(pageErrors.length === 0, `page errors: ${pageErrors.join(" | ")}`);
});

await browser.close();
const failed = results.filter((r) => !r.ok);
console.log(`\n${results.length - failed.length} passed, ${failed.length} failed`);
process.exit(failed.length ? 1 : 0);
