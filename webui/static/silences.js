// silences.js: the Silences view of the alerts page: create a silence
// (host and metric globs, starting now or at a time, ending after a
// duration or at a time, with a comment), list the active and scheduled
// ones and delete them, and show the configured maintenance windows
// (read-only). Permission-aware: the
// form says which visible hosts the host glob matches and which of them
// the caller may not silence (the server decides: a manager of every
// matching host); a delete button shows only where the caller may delete.
"use strict";

(function () {
  const el = HBD.el;
  const $ = (id) => document.getElementById(id);
  let me = null;
  let hosts = []; // GET /api/0/hosts: name, owner, managers
  let loaded = false;

  // globRE matches like core/glob: * any run without ".", ** any run,
  // ? one character.
  function globRE(g) {
    let re = "";
    for (let i = 0; i < g.length; i++) {
      const c = g[i];
      if (c === "*" && g[i + 1] === "*") { re += ".*"; i++; }
      else if (c === "*") re += "[^.]*";
      else if (c === "?") re += ".";
      else re += c.replace(/[.+^${}()|[\]\\]/g, "\\$&");
    }
    return new RegExp("^" + re + "$");
  }

  function manages(h) {
    if (!me || me.open || me.admin) return true;
    return h.owner === me.name || (Array.isArray(h.managers) && h.managers.includes(me.name));
  }

  function showMatch() {
    const g = $("sil-host").value.trim();
    const out = $("sil-host-match");
    if (!g) { out.textContent = ""; return; }
    let re;
    try { re = globRE(g); } catch (e) { out.textContent = "Not a valid glob."; return; }
    const matched = hosts.filter((h) => re.test(h.name));
    const denied = matched.filter((h) => !manages(h)).map((h) => h.name);
    const names = matched.map((h) => h.name);
    out.textContent = matched.length === 0
      ? "Matches none of the hosts you can see."
      : "Matches " + names.slice(0, 10).join(", ") + (names.length > 10 ? " and " + (names.length - 10) + " more" : "") + "." +
        (denied.length ? " You do not manage " + denied.slice(0, 5).join(", ") + ": only their owners, managers or an admin can silence them." : "");
    $("sil-submit").disabled = denied.length > 0;
  }

  function canDelete(s) {
    if (!me || me.open || me.admin) return true;
    if (s.created_by === me.name) return true;
    const re = globRE(s.host);
    const matched = hosts.filter((h) => re.test(h.name));
    return matched.length > 0 && matched.every(manages);
  }

  async function loadSilences() {
    const r = await HBD.api("GET", "/api/0/silences");
    const body = HBD.clear($("silences-body"));
    if (!r.ok || !Array.isArray(r.data)) {
      $("silences-empty").hidden = false;
      $("silences-empty").textContent = "Silences are unavailable: " + (r.error || "unexpected answer");
      return;
    }
    $("silences-empty").hidden = r.data.length > 0;
    $("silences-empty").textContent = "No active silences.";
    for (const s of r.data) {
      if (!s || typeof s.id !== "string") continue;
      const del = canDelete(s) ? el("button", { type: "button", class: "small danger", text: "Delete", "aria-label": "Delete the silence of " + s.host + " " + s.metric }) : null;
      if (del) {
        del.addEventListener("click", async () => {
          del.disabled = true;
          const d = await HBD.api("DELETE", "/api/0/silences/" + encodeURIComponent(s.id));
          if (!d.ok) HBD.notice("Could not delete the silence: " + d.error, "error");
          else HBD.notice("Deleted the silence of " + s.host + ".", "ok");
          loadSilences();
        });
      }
      const scheduled = typeof s.starts_at === "number" && s.starts_at > HBD.now();
      const tr = el("tr", {},
        el("td", {}, el("code", { text: s.host })),
        el("td", {}, el("code", { text: s.metric })),
        el("td", { class: "num", title: new Date((s.starts_at || s.created) * 1000).toLocaleString(), text: scheduled ? "in " + HBD.fmtDuration(s.starts_at - HBD.now()) : "active" }),
        el("td", { class: "num", title: new Date(s.until * 1000).toLocaleString(), text: "in " + HBD.fmtDuration(s.until - HBD.now()) }),
        el("td", { text: s.created_by || "open mode" }),
        el("td", { class: "wrap", text: s.comment || "" }),
        el("td", {}, del),
      );
      tr.dataset.id = s.id;
      tr.dataset.scheduled = scheduled ? "yes" : "no";
      tr.dataset.host = s.host;
      body.append(tr);
    }
  }

  const DAYS = ["sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday"];

  function days(list) {
    if (!Array.isArray(list) || list.length === 0) return "every day";
    return list.map((d) => {
      const full = DAYS.find((n) => n.startsWith(String(d).toLowerCase().slice(0, 3)));
      return full ? "every " + full[0].toUpperCase() + full.slice(1) : String(d);
    }).join(", ");
  }

  async function loadWindows() {
    const r = await HBD.api("GET", "/api/0/maintenance");
    const body = HBD.clear($("windows-body"));
    if (!r.ok || !Array.isArray(r.data)) {
      $("windows-empty").hidden = false;
      $("windows-empty").textContent = "Maintenance windows are unavailable: " + (r.error || "unexpected answer");
      return;
    }
    $("windows-empty").hidden = r.data.length > 0;
    for (const w of r.data) {
      if (!w || typeof w.host !== "string") continue;
      const when = days(w.days) + ", " + w.start + "–" + w.end + " " + w.time_zone;
      const now = w.active
        ? "in maintenance, ends in " + HBD.fmtDuration(w.next_end - HBD.now())
        : "next in " + HBD.fmtDuration(w.next_start - HBD.now());
      const tr = el("tr", {},
        el("td", { text: w.name || "—" }),
        el("td", {}, el("code", { text: w.host })),
        el("td", {}, el("code", { text: w.metric })),
        el("td", { text: when }),
        el("td", { title: new Date((w.active ? w.next_end : w.next_start) * 1000).toLocaleString(), text: now }),
        el("td", { class: "wrap", text: w.comment || "" }),
      );
      tr.dataset.active = w.active ? "yes" : "no";
      body.append(tr);
    }
  }

  async function create(ev) {
    ev.preventDefault();
    let duration;
    let starts = HBD.now();
    const body = { host: $("sil-host").value.trim(), metric: $("sil-metric").value.trim() || "**", comment: $("sil-comment").value.trim() };
    if ($("sil-start-kind").value === "at") {
      starts = Math.round(new Date($("sil-start").value).getTime() / 1000);
      if (!isFinite(starts)) { HBD.notice("Choose when the silence starts.", "error"); return; }
      if (starts > HBD.now()) body.starts_at = starts;
      else starts = HBD.now();
    }
    if ($("sil-end-kind").value === "at") {
      const t = new Date($("sil-until").value).getTime() / 1000;
      if (!isFinite(t)) { HBD.notice("Choose when the silence ends.", "error"); return; }
      duration = Math.round(t - starts);
      if (duration <= 0) { HBD.notice("The end of the silence is not after its start.", "error"); return; }
    } else {
      duration = Number($("sil-duration").value);
    }
    body.duration = duration;
    const r = await HBD.api("POST", "/api/0/silences", body);
    if (!r.ok) {
      HBD.notice("Could not create the silence: " + r.error, "error");
      return;
    }
    HBD.notice(body.starts_at
      ? "Scheduled a silence of " + body.host + " " + body.metric + " in " + HBD.fmtDuration(body.starts_at - HBD.now()) + ", for " + HBD.fmtDuration(duration) + "."
      : "Silenced " + body.host + " " + body.metric + " for " + HBD.fmtDuration(duration) + ".", "ok");
    $("sil-comment").value = "";
    loadSilences();
  }

  async function init() {
    if (loaded) { loadSilences(); loadWindows(); return; }
    loaded = true;
    me = await HBD.me();
    const r = await HBD.api("GET", "/api/0/hosts");
    hosts = r.ok && Array.isArray(r.data) ? r.data.filter((h) => h && typeof h.name === "string") : [];
    const params = new URLSearchParams(location.search);
    if (params.get("silence_host")) $("sil-host").value = params.get("silence_host");
    if (params.get("silence_metric")) $("sil-metric").value = params.get("silence_metric");
    showMatch();
    loadSilences();
    loadWindows();
  }

  function localInput(d) {
    d.setMinutes(d.getMinutes() - d.getTimezoneOffset());
    return d.toISOString().slice(0, 16);
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("silence-form").addEventListener("submit", create);
    $("sil-host").addEventListener("input", showMatch);
    $("sil-end-kind").addEventListener("change", () => {
      const at = $("sil-end-kind").value === "at";
      $("sil-duration-label").hidden = at;
      $("sil-until-label").hidden = !at;
      if (at && !$("sil-until").value) $("sil-until").value = localInput(new Date(Date.now() + 2 * 3600 * 1000));
    });
    $("sil-start-kind").addEventListener("change", () => {
      const at = $("sil-start-kind").value === "at";
      $("sil-start-label").hidden = !at;
      if (at && !$("sil-start").value) $("sil-start").value = localInput(new Date(Date.now() + 3600 * 1000));
    });
  });
  // Registered now, before alerts.js shows the view named in the address.
  document.addEventListener("hbd:view", (e) => { if (e.detail === "silences") init(); });
})();
