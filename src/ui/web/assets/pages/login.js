// Login, with the first-start hint for the platform administrator.
import { h, replace, errorText } from "../dom.js";
import { login } from "../api.js";

export const title = "Log in";
export const needsTenant = false;

export function render(ctx) {
  const email = h("input", { id: "email", name: "email", type: "email", autocomplete: "username", required: true, autofocus: true });
  const password = h("input", { id: "password", name: "password", type: "password", autocomplete: "current-password", required: true });
  const msg = h("div", { role: "alert", class: "field-error", style: "min-height:18px" });
  const submit = h("button", { type: "submit" }, "Log in");
  const form = h("form", {
    onsubmit: async (e) => {
      e.preventDefault();
      submit.disabled = true;
      msg.textContent = "";
      try {
        await login(email.value.trim(), password.value);
        await ctx.onLogin();
      } catch (err) {
        msg.textContent = err.status === 401 ? "Wrong email or password." :
          err.status === 423 ? "This account is locked for a while after repeated failures. Try again later, or ask an administrator to unlock it." :
          errorText(err);
        submit.disabled = false;
        password.select();
      }
    },
  },
  h("label", { class: "field", for: "email" }, "Email", email),
  h("label", { class: "field", for: "password" }, "Password", password),
  msg, submit);
  replace(ctx.root, h("div", { class: "login card" },
    h("h1", {}, h("img", { src: "/assets/favicon.svg", alt: "", width: 22, height: 22, style: "vertical-align:-4px;margin-right:8px" }), "PulseStream"),
    form,
    h("p", { class: "hint" },
      "First start? The platform administrator is ", h("b", {}, "admin@localhost"),
      ". Its password was printed once by the server and written to ",
      h("code", {}, "<data-dir>/initial-admin-password"),
      " (or set with PULSESTREAM_ADMIN_PASSWORD).")));
  return null;
}
