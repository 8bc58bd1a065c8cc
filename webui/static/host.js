// host.js: the host page (/hosts/{name}): state per address family (kept
// current by the live feed), uptime figures and strip from the heartbeat
// state history, the host's alerts with their thresholds, its journal and
// who may see it; plugins.js draws the cards and the chart. A host that
// never reported shows the hbc.yaml that connects its agent.
"use strict";

(function () {
  const el = HBD.el;
  const $ = (id) => document.getElementById(id);
  const host = decodeURIComponent(location.pathname.split("/")[2] || "");
  const hostURL = (name) => "/api/0/hosts/" + encodeURIComponent(name);
  let model = null; // the host from GET /api/0/hosts, merged with frames
  let thresholds = {};
  let plugins = null;
  let units = {}; // "plugin.path" -> declared unit (GET /plugins "units")
  let alerts = [];
  let me = null;
  const LEVELS = ["OK", "UNKNOWN", "WARNING", "CRITICAL"];

  function ago(ts) {
    const s = el("span", { text: HBD.fmtAgo(ts) });
    if (ts) s.title = new Date(ts * 1000).toLocaleString();
    return s;
  }

  function renderState() {
    if (!model) return;
    const state = $("host-state");
    HBD.clear(state).append(HBD.badge(model.state));
    document.querySelector("main").dataset.state = model.state;
    const seen = HBD.clear($("host-seen"));
    let last = model.last_seen || 0;
    for (const c of model.connections || []) if (typeof c.last_seen === "number") last = Math.max(last, c.last_seen);
    seen.append("last seen ", ago(last), model.reason && model.state !== "UP" ? " · " + model.reason : "");
    const body = HBD.clear($("families-body"));
    const conns = Array.isArray(model.connections) ? model.connections : [];
    if (conns.length === 0) body.append(el("tr", {}, el("td", { colspan: "5", class: "muted", text: "No heartbeats yet." })));
    for (const c of conns) {
      // Latency and loss are blank while DOWN: the last figures are
      // from before the silence and would read as current.
      const down = c.state === "DOWN";
      const lat = typeof c.latency_ms === "number" && c.latency_ms > 0 ? c.latency_ms : c.latency_avg_ms;
      const tr = el("tr", {},
        el("th", { scope: "row", text: c.family }),
        el("td", {}, HBD.badge(c.state, "soft")),
        el("td", { class: "num", text: down || typeof lat !== "number" ? "" : HBD.fmtNumber(lat, 1) + " ms" }),
        el("td", { class: "num", text: down || typeof c.loss_percent !== "number" ? "" : HBD.fmtNumber(c.loss_percent, 1) + " %" }),
        el("td", { class: "num" }, ago(c.last_seen)),
      );
      tr.dataset.family = c.family;
      tr.dataset.state = c.state;
      body.append(tr);
    }
    renderAgent();
    renderAccess();
    renderConnect();
  }

  // renderAgent shows the agent's newest health report (null from agents
  // that do not send one: the card stays hidden).
  function renderAgent() {
    const a = model.agent;
    $("agent").hidden = !a;
    if (!a) return;
    const dl = HBD.clear($("agent-figures"));
    const fig = (name, value, key, title) => {
      const dd = el("dd", {}, value);
      dd.dataset.field = key;
      if (title) dd.title = title;
      dl.append(el("dt", { text: name }), dd);
    };
    const waiting = a.spool_bytes > 0;
    fig("Spool", waiting ? HBD.fmtMetric("bytes", a.spool_bytes) + " · " + HBD.fmtNumber(a.spool_batches, 0) +
      (a.spool_batches === 1 ? " batch" : " batches") : "empty", "spool");
    fig("Oldest unsent", waiting ? HBD.fmtDuration(a.oldest_unsent_seconds) : "none", "oldest");
    fig("Last send", ago(a.last_send || 0), "last_send");
    fig("Plugin errors", HBD.fmtNumber(a.plugin_errors, 0), "plugin_errors");
    if (a.spool_dropped > 0) fig("Dropped (spool full)", HBD.fmtNumber(a.spool_dropped, 0), "dropped");
    fig("Reported", ago(a.received_at), "reported");
    const err = $("agent-error");
    err.hidden = !a.last_plugin_error;
    err.textContent = a.last_plugin_error ? "Last plugin error: " + a.last_plugin_error : "";
  }

  // The access form shows for the host's owner and admins (the server
  // decides: PUT /api/0/hosts/{name}/access is owner or admin).
  let accessEditing = false;
  function renderAccessForm() {
    const mayEdit = me && !me.open && (me.admin || (model.owner && model.owner === me.name));
    $("access-form").hidden = !mayEdit;
    if (!mayEdit || accessEditing) return;
    $("acc-managers").value = (model.managers || []).join(", ");
    $("acc-monitors").value = (model.monitors || []).join(", ");
  }

  async function saveAccess(ev) {
    ev.preventDefault();
    const list = (id) => $(id).value.split(",").map((x) => x.trim()).filter((x) => x);
    const r = await HBD.api("PUT", hostURL(host) + "/access", { managers: list("acc-managers"), monitors: list("acc-monitors") });
    accessEditing = false;
    if (!r.ok) {
      HBD.notice("Could not change the access: " + r.error, "error");
      return;
    }
    HBD.notice("Access of " + host + " changed until the next reload.", "ok");
    if (r.data) Object.assign(model, { managers: r.data.managers || [], monitors: r.data.monitors || [], owner: r.data.owner || null });
    renderAccess();
  }

  function renderAccess() {
    renderAccessForm();
    const dl = HBD.clear($("access"));
    const list = (v) => (Array.isArray(v) && v.length ? v.join(", ") : "none");
    dl.append(el("dt", { text: "Owner" }), el("dd", { text: model.owner || "none" }),
      el("dt", { text: "Managers" }), el("dd", { text: list(model.managers) }),
      el("dt", { text: "Monitors" }), el("dd", { text: list(model.monitors) }));
  }

  // renderConnect shows how to connect the agent while the host has sent
  // nothing: the key only comes from agent_config, which answers owners
  // and admins.
  let connectLoaded = false;
  async function renderConnect() {
    const never = model && !model.last_seen && plugins !== null && Object.keys(plugins).length === 0;
    $("connect").hidden = !never;
    if (!never || connectLoaded) return;
    connectLoaded = true;
    const who = await HBD.me();
    // Only the owner and admins may read the key: others are not asked.
    const mayKey = !who || who.open || who.admin || (model.owner && model.owner === who.name);
    const r = mayKey ? await HBD.api("GET", hostURL(host) + "/agent_config") : { ok: false };
    if (r.ok && r.data && typeof r.data.hbc_yaml === "string") {
      $("connect-yaml").textContent = r.data.hbc_yaml;
      $("connect-note").textContent = "The key is this host's secret: keep the file readable by the agent only.";
      return;
    }
    const port = location.port ? ":" + location.port : "";
    $("connect-yaml").textContent = "host: " + JSON.stringify(host) + "\nkey: \"<the host's key: ask its owner or an admin>\"\n" +
      "server_ipv4: " + JSON.stringify(location.hostname + ":50003") + "\napi_url: " + JSON.stringify(location.protocol + "//" + location.hostname + port) + "\n";
    $("connect-note").textContent = "Only the host's owner or an admin sees its key here.";
  }

  async function loadHost() {
    const r = await HBD.api("GET", "/api/0/hosts");
    if (!r.ok || !Array.isArray(r.data)) {
      HBD.notice("Could not load the host: " + (r.error || "unexpected answer"), "error");
      return;
    }
    const h = r.data.find((x) => x && x.name === host);
    if (!h) {
      HBD.notice("Host '" + host + "' is not known, or you may not see it.", "error");
      return;
    }
    model = h;
    renderState();
  }

  function onFrame(type, data) {
    if (type !== "host" || data.name !== host || !model) return;
    if (typeof data.state === "string" && data.state) model.state = data.state;
    if (Array.isArray(data.connections)) model.connections = data.connections;
    if (typeof data.last_seen === "number") model.last_seen = Math.max(model.last_seen || 0, data.last_seen);
    if (typeof data.reason === "string") model.reason = data.reason;
    renderState();
  }

  async function loadUptime() {
    const r = await HBD.api("GET", hostURL(host) + "/uptime?span=86400&buckets=48");
    const dl = HBD.clear($("uptime-figures"));
    const strip = HBD.clear($("uptime-strip"));
    if (!r.ok || !r.data) {
      dl.append(el("dd", { class: "muted", text: "Uptime unavailable: " + (r.error || "unexpected answer") }));
      return;
    }
    for (const w of ["24h", "7d", "30d"]) {
      const v = r.data.uptime ? r.data.uptime[w] : null;
      const dd = el("dd", { text: typeof v === "number" ? HBD.fmtNumber(v, v >= 99.9 && v < 100 ? 3 : 2) + " %" : "no data" });
      if (typeof v !== "number") dd.title = "No heartbeat state history covers this window yet.";
      dd.dataset.window = w;
      dl.append(el("dt", { text: w }), dd);
    }
    const buckets = r.data.strip && Array.isArray(r.data.strip.buckets) ? r.data.strip.buckets : [];
    const step = r.data.strip ? r.data.strip.bucket_seconds : 0;
    for (const b of buckets) {
      const cell = el("span", { class: "cell " + (b.state || "NONE") });
      cell.title = HBD.fmtTime(b.start) + " – " + HBD.fmtTime(b.start + step) + ": " +
        (b.state ? b.state + (typeof b.up_percent === "number" ? ", up " + HBD.fmtNumber(b.up_percent, 1) + " %" : "") : "no data");
      strip.append(cell);
    }
  }

  function worstLevel() {
    let worst = "OK";
    for (const a of alerts) if (LEVELS.indexOf(a.level) > LEVELS.indexOf(worst)) worst = a.level;
    return worst;
  }

  function thresholdText(a) {
    const th = thresholds[a.metric_path];
    if (!th) return a.metric_path.startsWith("heartbeat.") ? "heartbeat" : "";
    const key = a.metric_path.split(".").pop();
    const cmp = th.below ? "≤ " : "≥ ";
    const parts = [];
    const unit = units[a.metric_path];
    if (typeof th.warning === "number") parts.push("warning " + cmp + HBD.fmtValue(unit, key, th.warning));
    if (typeof th.critical === "number") parts.push("critical " + cmp + HBD.fmtValue(unit, key, th.critical));
    return parts.join(", ") + (th.for > 1 ? " for " + th.for + " samples" : "");
  }

  function renderAlerts() {
    const body = HBD.clear($("host-alerts-body"));
    const active = alerts.filter((a) => a.level !== "OK");
    $("host-alerts-empty").hidden = active.length > 0;
    $("host-alerts").hidden = active.length === 0;
    const lvl = HBD.clear($("host-alert-level"));
    const worst = worstLevel();
    lvl.append(el("span", { class: "muted", text: "alerts " }), HBD.badge(worst));
    lvl.dataset.level = worst;
    for (const a of active) {
      const dot = a.metric_path.indexOf(".");
      const plugin = a.metric_path.slice(0, dot), metric = a.metric_path.slice(dot + 1);
      const key = metric.split(".").pop();
      const isHb = plugin === "heartbeat";
      const link = isHb ? el("span", { text: a.metric_path }) :
        el("a", { href: "?plugin=" + encodeURIComponent(plugin) + "&metric=" + encodeURIComponent(metric) + "#history", text: a.metric_path });
      const since = a.episode_start || a.since;
      const tr = el("tr", {},
        el("td", {}, link),
        el("td", {}, HBD.badge(a.level)),
        el("td", { class: "num", text: isHb ? (a.text || "") : HBD.fmtValue(units[a.metric_path], key, a.last_value) }),
        el("td", { text: thresholdText(a) }),
        el("td", { class: "num" }, since ? ago(since) : ""),
      );
      tr.dataset.metric = a.metric_path;
      body.append(tr);
    }
  }

  async function loadAlerts() {
    const r = await HBD.api("GET", hostURL(host) + "/alerts");
    if (r.ok && r.data && Array.isArray(r.data.alerts)) alerts = r.data.alerts;
    renderAlerts();
  }

  async function loadJournal() {
    const r = await HBD.api("GET", "/api/0/messages?host=" + encodeURIComponent(host) + "&limit=20");
    const ol = HBD.clear($("journal"));
    const msgs = r.ok && Array.isArray(r.data) ? r.data : [];
    $("journal-empty").hidden = msgs.length > 0;
    for (const m of msgs) {
      ol.append(el("li", {}, el("time", { text: HBD.fmtAgo(m.time), title: new Date(m.time * 1000).toLocaleString() }), " ", el("span", { text: m.msg })));
    }
  }

  document.addEventListener("hbd:plugins", (e) => {
    plugins = e.detail.plugins || {};
    thresholds = e.detail.thresholds || {};
    units = e.detail.units || {};
    const none = Object.keys(plugins).length === 0;
    $("picker").hidden = none;
    $("history").hidden = none;
    renderAlerts();
    if (model) renderConnect();
  });

  document.addEventListener("DOMContentLoaded", () => {
    document.querySelector("h1").textContent = host;
    document.title = host + " · hbd";
    HBD.me().then((m) => { me = m; if (model) renderAccess(); });
    $("access-form").addEventListener("submit", saveAccess);
    $("access-form").addEventListener("input", () => { accessEditing = true; });
    loadHost();
    HBD.feed(["host"], onFrame, (status) => { if (status === "polling") loadHost(); });
    HBD.every(60000, () => { loadUptime(); loadAlerts(); loadJournal(); });
    setInterval(() => { if (!document.hidden) loadHost(); }, 30000);
  });
})();
