// Settings: API keys (a new key shown once, with copyable agent snippets),
// users and roles, the tenant's limits; for the platform administrator
// also the tenants themselves.
import { h, replace, table, fmtTime, fmtInt, loading, empty, errorView, errorText, toast, copy, tabs } from "../dom.js";
import { api, isPlatformAdmin, currentTenant } from "../api.js";

export const title = "Settings";
export const needsTenant = false;

const ROLES = ["viewer", "admin", "owner"];
// 0 means "no limit" for the rate and the quota, "same as the rate" for the burst.
const LIMITS_NOTE = "0 means no limit (for the burst: the same as the rate).";
const LIMIT_FIELDS = [
  ["retention_days", "Retention (days)"], ["rate_limit_eps", "Rate limit (events/s)"],
  ["rate_limit_burst", "Burst"], ["quota_events_per_day", "Daily quota (events)"],
];

function field(label, input, id) {
  input.id = id;
  return h("label", { class: "field", for: id }, label, input);
}

// The copyable snippets shown with a new ingest key.
function snippets(key) {
  const base = location.origin;
  const curl = `curl -X POST ${base}/api/v1/ingestion/events \\
  -H "Authorization: Bearer ${key}" \\
  -H "Content-Type: application/json" \\
  -d '{"event_type":"api_call","service":"checkout","endpoint":"/api/v1/orders/{id}","method":"POST","status_code":201,"latency_ms":42.7}'`;
  const otelEnv = `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=${base}/v1/traces
OTEL_EXPORTER_OTLP_TRACES_PROTOCOL=http/protobuf
OTEL_EXPORTER_OTLP_TRACES_HEADERS=authorization=Bearer%20${key}`;
  const collector = `exporters:
  otlphttp/pulsestream:
    traces_endpoint: ${base}/v1/traces
    headers:
      Authorization: "Bearer ${key}"
service:
  pipelines:
    traces:
      exporters: [otlphttp/pulsestream]`;
  const block = (label, text) => h("div", { class: "section" },
    h("div", { class: "row tight" }, h("b", {}, label), h("span", { class: "spacer" }), h("button", { type: "button", class: "ghost small", onclick: () => copy(text) }, "Copy")),
    h("pre", { class: "code" }, text));
  return [block("curl", curl), block("OpenTelemetry SDK (environment)", otelEnv), block("OpenTelemetry Collector", collector)];
}

