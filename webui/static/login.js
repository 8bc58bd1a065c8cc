// login.js: posts the credentials as JSON and goes to the page that sent
// the browser here, but only when that is a local path.
"use strict";

(function () {
  // safeNext returns next when it is a path on this site: one leading "/",
  // no second "/" or "\" after it, no control characters. Anything else
  // (https://evil, //evil, /\evil, javascript:) falls back to /live.
  function safeNext(next) {
    if (typeof next !== "string" || next.length === 0 || next.length > 2048) return "/live";
    if (next[0] !== "/" || next[1] === "/" || next[1] === "\\") return "/live";
    if (/[\u0000-\u001f\u007f\\]/.test(next)) return "/live";
    let u;
    try { u = new URL(next, location.origin); } catch (e) { return "/live"; }
    if (u.origin !== location.origin) return "/live";
    if (u.pathname === "/login") return "/live";
    return u.pathname + u.search + u.hash;
  }

  const ERRORS = {
    invalid: "Wrong user name or password.",
    missing: "Enter your user name and password.",
    throttled: "Too many failed logins: wait a moment and try again.",
  };

  document.addEventListener("DOMContentLoaded", () => {
    const params = new URLSearchParams(location.search);
    const next = safeNext(params.get("next") || "");
    const form = document.getElementById("login-form");
    const button = document.getElementById("login-submit");
    document.getElementById("next").value = next;
    const code = params.get("error");
    if (code) HBD.notice(ERRORS[code] || "Login failed.", "error");

    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      button.disabled = true;
      HBD.notice("");
      const r = await HBD.api("POST", "/api/0/auth/login", {
        username: document.getElementById("username").value,
        password: document.getElementById("password").value,
      });
      button.disabled = false;
      if (r.ok) {
        location.assign(next);
        return;
      }
      if (r.status === 401) HBD.notice(ERRORS.invalid, "error");
      else if (r.status === 429) HBD.notice(r.error || ERRORS.throttled, "error");
      else if (r.status === 404) HBD.notice("This server has no user accounts (open mode): nothing to log in to.", "info");
      else HBD.notice(r.error || "Login failed.", "error");
      document.getElementById("password").select();
    });
  });
})();
