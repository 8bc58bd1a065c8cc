// config.js: the admin config editor (GET/PUT /api/0/config, POST
// /api/0/config/check). The text is edited in a plain textarea; secrets
// arrive as "•••" and stay so unless the administrator types a value.
"use strict";

(function () {
  const el = HBD.el;
  const $ = (id) => document.getElementById(id);
  let version = "";
  let loaded = "";
  let badLine = 0;

  const text = () => $("cfg-text").value;
  const dirty = () => text() !== loaded;

  // gutter writes the line numbers beside the text, the bad line marked.
  function gutter() {
    const n = text().split("\n").length;
    const g = HBD.clear($("cfg-gutter"));
    for (let i = 1; i <= n; i++) {
      g.append(el("span", { class: i === badLine ? "bad" : null, text: String(i) }), "\n");
    }
    g.scrollTop = $("cfg-text").scrollTop;
  }

  function status() {
    $("cfg-status").textContent = dirty() ? "Changed: not saved yet." : "The file in force (version " + version.slice(0, 8) + ").";
  }

  // goToLine selects line n of the text and scrolls it into view.
  function goToLine(n) {
    const ta = $("cfg-text");
    const lines = text().split("\n");
    if (n < 1 || n > lines.length) return;
    let start = 0;
    for (let i = 0; i < n - 1; i++) start += lines[i].length + 1;
    ta.focus();
    ta.setSelectionRange(start, start + lines[n - 1].length);
    const lh = parseFloat(getComputedStyle(ta).lineHeight) || 18;
    ta.scrollTop = Math.max(0, (n - 4) * lh);
    gutter();
  }

  function showDiff(diff) {
    const pre = HBD.clear($("cfg-diff"));
    pre.hidden = !diff;
    $("cfg-nodiff").hidden = !!diff;
    for (const line of String(diff || "").replace(/\n$/, "").split("\n")) {
      if (!diff) break;
      const cls = line.startsWith("@@") ? "hunk" : line.startsWith("+++") || line.startsWith("---") ? "head" : line.startsWith("+") ? "add" : line.startsWith("-") ? "del" : null;
      pre.append(el("span", { class: cls, text: line }), "\n");
    }
  }

  // showProblems lists the problems; the first one's line is marked and
  // selected in the text.
  function showProblems(problems) {
    const ul = HBD.clear($("cfg-errors"));
    badLine = 0;
    for (const p of problems) {
      const where = (p.line ? "Line " + p.line : "") + (p.key ? (p.line ? ", " : "") + p.key : "");
      const li = el("li", { class: "cfg-error" });
      if (p.line) {
        li.append(el("button", { type: "button", class: "small", onclick: () => goToLine(p.line), text: "Go to line " + p.line }), " ");
      }
      li.append(el("strong", { text: where ? where + ": " : "" }), p.message || p.error || "");
      ul.append(li);
      if (!badLine && p.line) badLine = p.line;
    }
    gutter();
    if (badLine) goToLine(badLine);
  }

  async function load() {
    const r = await HBD.api("GET", "/api/0/config");
    if (!r.ok || !r.data || typeof r.data.text !== "string") {
      HBD.notice("The config file cannot be shown: " + (r.error || "unexpected answer"), "error");
      return;
    }
    $("editor").hidden = false;
    $("cfg-path").textContent = r.data.path || "";
    $("cfg-text").value = loaded = r.data.text;
    version = r.data.version || "";
    badLine = 0;
    $("cfg-result").hidden = true;
    gutter();
    status();
  }

  async function check() {
    const r = await HBD.api("POST", "/api/0/config/check", { text: text(), version: version });
    if (!r.ok || !r.data) {
      HBD.notice("Could not check the config: " + r.error, "error");
      return;
    }
    $("cfg-result").hidden = false;
    $("result-h").textContent = r.data.valid ? "Check: hbd would accept this config" : "Check: hbd would refuse this config";
    showDiff(r.data.diff);
    showProblems(r.data.errors || []);
    if (r.data.stale) {
      HBD.notice("The file changed on the server since you loaded it: saving would be refused. Discard your changes to load it again.", "error");
    } else if (r.data.valid) {
      HBD.notice("The config is valid" + ((r.data.changed_secrets || []).length ? "; secrets that change: " + r.data.changed_secrets.join(", ") : "") + ".", "ok");
    } else {
      HBD.notice("The config has a problem: see below.", "error");
    }
  }

  async function save() {
    const r = await HBD.api("PUT", "/api/0/config", { text: text(), version: version });
    if (!r.ok) {
      $("cfg-result").hidden = false;
      $("result-h").textContent = "Not saved";
      if (r.status === 422 && r.data) {
        showProblems([{ line: r.data.line, key: r.data.key, message: r.data.error }]);
      } else {
        showProblems([]);
      }
      HBD.notice(r.error + (r.status === 409 ? " (Discard changes loads the file in force.)" : ""), "error");
      return;
    }
    const d = r.data || {};
    $("cfg-text").value = loaded = d.text || "";
    version = d.version || "";
    badLine = 0;
    gutter();
    status();
    $("cfg-result").hidden = false;
    $("result-h").textContent = d.saved ? "Saved" : "Nothing to save";
    showDiff(d.diff || "");
    HBD.clear($("cfg-errors"));
    HBD.notice(d.saved ? "Saved " + d.path + " and reloaded hbd" + (d.reloaded ? "" : " (the reload did not happen)") + ". The previous file is " + d.path + ".bak." : "No change: the text is the file in force.", "ok");
  }

  document.addEventListener("DOMContentLoaded", async () => {
    const me = await HBD.me();
    if (me && me.open) {
      $("open-mode").hidden = false;
      return;
    }
    const ta = $("cfg-text");
    ta.addEventListener("input", () => { gutter(); status(); });
    ta.addEventListener("scroll", () => { $("cfg-gutter").scrollTop = ta.scrollTop; });
    $("cfg-check").addEventListener("click", check);
    $("cfg-save").addEventListener("click", save);
    $("cfg-discard").addEventListener("click", () => { HBD.notice(""); load(); });
    window.addEventListener("beforeunload", (ev) => { if (dirty()) { ev.preventDefault(); ev.returnValue = ""; } });
    load();
  });
})();
