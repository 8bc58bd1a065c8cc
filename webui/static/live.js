// live.js: the hosts table and recent messages, kept current by the live
// feed (host, alert and message frames) or, when it is unavailable, by
// polling. Each row shows the heartbeat state, the worst alert level of the
// host and a 24 h uptime strip (from GET /api/0/uptime); the table filters
// by state and by name (a glob: * and ?).
"use strict";

(function () {
  const el = HBD.el;
  const hosts = new Map(); // name -> row model
  let messages = [];
  const sort = { key: "name", dir: 1 };
  const MAX_MESSAGES = 50;
  const SEVERITY = { DOWN: 0, DEGRADED: 1, LATE: 2, UNKNOWN: 3, UP: 4 };
  let pollTimer = null;
  let flashed = new Set();
  const worst = new Map(); // host -> worst non-OK alert level
  const strips = new Map(); // host -> {uptime_24h, strip}
  const LEVEL_RANK = { OK: 0, UNKNOWN: 1, WARNING: 2, CRITICAL: 3 };
  const filter = { state: "", name: "" };

  // CLOCK_SHOWN_MS: a clock offset is shown from 1 s on, and as critical
  // from a minute on.
  const CLOCK_SHOWN_MS = 1000, CLOCK_CRITICAL_MS = 60000;

  // model turns a host from GET /api/0/hosts or a "host" frame into a row,
  // merging into what is known: a frame may carry only name and state.
  function model(d) {
    const prev = hosts.get(d.name) || { name: d.name, state: "UNKNOWN", conns: {}, lastSeen: 0, dyn: false, watched: true, clockMs: null, reason: "" };
    const m = Object.assign({}, prev, { conns: Object.assign({}, prev.conns) });
    if (typeof d.state === "string" && d.state) m.state = d.state;
    if (typeof d.dyn === "boolean") m.dyn = d.dyn;
    if (typeof d.watched === "boolean") m.watched = d.watched;
    if (typeof d.reason === "string") m.reason = d.reason;
    if (typeof d.clock_offset_ms === "number" && isFinite(d.clock_offset_ms)) m.clockMs = d.clock_offset_ms;
    else if (d.clock_offset_ms === null) m.clockMs = null;
    if (typeof d.last_seen === "number") m.lastSeen = Math.max(m.lastSeen, d.last_seen);
    if (Array.isArray(d.connections)) {
      m.conns = {};
      for (const c of d.connections) if (c && typeof c.family === "string") m.conns[c.family] = c;
    }
    for (const fam of ["ipv4", "ipv6"]) {
      if (d[fam] && typeof d[fam] === "object") m.conns[fam] = Object.assign({ family: fam }, d[fam]);
    }
    for (const c of Object.values(m.conns)) {
      if (typeof c.last_seen === "number") m.lastSeen = Math.max(m.lastSeen, c.last_seen);
    }
    return m;
  }

  function latencyOf(m) {
    let best = null;
    for (const c of Object.values(m.conns)) {
      const v = typeof c.latency_ms === "number" && c.latency_ms > 0 ? c.latency_ms : c.latency_avg_ms;
      if (c.state !== "DOWN" && typeof v === "number" && v > 0 && (best === null || v < best)) best = v;
    }
    return best;
  }

  // lossOf is the worst loss of the connections still heard from: a DOWN
  // connection's figures are from before it went silent, not current.
  function lossOf(m) {
    let worst = null;
    for (const c of Object.values(m.conns)) {
      if (c.state !== "DOWN" && typeof c.loss_percent === "number" && (worst === null || c.loss_percent > worst)) worst = c.loss_percent;
    }
    return worst;
  }

  // statusText says, for a host not heard from, why: waiting for its first
  // heartbeat, never heard from, the reason the daemon knows, or since when
  // it is silent.
  function statusText(m) {
    if (m.reason && m.state !== "UP") return m.reason;
    if (m.state === "UNKNOWN") return m.lastSeen ? "waiting for heartbeats" : "waiting for first heartbeat";
    if (m.state === "DOWN") return m.lastSeen ? "last seen " + HBD.fmtAgo(m.lastSeen) : "never heard from";
    return "";
  }

  // fmtClock words a clock offset in milliseconds: "+2.3 s", "-6m 12s".
  function fmtClock(ms) {
    const sign = ms < 0 ? "-" : "+", a = Math.abs(ms);
    return sign + (a < 60000 ? HBD.fmtNumber(a / 1000, 1) + " s" : HBD.fmtDuration(Math.round(a / 1000)));
  }

  function clockBadge(m) {
    if (m.clockMs === null || Math.abs(m.clockMs) < CLOCK_SHOWN_MS) return null;
    const cls = Math.abs(m.clockMs) >= CLOCK_CRITICAL_MS ? "CRITICAL" : "WARNING";
    return el("span", { class: "badge soft clock " + cls, title: "This host's clock differs from hbd's by " + fmtClock(m.clockMs) + " (positive: ahead)", text: "clock " + fmtClock(m.clockMs) });
  }

  function sortValue(m, key) {
    switch (key) {
      case "state": return SEVERITY[m.state] !== undefined ? SEVERITY[m.state] : 3;
      case "ipv4":
      case "ipv6": return m.conns[key] ? (SEVERITY[m.conns[key].state] !== undefined ? SEVERITY[m.conns[key].state] : 3) : null;
      case "latency": return latencyOf(m);
      case "loss": return lossOf(m);
      case "seen": return m.lastSeen ? -m.lastSeen : null;
      case "alert": return worst.has(m.name) ? -LEVEL_RANK[worst.get(m.name)] : null;
      default: return m.name;
    }
  }

  function familyCell(c, cls) {
    if (!c) return el("td", { class: "muted " + cls, text: "–" });
    // A DOWN connection's latency is from before it went silent.
    const sub = c.state === "DOWN"
      ? (c.last_seen ? "last seen " + HBD.fmtAgo(c.last_seen) : "")
      : (typeof c.latency_ms === "number" && c.latency_ms > 0 ? HBD.fmtNumber(c.latency_ms, 1) + " ms" : "");
    return el("td", { class: cls, title: c.address ? "from " + c.address : null }, HBD.badge(c.state, "soft"), sub ? el("span", { class: "sub", text: sub }) : null);
  }

  // globRE turns the name filter into a regular expression: * and ?
  // are wildcards, anything else is literal; no wildcard means "contains".
  function globRE(g) {
    const esc = g.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*").replace(/\?/g, ".");
    return new RegExp(/[*?]/.test(g) ? "^" + esc + "$" : esc, "i");
  }

  function shown(m) {
    if (filter.name && !globRE(filter.name).test(m.name)) return false;
    const lvl = worst.get(m.name);
    switch (filter.state) {
      case "": return true;
      case "problem": return m.state === "DOWN" || m.state === "DEGRADED" || m.state === "LATE" || (lvl !== undefined && lvl !== "OK");
      case "ALERT": return lvl !== undefined && lvl !== "OK";
      case "DEGRADED": return m.state === "DEGRADED" || m.state === "LATE";
      default: return m.state === filter.state;
    }
  }

  function stripCell(name) {
    const u = strips.get(name);
    const td = el("td", { class: "col-strip" });
    if (!u) return td;
    const strip = el("span", { class: "strip mini", role: "img" });
    const n = u.strip.length;
    u.strip.forEach((st, i) => {
      const hoursAgo = 24 - i * 24 / n;
      strip.append(el("span", { class: "cell " + (st || "NONE"), title: HBD.fmtNumber(hoursAgo, 0) + " h ago: " + (st || "no data") }));
    });
    const pct = typeof u.uptime_24h === "number" ? HBD.fmtNumber(u.uptime_24h, u.uptime_24h >= 99.9 && u.uptime_24h < 100 ? 2 : 1) + " %" : "no data";
    strip.setAttribute("aria-label", "Uptime over 24 h: " + pct);
    td.append(strip, el("span", { class: "sub", text: pct }));
    return td;
  }

  function render() {
    const body = document.getElementById("hosts-body");
    const all = [...hosts.values()];
    const rows = all.filter(shown).sort((a, b) => {
      const c = HBD.compare(sortValue(a, sort.key), sortValue(b, sort.key));
      return (c !== 0 ? c * sort.dir : HBD.compare(a.name, b.name));
    });
    HBD.clear(body);
    for (const m of rows) {
      const lat = latencyOf(m), loss = lossOf(m), why = statusText(m);
      const tr = el("tr", { class: flashed.has(m.name) ? "flash" : null },
        el("td", { class: "host" }, el("a", { href: "/hosts/" + encodeURIComponent(m.name), text: m.name }), m.dyn ? el("span", { class: "sub", text: "dynamic" }) : null,
          m.watched === false ? " " : null,
          m.watched === false ? el("span", { class: "badge soft not-watched", title: "No alerts for this host: a dynamic host while watch_dynamic is off, or a host no longer in watchhosts", text: "not watched" }) : null,
          clockBadge(m) ? " " : null, clockBadge(m)),
        el("td", { class: "state" }, HBD.badge(m.state), why ? el("span", { class: "sub why", text: why }) : null),
        el("td", { class: "alert-level" }, m.watched === false ? el("span", { class: "muted", title: "Not evaluated", text: "–" }) : worst.has(m.name) ? el("a", { href: "/hosts/" + encodeURIComponent(m.name) + "#alerts-h", title: "Alerts of " + m.name }, HBD.badge(worst.get(m.name))) : HBD.badge("OK", "soft")),
        stripCell(m.name),
        familyCell(m.conns.ipv4, "col-wide"),
        familyCell(m.conns.ipv6, "col-wide"),
        el("td", { class: "num col-wide", text: lat === null ? "–" : HBD.fmtNumber(lat, 1) + " ms" }),
        el("td", { class: "num col-wide", text: loss === null ? "–" : HBD.fmtNumber(loss, 1) + " %" }),
        el("td", { class: "num", title: m.lastSeen ? new Date(m.lastSeen * 1000).toLocaleString() : null, text: HBD.fmtAgo(m.lastSeen) }),
      );
      tr.dataset.host = m.name;
      tr.dataset.state = m.state;
      tr.dataset.alert = worst.get(m.name) || "OK";
      body.append(tr);
    }
    flashed = new Set();
    document.getElementById("hosts-empty").hidden = all.length > 0;
    const f = document.getElementById("hosts-filtered");
    f.hidden = rows.length === all.length;
    f.textContent = "Showing " + rows.length + " of " + all.length + " hosts.";
    renderSummary(all);
  }

  function renderSummary(rows) {
    const count = (s) => rows.filter((m) => m.state === s).length;
    const box = HBD.clear(document.getElementById("host-summary"));
    const stat = (label, value, cls) => el("div", { class: "stat " + cls }, el("span", { class: "stat-label", text: label }), el("span", { class: "stat-value", text: value }));
    box.append(
      stat("Up", count("UP"), "ok"),
      stat("Degraded / late", count("DEGRADED") + count("LATE"), "warning"),
      stat("Down", count("DOWN"), "critical"),
      stat("Total hosts", rows.length, ""),
    );
  }

  function renderMessages() {
    const list = HBD.clear(document.getElementById("messages"));
    for (const m of messages) {
      list.append(el("li", {},
        el("time", { text: HBD.fmtAgo(m.time), title: new Date(m.time * 1000).toLocaleString(), datetime: new Date(m.time * 1000).toISOString() }),
        el("span", { class: "mhost", text: m.host || "hbd" }),
        el("span", { class: "mtext", text: m.msg }),
      ));
    }
    document.getElementById("messages-empty").hidden = messages.length > 0;
  }

  async function loadHosts() {
    const r = await HBD.api("GET", "/api/0/hosts");
    if (!r.ok || !Array.isArray(r.data)) {
      HBD.notice("Could not load hosts: " + (r.error || "unexpected answer"), "error");
      return;
    }
    HBD.notice("");
    const seen = new Set();
    for (const h of r.data) {
      if (!h || typeof h.name !== "string") continue;
      seen.add(h.name);
      hosts.set(h.name, model(h));
    }
    for (const name of [...hosts.keys()]) if (!seen.has(name)) hosts.delete(name);
    render();
  }

  // loadAlerts reads the worst non-OK level per host (most severe first,
  // so the first alert of a host is its worst).
  async function loadAlerts() {
    const r = await HBD.api("GET", "/api/0/alerts?limit=1000");
    if (!r.ok || !r.data || !Array.isArray(r.data.alerts)) return;
    worst.clear();
    for (const a of r.data.alerts) {
      if (!a || typeof a.hostname !== "string" || !(a.level in LEVEL_RANK)) continue;
      if (!worst.has(a.hostname) || LEVEL_RANK[a.level] > LEVEL_RANK[worst.get(a.hostname)]) worst.set(a.hostname, a.level);
    }
    render();
  }

  // loadUptime reads the strips of every host, 100 per request.
  async function loadUptime() {
    const names = [...hosts.keys()].sort();
    for (let i = 0; i < names.length && i < 1000; i += 100) {
      const r = await HBD.api("GET", "/api/0/uptime?buckets=24&hosts=" + names.slice(i, i + 100).map(encodeURIComponent).join(","));
      if (!r.ok || !r.data || typeof r.data.hosts !== "object") return;
      for (const [name, u] of Object.entries(r.data.hosts)) if (u && Array.isArray(u.strip)) strips.set(name, u);
    }
    render();
  }

  let alertTimer = null;
  function alertsChanged() {
    clearTimeout(alertTimer);
    alertTimer = setTimeout(loadAlerts, 500);
  }

  async function loadMessages() {
    const r = await HBD.api("GET", "/api/0/messages?limit=30");
    if (r.ok && Array.isArray(r.data)) {
      messages = r.data.filter((m) => m && typeof m.msg === "string");
      renderMessages();
    }
  }

  function onFeed(type, data) {
    if (type === "host" && typeof data.name === "string") {
      hosts.set(data.name, model(data));
      flashed.add(data.name);
      render();
    } else if (type === "alert") {
      alertsChanged();
    } else if (type === "message" && typeof data.msg === "string") {
      messages.unshift(data);
      messages = messages.slice(0, MAX_MESSAGES);
      renderMessages();
    }
  }

  function onStatus(s) {
    clearInterval(pollTimer);
    if (s === "live") {
      // The feed carries changes; a slow refresh picks up hosts added to
      // the configuration and resyncs anything missed while reconnecting.
      loadHosts().then(loadUptime);
      loadMessages();
      loadAlerts();
      pollTimer = setInterval(() => { if (!document.hidden) { loadHosts().then(loadUptime); loadMessages(); loadAlerts(); } }, 60000);
    } else {
      let n = 0;
      pollTimer = HBD.every(10000, () => { loadHosts().then(() => { if (n++ % 6 === 0) loadUptime(); }); loadMessages(); loadAlerts(); });
    }
  }

  document.addEventListener("DOMContentLoaded", () => {
    HBD.sortable(document.getElementById("hosts"), sort, render);
    const params = new URLSearchParams(location.search);
    const sf = document.getElementById("state-filter"), nf = document.getElementById("name-filter");
    filter.state = sf.value = params.get("state") || "";
    if (sf.value !== filter.state) filter.state = sf.value = "";
    filter.name = nf.value = params.get("name") || "";
    const onFilter = () => {
      filter.state = sf.value;
      filter.name = nf.value.trim();
      const q = new URLSearchParams();
      if (filter.state) q.set("state", filter.state);
      if (filter.name) q.set("name", filter.name);
      history.replaceState(null, "", "/live" + (q.toString() ? "?" + q.toString() : ""));
      render();
    };
    sf.addEventListener("change", onFilter);
    nf.addEventListener("input", onFilter);
    HBD.feed(["host", "alert", "message"], onFeed, onStatus);
    setInterval(() => { if (!document.hidden && hosts.size) render(); }, 5000);
  });
})();
