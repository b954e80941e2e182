// The application shell: session check, header (navigation, tenant
// switcher, time range, theme, live state), and the client-side router
// that mounts one page module at a time from ./pages/.
import { h, replace, errorText } from "./dom.js";
import { api, getSession, logout, onSignOut, isPlatformAdmin, currentTenant, setTenant } from "./api.js";
import { Live } from "./live.js";

const PAGES = ["overview", "tail", "explore", "endpoints", "consumers", "alerts", "settings"];
const RANGE_KEY = "pulsestream.range";
const THEME_KEY = "pulsestream.theme";

const view = document.getElementById("view");
const top = document.getElementById("top");
let live = null;
let cleanup = null;
let mountSeq = 0;

function applyTheme(theme) {
  document.documentElement.dataset.theme = theme;
  localStorage.setItem(THEME_KEY, theme);
}
applyTheme(localStorage.getItem(THEME_KEY) ||
  (matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light"));
document.getElementById("theme-toggle").addEventListener("click", () =>
  applyTheme(document.documentElement.dataset.theme === "dark" ? "light" : "dark"));

const rangeSelect = document.getElementById("range-select");
rangeSelect.value = localStorage.getItem(RANGE_KEY) || "1h";
rangeSelect.addEventListener("change", () => {
  localStorage.setItem(RANGE_KEY, rangeSelect.value);
  mount();
});

document.getElementById("logout").addEventListener("click", () => logout());
onSignOut(() => {
  if (live) { live.stop(); live = null; }
  navigate("/login");
});

document.addEventListener("click", (e) => {
  const a = e.target.closest("a[data-nav]");
  if (!a || e.ctrlKey || e.metaKey || e.shiftKey || e.button !== 0) return;
  e.preventDefault();
  navigate(a.getAttribute("href"));
});
window.addEventListener("popstate", () => mount());
// Settings announce a new tenant so the platform administrator's switcher lists it at once.
window.addEventListener("pulsestream:tenants-changed", () => setupTenantPicker());

export function navigate(path) {
  if (location.pathname + location.search !== path) history.pushState({}, "", path);
  mount();
}

function pageName() {
  const p = location.pathname.replace(/^\/+|\/+$/g, "");
  return p === "" ? "overview" : p;
}

function setLiveState(state, text, detail) {
  const el = document.getElementById("live-state");
  el.dataset.state = state;
  el.textContent = text;
  el.title = detail;
}

async function setupTenantPicker() {
  const pick = document.getElementById("tenant-pick");
  const sel = document.getElementById("tenant-select");
  if (!isPlatformAdmin()) { pick.hidden = true; return; }
  pick.hidden = false;
  let tenants = [];
  try { tenants = (await api("GET", "/api/v1/admin/tenants?limit=1000")).tenants || []; } catch { tenants = []; }
  const chosen = currentTenant();
  if (!tenants.some((t) => t.id === chosen)) setTenant(tenants.length ? tenants[0].id : null);
  replace(sel, tenants.length ? tenants.map((t) => h("option", { value: t.id }, t.name)) : h("option", { value: "" }, "no tenants yet"));
  sel.value = currentTenant() || "";
  sel.onchange = () => { setTenant(sel.value); mount(); };
}

async function mount() {
  const seq = ++mountSeq;
  if (cleanup) { try { cleanup(); } catch (e) { console.error(e); } cleanup = null; }
  const session = getSession();
  let name = pageName();
  if (!session) {
    top.hidden = true;
    if (name !== "login") { history.replaceState({}, "", "/login"); name = "login"; }
  } else if (name === "login") {
    history.replaceState({}, "", "/overview");
    name = "overview";
  }
  if (name !== "login" && !PAGES.includes(name)) {
    replace(view, h("div", { class: "state" }, "No such page."));
    return;
  }
  if (name !== "login") {
    top.hidden = false;
    if (!session.profile) {
      try { session.profile = await api("GET", "/api/v1/auth/profile"); } catch (e) {
        replace(view, h("div", { class: "state error" }, errorText(e)));
        return;
      }
    }
    const who = document.getElementById("who");
    who.textContent = session.profile.email;
    who.title = `${session.profile.email}: ${isPlatformAdmin() ? "platform administrator" : session.profile.role}`;
    if (!live) { live = new Live(setLiveState); live.start(); }
    if (seq === mountSeq && !document.getElementById("tenant-select").options.length) await setupTenantPicker();
  }
  if (seq !== mountSeq) return;
  document.querySelectorAll("#nav a").forEach((a) => {
    if (a.getAttribute("href") === "/" + name) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  });
  const mod = await import(`./pages/${name}.js`);
  if (seq !== mountSeq) return;
  document.title = `${mod.title || name} · PulseStream`;
  const root = h("div", { class: "page", "data-page": name });
  replace(view, root);
  const ctx = {
    root, live, navigate,
    range: rangeSelect.value,
    tenant: currentTenant(),
    admin: isPlatformAdmin(),
    role: session && session.profile ? session.profile.role : null,
    profile: session ? session.profile : null,
    onLogin: async () => { await setupTenantPicker(); navigate("/overview"); },
  };
  if (name !== "login" && ctx.admin && !ctx.tenant && mod.needsTenant !== false) {
    replace(root, h("h1", {}, mod.title || name),
      h("div", { class: "notice" }, "There is no tenant yet. Create one under ", h("a", { href: "/settings", "data-nav": true }, "Settings"), ", then pick it in the tenant switcher."));
    return;
  }
  cleanup = mod.render(ctx) || null;
}

mount();