export function render(ctx) {
  const admin = isPlatformAdmin();
  const body = h("div", {});
  const views = admin
    ? { Tenants: tenantsView, "API keys": adminKeys }
    : { "API keys": keysView, Users: usersView, Tenant: tenantView };
  replace(ctx.root, h("h1", {}, "Settings"), tabs(Object.keys(views), (n) => views[n]()), h("div", { class: "card" }, body));
  const canAdmin = ["admin", "owner"].includes(ctx.role);

  function newKeyBox(key, name) {
    return h("div", { class: "notice warn section", "data-new-key": "" },
      h("h2", {}, `New key “${name}”: copy it now, it is shown only once`),
      h("div", { class: "row tight" }, h("div", { class: "secret", id: "new-key" }, key), h("button", { type: "button", onclick: () => copy(key) }, "Copy key")),
      snippets(key));
  }

  async function keysView(shown) {
    replace(body, loading());
    if (!canAdmin) { replace(body, h("div", { class: "notice" }, "API keys are managed by admins and owners.")); return; }
    let list;
    try { list = (await api("GET", "/api/v1/auth/api-keys")).api_keys || []; } catch (e) { replace(body, errorView(e, keysView)); return; }
    const name = h("input", { size: 24, required: true, placeholder: "checkout agents" });
    const ingest = h("input", { type: "checkbox", checked: true, id: "k-ingest" });
    const read = h("input", { type: "checkbox", id: "k-read" });
    const msg = h("div", { role: "alert" });
    replace(body,
      shown || null,
      list.length ? table([
        { label: "Name", get: (k) => k.name },
        { label: "Prefix", get: (k) => k.prefix || "–", mono: true },
        { label: "Scopes", get: (k) => (k.scopes || []).join(", ") },
        { label: "Created", get: (k) => fmtTime(k.created_at, true) },
        { label: "Last used", get: (k) => (k.last_used_at ? fmtTime(k.last_used_at, true) : "–") },
        { label: "", get: (k) => h("button", { type: "button", class: "danger small", onclick: async () => {
          if (!confirm(`Revoke key "${k.name}"? Agents using it stop at once.`)) return;
          try { await api("DELETE", `/api/v1/auth/api-keys/${k.id}`); toast("Key revoked"); keysView(); } catch (e) { toast(errorText(e), true); }
        } }, "Revoke") },
      ], list) : empty("No API keys."),
      h("form", { class: "section", onsubmit: async (e) => {
        e.preventDefault();
        const scopes = [ingest.checked && "ingest", read.checked && "read"].filter(Boolean);
        if (!scopes.length) { replace(msg, h("div", { class: "field-error" }, "Choose at least one scope.")); return; }
        try {
          const k = await api("POST", "/api/v1/auth/api-keys", { name: name.value.trim(), scopes });
          keysView(newKeyBox(k.key, k.name));
        } catch (err) { replace(msg, h("div", { class: "notice error" }, errorText(err))); }
      } }, h("h2", {}, "Create an API key"),
      h("div", { class: "row" }, field("Name", name, "k-name"),
        h("label", { class: "row tight", for: "k-ingest" }, ingest, "ingest"), h("label", { class: "row tight", for: "k-read" }, read, "read"),
        h("button", { type: "submit" }, "Create key")), msg));
  }

  async function usersView() {
    replace(body, loading());
    if (!canAdmin) { replace(body, h("div", { class: "notice" }, "Users are managed by admins and owners.")); return; }
    let list;
    try { list = (await api("GET", "/api/v1/auth/users")).users || []; } catch (e) { replace(body, errorView(e, usersView)); return; }
    const email = h("input", { type: "email", size: 24, required: true });
    const password = h("input", { type: "password", size: 18, required: true, minlength: 10, autocomplete: "new-password" });
    const role = h("select", {}, ROLES.map((r) => h("option", { value: r }, r)));
    const msg = h("div", { role: "alert" });
    replace(body,
      table([
        { label: "Email", get: (u) => u.email },
        { label: "Name", get: (u) => u.name || "–" },
        { label: "Role", get: (u) => {
          const s = h("select", { "aria-label": `Role of ${u.email}`, disabled: u.id === ctx.profile.id }, ROLES.map((r) => h("option", { value: r, selected: r === u.role }, r)));
          s.addEventListener("change", async () => {
            try { await api("PATCH", `/api/v1/auth/users/${u.id}`, { role: s.value }); toast(`${u.email} is now ${s.value}`); } catch (e) { toast(errorText(e), true); s.value = u.role; }
          });
          return s;
        } },
        { label: "Created", get: (u) => fmtTime(u.created_at, true) },
        { label: "", get: (u) => u.id === ctx.profile.id ? h("span", { class: "muted" }, "you") : h("button", { type: "button", class: "danger small", onclick: async () => {
          if (!confirm(`Delete user ${u.email}?`)) return;
          try { await api("DELETE", `/api/v1/auth/users/${u.id}`); usersView(); } catch (e) { toast(errorText(e), true); }
        } }, "Delete") },
      ], list),
      h("form", { class: "section", onsubmit: async (e) => {
        e.preventDefault();
        try { await api("POST", "/api/v1/auth/register/user", { email: email.value.trim(), password: password.value, role: role.value }); toast("User added"); usersView(); }
        catch (err) { replace(msg, h("div", { class: "notice error" }, errorText(err))); }
      } }, h("h2", {}, "Add a user"),
      h("div", { class: "row" }, field("Email", email, "u-email"), field("Password (10+ characters)", password, "u-pass"), field("Role", role, "u-role"), h("button", { type: "submit" }, "Add user")), msg));
  }

  async function tenantView() {
    replace(body, loading());
    let t;
    try { t = await api("GET", "/api/v1/auth/tenant/profile"); } catch (e) { replace(body, errorView(e, tenantView)); return; }
    t = t.tenant || t;
    const owner = ctx.role === "owner";
    const name = h("input", { value: t.name, size: 24, disabled: !owner });
    const inputs = Object.fromEntries(LIMIT_FIELDS.map(([k]) => [k, h("input", { type: "number", min: 0, value: t[k] ?? "", disabled: !owner, style: "width:150px" })]));
    const msg = h("div", { role: "alert" });
    replace(body,
      h("p", { class: "muted" }, `Tenant id `, h("span", { class: "mono" }, t.id), ` · created ${fmtTime(t.created_at, true)}`),
      h("form", { onsubmit: async (e) => {
        e.preventDefault();
        const b = { name: name.value.trim() };
        for (const [k] of LIMIT_FIELDS) if (inputs[k].value !== "") b[k] = Number(inputs[k].value);
        try { await api("PUT", "/api/v1/auth/tenant/profile", b); toast("Tenant saved"); tenantView(); }
        catch (err) { replace(msg, h("div", { class: "notice error" }, errorText(err))); }
      } },
      h("div", { class: "row" }, field("Name", name, "t-name"), LIMIT_FIELDS.map(([k, label]) => field(label, inputs[k], `t-${k}`))),
      h("p", { class: "muted", style: "font-size:12.5px" }, LIMITS_NOTE),
      msg,
      owner ? h("button", { type: "submit", style: "margin-top:10px" }, "Save") : h("p", { class: "muted" }, "Only owners change the tenant's settings.")));
  }

  async function tenantsView() {
    replace(body, loading());
    let list;
    try { list = (await api("GET", "/api/v1/admin/tenants?limit=1000")).tenants || []; } catch (e) { replace(body, errorView(e, tenantsView)); return; }
    const name = h("input", { size: 20, required: true });
    const email = h("input", { type: "email", size: 24, placeholder: "owner@example.com" });
    const password = h("input", { type: "password", size: 16, autocomplete: "new-password" });
    const msg = h("div", { role: "alert" });
    const created = h("div", {});
    replace(body,
      list.length ? table([
        { label: "Name", get: (t) => t.name },
        { label: "Id", get: (t) => t.id, mono: true },
        ...LIMIT_FIELDS.map(([k, label]) => ({ label, num: true, get: (t) => {
          const inp = h("input", { type: "number", min: 0, value: t[k] ?? "", style: "width:110px", "aria-label": `${label} of ${t.name}` });
          inp.addEventListener("change", async () => { try { await api("PATCH", `/api/v1/admin/tenants/${t.id}`, { [k]: Number(inp.value) }); toast(`${t.name}: ${label} saved`); } catch (e) { toast(errorText(e), true); } });
          return inp;
        } })),
        { label: "Disabled", get: (t) => {
          const c = h("input", { type: "checkbox", checked: !!t.disabled, "aria-label": `Disable ${t.name}` });
          c.addEventListener("change", async () => { try { await api("PATCH", `/api/v1/admin/tenants/${t.id}`, { disabled: c.checked }); toast(`${t.name} ${c.checked ? "disabled" : "enabled"}`); } catch (e) { toast(errorText(e), true); c.checked = !c.checked; } });
          return c;
        } },
      ], list) : empty("No tenants yet."),
      list.length ? h("p", { class: "muted", style: "font-size:12.5px" }, `Limits are saved as soon as a field changes. ${LIMITS_NOTE}`) : null,
      h("form", { class: "section", onsubmit: async (e) => {
        e.preventDefault();
        const b = { tenant_name: name.value.trim(), owner_email: email.value.trim(), owner_password: password.value };
        try {
          const r = await api("POST", "/api/v1/auth/register/tenant", b);
          toast(`Tenant ${r.tenant.name} created`);
          window.dispatchEvent(new Event("pulsestream:tenants-changed"));
          await tenantsView();
          replace(created, newKeyBox(r.api_key, `${r.tenant.name} ingest`));
          body.prepend(created);
        } catch (err) { replace(msg, h("div", { class: "notice error" }, errorText(err))); }
      } }, h("h2", {}, "Create a tenant"),
      h("div", { class: "row" }, field("Name", name, "nt-name"), field("Owner email", email, "nt-email"), field("Owner password (10+)", password, "nt-pass"), h("button", { type: "submit" }, "Create tenant")),
      msg));
  }

  async function adminKeys() {
    const t = currentTenant();
    if (!t) { replace(body, h("div", { class: "notice" }, "Create a tenant first, then pick it in the switcher.")); return; }
    const name = h("input", { size: 24, required: true });
    const msg = h("div", { role: "alert" });
    const out = h("div", {});
    replace(body, h("p", { class: "muted" }, "Keys of the tenant chosen in the header are listed by its admins; here the platform administrator can issue a new ingest key for it."),
      h("form", { onsubmit: async (e) => {
        e.preventDefault();
        try { const k = await api("POST", `/api/v1/admin/tenants/${encodeURIComponent(t)}/api-keys`, { name: name.value.trim(), scopes: ["ingest"] }); replace(out, newKeyBox(k.key, k.name)); }
        catch (err) { replace(msg, h("div", { class: "notice error" }, errorText(err))); }
      } }, h("div", { class: "row" }, field("Key name", name, "ak-name"), h("button", { type: "submit" }, "Create ingest key")), msg), out);
  }

  return null;
}
