// profile.js: the caller's display name and e-mail, channel subscriptions
// and password (PUT /api/0/users/me, one mode per form).
"use strict";

(function () {
  const el = HBD.el;
  const $ = (id) => document.getElementById(id);
  let me = null;

  function disableAll(reason) {
    HBD.notice(reason, "info");
    document.querySelectorAll("main form input, main form button").forEach((n) => { n.disabled = true; });
  }

  async function update(body, what) {
    const r = await HBD.api("PUT", "/api/0/users/me", body);
    if (!r.ok) {
      HBD.notice("Could not save " + what + ": " + r.error, "error");
      return false;
    }
    if (r.data && typeof r.data === "object") me = Object.assign(me || {}, r.data);
    HBD.notice("Saved " + what + ".", "ok");
    return true;
  }

  async function loadSubscriptions() {
    const list = HBD.clear($("subs-list"));
    const r = await HBD.api("GET", "/api/0/notification_channels");
    if (!r.ok || !Array.isArray(r.data)) {
      list.append(el("p", { class: "muted", text: "Channels are unavailable: " + (r.error || "unexpected answer") }));
      return;
    }
    const mine = new Set(Array.isArray(me.channels) ? me.channels : []);
    if (r.data.length === 0) list.append(el("p", { class: "muted", text: "There are no channels to subscribe to yet." }));
    for (const ch of r.data) {
      if (!ch || typeof ch.name !== "string") continue;
      const box = el("input", { type: "checkbox", value: ch.name });
      box.checked = mine.has(ch.name);
      list.append(el("label", { class: "check" }, box, ch.name, el("span", { class: "sub", text: (ch.type_label || ch.type || "") + " · from " + (ch.min_level || "WARNING") })));
    }
  }

  document.addEventListener("DOMContentLoaded", async () => {
    const r = await HBD.meResult();
    if (!r.ok || !r.data) {
      disableAll("Profiles are unavailable: " + (r.error || "unexpected answer"));
      return;
    }
    me = r.data;
    if (me.open) {
      // Open mode: say how to turn users on instead of showing forms
      // nobody can use.
      $("profile-forms").hidden = true;
      $("open-mode").hidden = false;
      return;
    }
    $("pf-name").value = me.name || "";
    $("pw-user").value = me.name || "";
    $("pf-display").value = me.display_name || "";
    $("pf-email").value = me.email || "";
    loadSubscriptions();

    $("identity-form").addEventListener("submit", (ev) => {
      ev.preventDefault();
      update({ display_name: $("pf-display").value.trim(), email: $("pf-email").value.trim() }, "your name and e-mail");
    });
    $("subs-form").addEventListener("submit", (ev) => {
      ev.preventDefault();
      const chosen = [...document.querySelectorAll("#subs-list input:checked")].map((n) => n.value);
      update({ channels: chosen }, "your subscriptions");
    });
    $("password-form").addEventListener("submit", async (ev) => {
      ev.preventDefault();
      if ($("pw-new").value !== $("pw-repeat").value) {
        HBD.notice("The new passwords differ.", "error");
        return;
      }
      if (await update({ current_password: $("pw-current").value, new_password: $("pw-new").value }, "your new password")) {
        ["pw-current", "pw-new", "pw-repeat"].forEach((id) => { $(id).value = ""; });
      }
    });
  });
})();
