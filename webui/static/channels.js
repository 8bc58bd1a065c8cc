// channels.js: list, create, edit, delete and test notification channels.
// The settings part of the form is built from the type's field schema
// (GET /api/0/notification_channel_types). Secret fields come back masked
// as "•••"; sending the mask unchanged keeps the stored secret.
"use strict";

(function () {
  const el = HBD.el;
  const MASK = "•••";
  let types = {}; // type -> {label, fields: [{key, label, type, required, default, help}]}
  let channels = [];
  let editing = null; // name of the channel being edited, null when creating
  let editingHosts = false; // whether the edited channel came with a hosts list
  let me = null;

  const $ = (id) => document.getElementById(id);
  const base = "/api/0/notification_channels";

  function canChange(ch) {
    if (!me || me.open || me.admin) return true;
    return ch.owner === me.name;
  }

  // coverage says which hosts a channel receives alerts of now: its hosts
  // globs (none: all hosts its owner may see) and the hosts they cover, as
  // the server counts them (covered_count) and names those the viewer may
  // see (covered_hosts). An older server sends neither count nor names.
  function coverage(ch) {
    const globs = Array.isArray(ch.hosts) && ch.hosts.length ? ch.hosts.join(", ") : "all hosts" + (ch.owner ? " " + ch.owner + " can see" : "");
    const box = el("div", {}, el("div", { class: "globs", text: globs }));
    if (typeof ch.covered_count !== "number") return box;
    const n = ch.covered_count;
    const names = Array.isArray(ch.covered_hosts) ? ch.covered_hosts.filter((h) => typeof h === "string") : [];
    let text;
    if (n === 0) text = "covers no host yet";
    else {
      text = "covers " + n + (n === 1 ? " host" : " hosts");
      if (names.length) text += ": " + names.join(", ");
      if (n > names.length) text += (names.length ? " (+" + (n - names.length) + " more)" : "");
    }
    const line = el("div", { class: "coverage" + (n === 0 ? " muted" : ""), text: text });
    line.dataset.count = String(n);
    box.append(line);
    return box;
  }

  // problemNote says why a stored channel no longer passes its type's
  // checks (its plugin was replaced by a stricter one), or nothing.
  function problemNote(ch) {
    const p = ch.problem;
    if (!p || typeof p.message !== "string") return null;
    const n = el("div", { class: "problem", role: "status", text: "⚠ Needs attention: " + p.message });
    n.dataset.field = typeof p.field === "string" ? p.field : "";
    return n;
  }

  // loadPluginProblems lists, for admins (and in open mode), the notifier
  // plugins that fail to start or are refused (GET /api/0/notifier_plugins
  // is admins-only; others see nothing and it is not asked).
  async function loadPluginProblems() {
    const box = $("plugin-problems");
    if (!box || !me || !(me.open || me.admin)) return;
    const r = await HBD.api("GET", "/api/0/notifier_plugins");
    const bad = r.ok && Array.isArray(r.data) ? r.data.filter((p) => p && (p.state === "failing" || p.state === "refused")) : [];
    const list = HBD.clear($("plugin-problems-list"));
    for (const p of bad) {
      const what = p.state === "failing" ? "does not start (" + p.failures + " attempts)" : "is refused";
      const li = el("li", { text: String(p.binary) + " " + what + ": " + String(p.error || "") });
      li.dataset.binary = String(p.binary);
      list.append(li);
    }
    box.hidden = bad.length === 0;
  }

  function renderList() {
    const body = HBD.clear($("channels-body"));
    for (const ch of channels) {
      const fields = Array.isArray(ch.fields) ? ch.fields : [];
      const summary = fields.map((f) => f.label + ": " + (f.value === "" || f.value === undefined || f.value === null ? "–" : String(f.value))).join(" · ");
      const actions = el("div", { class: "row-actions" });
      const test = el("button", { type: "button", class: "small", text: "Send test" });
      test.addEventListener("click", () => sendTest(ch.name, test));
      actions.append(test);
      if (canChange(ch)) {
        actions.append(
          el("button", { type: "button", class: "small", text: "Edit", onclick: () => openEditor(ch) }),
          el("button", { type: "button", class: "small danger", text: "Delete", onclick: () => remove(ch.name) }),
        );
      }
      const tr = el("tr", {},
        el("td", { class: "host" }, ch.name),
        el("td", { text: ch.type_label || (types[ch.type] && types[ch.type].label) || ch.type }),
        el("td", {}, HBD.badge(ch.min_level || "WARNING", "soft")),
        el("td", { text: (ch.private ? "private" : "shared") + (ch.owner ? " · owner " + ch.owner : "") }),
        el("td", { class: "wrap hosts" }, coverage(ch)),
        el("td", { class: "wrap fieldlist" }, summary, problemNote(ch)),
        el("td", {}, actions),
      );
      tr.dataset.channel = ch.name;
      body.append(tr);
    }
    $("channels-empty").hidden = channels.length > 0;
  }

  async function load() {
    const [t, c] = await Promise.all([HBD.api("GET", "/api/0/notification_channel_types"), HBD.api("GET", base)]);
    if (t.ok && t.data && typeof t.data === "object") types = t.data;
    if (!c.ok || !Array.isArray(c.data)) {
      HBD.notice("Notification channels are unavailable: " + (c.error || "unexpected answer"), "error");
      channels = [];
    } else {
      channels = c.data.filter((x) => x && typeof x.name === "string");
      if (!t.ok) HBD.notice("Channel types are unavailable (" + t.error + "): channels cannot be created or edited.", "error");
    }
    $("new-channel").disabled = Object.keys(types).length === 0;
    renderList();
  }

  function fieldInput(f, value) {
    const id = "f-" + f.key;
    let input;
    if (f.type === "bool") {
      input = el("input", { id: id, type: "checkbox" });
      input.checked = value === true || String(value).toLowerCase() === "true";
      const row = el("label", { class: "check" }, input, f.label + (f.required ? " *" : ""));
      return el("div", {}, row, f.help ? el("div", { class: "help", text: f.help }) : null);
    }
    const wrap = (control) => el("label", {}, f.label + (f.required ? " *" : ""), control, f.help ? el("span", { class: "help", text: f.help }) : null);
    const cur = value === undefined || value === null ? "" : String(value);
    if (f.type === "choice") {
      // One of the listed options; "" (the type's default) when the field
      // may be left empty.
      input = el("select", { id: id });
      if (!f.required || f.default) {
        input.append(el("option", { value: "", text: f.default ? "default (" + f.default + ")" : "—" }));
      }
      const opts = Array.isArray(f.options) ? f.options : [];
      for (const o of opts) input.append(el("option", { value: String(o.value), text: String(o.label || o.value) }));
      if (cur !== "" && !opts.some((o) => String(o.value) === cur)) {
        // A stored value the plugin no longer lists: kept visible, flagged.
        input.append(el("option", { value: cur, text: cur + " (no longer offered)" }));
      }
      input.value = cur;
      if (f.required && !f.default) input.required = true;
      return wrap(input);
    }
    if (f.type === "multiline") {
      input = el("textarea", { id: id, rows: "4", spellcheck: "false", placeholder: f.default ? "default: " + f.default : null });
      input.value = cur;
      if (f.required && !f.default) input.required = true;
      return wrap(input);
    }
    input = el("input", {
      id: id,
      type: f.type === "secret" ? "password" : f.type === "number" ? "number" : "text",
      step: f.type === "number" ? "any" : null,
      autocomplete: f.type === "secret" ? "new-password" : "off",
      placeholder: f.default ? "default: " + f.default : null,
    });
    input.value = value === undefined || value === null ? "" : String(value);
    if (f.type === "secret" && input.value === MASK) {
      input.title = "Stored secret: leave it as it is to keep it, or type a new one";
    }
    // A new channel's required fields must be filled; an edited channel's
    // masked secrets may stay as they are.
    if (f.required && !f.default) input.required = true;
    return el("label", {}, f.label + (f.required ? " *" : ""), input, f.help ? el("span", { class: "help", text: f.help }) : null);
  }

  function buildFields(type, existing) {
    const box = HBD.clear($("type-fields"));
    box.append(el("legend", { text: (types[type] ? types[type].label : type) + " settings" }));
    const schema = types[type];
    if (!schema || !Array.isArray(schema.fields)) return;
    const current = {};
    for (const f of (existing && existing.fields) || []) current[f.key] = f.value;
    for (const f of schema.fields) {
      // A field the channel does not set yet starts at the type's default.
      const v = existing && f.key in current ? current[f.key] : (f.type === "bool" ? f.default : "");
      box.append(fieldInput(f, v));
    }
  }

  function openEditor(ch) {
    editing = ch ? ch.name : null;
    editingHosts = !!(ch && Array.isArray(ch.hosts));
    $("editor").hidden = false;
    $("editor-title").textContent = ch ? "Edit " + ch.name : "New channel";
    const typeSel = HBD.clear($("ch-type"));
    for (const [k, t] of Object.entries(types)) typeSel.append(el("option", { value: k, text: t.label || k }));
    $("ch-name").value = ch ? ch.name : "";
    $("ch-name").readOnly = !!ch;
    typeSel.value = ch ? ch.type : Object.keys(types)[0];
    typeSel.disabled = !!ch;
    $("ch-min-level").value = ch && ch.min_level ? ch.min_level : "WARNING";
    $("ch-private").checked = !!(ch && ch.private);
    $("ch-hosts").value = ch && Array.isArray(ch.hosts) ? ch.hosts.join(", ") : "";
    buildFields(typeSel.value, ch);
    $("editor").scrollIntoView({ behavior: "smooth", block: "start" });
  }

  function formBody() {
    const type = $("ch-type").value;
    const body = {
      name: $("ch-name").value.trim(),
      type: type,
      min_level: $("ch-min-level").value,
      private: $("ch-private").checked,
    };
    const hosts = $("ch-hosts").value.split(",").map((s) => s.trim()).filter(Boolean);
    // Only send hosts when there is something to say: a list the server
    // did not show us must not be wiped.
    if (hosts.length || editingHosts) body.hosts = hosts;
    for (const f of (types[type] && types[type].fields) || []) {
      const input = document.getElementById("f-" + f.key);
      if (!input) continue;
      // Channel settings travel as strings, as the notifier receives them.
      body[f.key] = f.type === "bool" ? String(input.checked) : input.value;
    }
    return body;
  }

  async function save(ev) {
    ev.preventDefault();
    const body = formBody();
    const r = editing
      ? await HBD.api("PUT", base + "/" + encodeURIComponent(editing), body)
      : await HBD.api("POST", base, body);
    if (!r.ok) {
      HBD.notice("Could not save " + (body.name || "the channel") + ": " + r.error, "error");
      // The API names the field at fault: take the user there.
      const bad = r.data && typeof r.data.field === "string" ? document.getElementById(r.data.field === "name" ? "ch-name" : "f-" + r.data.field) : null;
      if (bad) bad.focus();
      return;
    }
    HBD.notice("Saved " + body.name + ".", "ok");
    $("editor").hidden = true;
    editing = null;
    load();
  }

  async function remove(name) {
    if (!confirm("Delete the channel " + name + "?")) return;
    const r = await HBD.api("DELETE", base + "/" + encodeURIComponent(name));
    if (!r.ok) {
      HBD.notice("Could not delete " + name + ": " + r.error, "error");
      return;
    }
    HBD.notice("Deleted " + name + ".", "ok");
    load();
  }

  async function sendTest(name, button) {
    button.disabled = true;
    HBD.notice("Sending a test notification through " + name + "…", "info");
    const r = await HBD.api("POST", base + "/" + encodeURIComponent(name) + "/test");
    button.disabled = false;
    if (r.ok) HBD.notice("Test notification sent through " + name + ".", "ok");
    else HBD.notice("Test through " + name + " failed: " + r.error, "error");
  }

  document.addEventListener("DOMContentLoaded", async () => {
    $("new-channel").addEventListener("click", () => openEditor(null));
    $("ch-cancel").addEventListener("click", () => { $("editor").hidden = true; editing = null; });
    $("ch-type").addEventListener("change", () => buildFields($("ch-type").value, null));
    $("channel-form").addEventListener("submit", save);
    me = await HBD.me();
    load();
    loadPluginProblems();
  });
})();
