// The JSON API client: bearer tokens, one transparent refresh on 401,
// the contract's error body turned into an ApiError, and the session
// (tokens, profile, the platform administrator's chosen tenant).

const SESSION_KEY = "pulsestream.session";
const TENANT_KEY = "pulsestream.tenant";
// Refresh a little before the access token expires so requests in
// flight do not race its expiry.
const REFRESH_MARGIN_MS = 30_000;

export class ApiError extends Error {
  constructor(status, code, message, details) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details || [];
  }
}

let session = load();
let refreshing = null;
const listeners = new Set();

function load() {
  try { return JSON.parse(localStorage.getItem(SESSION_KEY)) || null; } catch { return null; }
}
function save() {
  if (session) localStorage.setItem(SESSION_KEY, JSON.stringify(session));
  else localStorage.removeItem(SESSION_KEY);
}

export function getSession() { return session; }
export function onSignOut(fn) { listeners.add(fn); }

function setTokens(t) {
  session = {
    ...(session || {}),
    access_token: t.access_token,
    refresh_token: t.refresh_token,
    expires_at: Date.now() + (t.expires_in || 900) * 1000,
  };
  save();
}

export async function login(email, password) {
  const r = await raw("POST", "/api/v1/auth/login", { email, password }, null);
  setTokens(r);
  session.profile = await api("GET", "/api/v1/auth/profile");
  save();
  return session;
}

export async function logout() {
  const rt = session && session.refresh_token;
  session = null;
  save();
  if (rt) { try { await raw("POST", "/api/v1/auth/logout", { refresh_token: rt }, null); } catch { /* already signed out */ } }
  listeners.forEach((f) => f());
}

async function refresh() {
  if (!session || !session.refresh_token) throw new ApiError(401, "unauthorized", "Please log in.");
  if (!refreshing) {
    refreshing = raw("POST", "/api/v1/auth/refresh", { refresh_token: session.refresh_token }, null)
      .then((t) => setTokens(t))
      .finally(() => { refreshing = null; });
  }
  return refreshing;
}

export async function accessToken() {
  if (session && session.expires_at - Date.now() < REFRESH_MARGIN_MS) await refresh();
  return session && session.access_token;
}

async function raw(method, path, body, token) {
  const headers = { Accept: "application/json" };
  if (body !== undefined && body !== null) headers["Content-Type"] = "application/json";
  if (token) headers.Authorization = `Bearer ${token}`;
  let resp;
  try {
    resp = await fetch(path, { method, headers, body: body == null ? undefined : JSON.stringify(body) });
  } catch {
    throw new ApiError(0, "network", "The server cannot be reached.");
  }
  if (resp.status === 204) return null;
  const text = await resp.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = null; }
  if (!resp.ok) {
    const e = (data && data.error) || {};
    throw new ApiError(resp.status, e.code || "http_" + resp.status, e.message || `${resp.status} ${resp.statusText}`, e.details);
  }
  return data;
}

// An authenticated request; one refresh and retry on 401, then sign-out.
export async function api(method, path, body) {
  let token = await accessToken().catch(() => null);
  try {
    return await raw(method, path, body, token);
  } catch (e) {
    if (e.status !== 401 || !session) throw e;
    try { await refresh(); } catch { await logout(); throw e; }
    token = session && session.access_token;
    return raw(method, path, body, token);
  }
}

export function isPlatformAdmin() {
  return !!(session && session.profile && session.profile.platform_admin);
}

// The tenant the pages read: the user's own, or the one the platform
// administrator picked in the switcher.
export function currentTenant() {
  if (!session || !session.profile) return null;
  if (!isPlatformAdmin()) return session.profile.tenant ? session.profile.tenant.id : null;
  return localStorage.getItem(TENANT_KEY);
}
export function setTenant(id) {
  if (id) localStorage.setItem(TENANT_KEY, id); else localStorage.removeItem(TENANT_KEY);
}

// `?tenant=` for the dashboard endpoints when the platform administrator reads a tenant.
export function tenantParam(sep = "&") {
  return isPlatformAdmin() && currentTenant() ? `${sep}tenant=${encodeURIComponent(currentTenant())}` : "";
}

// POST /api/v1/query, scoped to the chosen tenant for the platform administrator.
export function query(q) {
  const body = { ...q };
  if (isPlatformAdmin() && currentTenant()) body.tenants = [currentTenant()];
  return api("POST", "/api/v1/query", body);
}

// Query result rows as objects keyed by column name.
export function rowsOf(result) {
  return (result.rows || []).map((r) => Object.fromEntries(result.columns.map((c, i) => [c, r[i]])));
}

// The search filters as query-string parameters (the same names the
// search, export and stream endpoints take).
export function filterParams(filters) {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(filters)) if (v !== "" && v !== null && v !== undefined) p.set(k, v);
  return p.toString();
}
