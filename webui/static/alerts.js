// alerts.js: summary cards, the filterable list of active alerts (what
// happened in words, for how long, how many notifications reached a
// channel) with acknowledgement for those allowed to, and the "Recent"
// view of resolved alert episodes from /api/0/alerts/history. Refreshes
// every 15 seconds and whenever the live feed reports an alert change.
"use strict";

(function () {
  const el = HBD.el;
  const REFRESH_MS = 15000;
  const RECENT_PAGE = 50;
  // ackPath is where an acknowledgement is posted ({"metric_path": ...});
  // it needs manager rights on the host.
  const ackPath = (host) => "/api/0/hosts/" + encodeURIComponent(host) + "/alerts/ack";
  const RANK = { CRITICAL: 0, WARNING: 1, UNKNOWN: 2, OK: 3 };
  let view = "active";
  let filter = "all";
  let alerts = [];
  let access = new Map(); // host -> {owner, managers}
  let me = null;
  let unavailable = false;
  let recent = [];       // resolved episodes shown, newest first
  let recentNext = null; // cursor of the next page, null on the last
  let recentLoaded = false;

  const $ = (id) => document.getElementById(id);

  function canAck(a) {
    if (typeof a.can_ack === "boolean") return a.can_ack;
    if (!me || me.open || me.admin) return true; // the server has the last word
    const h = access.get(a.hostname);
    return !!h && (h.owner === me.name || (Array.isArray(h.managers) && h.managers.includes(me.name)));
  }

  // valueText says a heartbeat alert's value in words (the API's 0 UP,
  // 1 LATE or DEGRADED, 2 DOWN); other values with their unit.
  function valueText(path, v) {
    const p = String(path || "");
    if (/^heartbeat\.(host|ipv4|ipv6)$/.test(p)) {
      const words = p === "heartbeat.host" ? ["UP", "DEGRADED", "DOWN"] : ["UP", "LATE", "DOWN"];
      return words[v] || "–";
    }
    return HBD.fmtMetric(metricKey(p), v);
  }

  function metricKey(path) {
    const parts = String(path || "").split(".");
    return parts[parts.length - 1];
  }

  // alertCell shows what happened in words, with the metric path under it.
  // The metric path links to its chart on the host page (heartbeat
  // alerts to the host page itself).
  function alertCell(text, path, host) {
    const p = String(path || ""), dot = p.indexOf(".");
    let href = null;
    if (host) {
      href = "/hosts/" + encodeURIComponent(host);
      if (dot > 0 && p.slice(0, dot) !== "heartbeat") {
        href += "?plugin=" + encodeURIComponent(p.slice(0, dot)) + "&metric=" + encodeURIComponent(p.slice(dot + 1)) + "#history";
      }
    }
    const code = el("code", { class: "sub", text: p });
    return el("td", { class: "wrap" },
      el("div", { class: "atext", text: text || p }),
      href ? el("a", { href: href, class: "chart-link", title: "Chart of " + p + " on " + host }, code) : code);
  }

  // deliveryMarker says what became of the notifications when that is
  // not simply "delivered": nobody covered it, they are still being
  // tried, or they failed.
  function deliveryMarker(delivery) {
    switch (delivery) {
      case "no channel":
        return el("span", { class: "badge CRITICAL soft delivery", title: "No notification channel covers this host and level", text: "no channel — nobody was told" });
      case "pending":
        return el("span", { class: "badge soft delivery", text: "sending" });
      case "failed":
        return el("span", { class: "badge CRITICAL soft delivery", title: "Every delivery failed", text: "delivery failed" });
    }
    return null;
  }

  // notifiedCell counts deliveries that reached a channel.
  function notifiedCell(n, delivery) {
    const td = el("td", { class: "num" }, el("span", { class: "notified", text: String(n ?? 0) }));
    const m = deliveryMarker(delivery);
    if (m) td.append(" ", m);
    if (delivery) td.dataset.delivery = delivery;
    return td;
  }

  function actionCell(a) {
    const box = el("div", { class: "row-actions" });
    if (a.acknowledged) {
      box.append(el("span", { class: "badge soft", text: "acked" + (a.acknowledged_by ? " by " + a.acknowledged_by : "") }));
    } else if (a.silenced_until && a.silenced_until > HBD.now()) {
      box.append(el("span", { class: "badge soft", text: "silenced " + HBD.fmtDuration(a.silenced_until - HBD.now()) }));
    } else if (a.level !== "OK" && canAck(a)) {
      const b = el("button", { type: "button", class: "small", text: "Acknowledge" });
      b.addEventListener("click", async () => {
        b.disabled = true;
        const r = await HBD.api("POST", ackPath(a.hostname), { metric_path: a.metric_path });
        if (r.ok) {
          HBD.notice("Acknowledged " + a.metric_path + " on " + a.hostname + ".", "ok");
          load();
        } else {
          b.disabled = false;
          HBD.notice("Could not acknowledge: " + r.error, "error");
        }
      });
      box.append(b);
    }
    return el("td", {}, box);
  }

  function render() {
    const body = HBD.clear($("alerts-body"));
    const shown = alerts
      .filter((a) => filter === "all" || a.level === filter)
      .sort((a, b) => (RANK[a.level] ?? 9) - (RANK[b.level] ?? 9) || (a.since || 0) - (b.since || 0));
    for (const a of shown) {
      const tr = el("tr", {},
        el("td", {}, HBD.badge(a.level), a.flapping ? el("span", { class: "sub", text: "flapping" }) : null),
        el("td", { class: "host" }, el("a", { href: "/hosts/" + encodeURIComponent(a.hostname), text: a.hostname })),
        alertCell(a.text, a.metric_path, a.hostname),
        el("td", { class: "num", text: valueText(a.metric_path, a.last_value) }),
        el("td", { class: "num", title: a.since ? "since " + new Date(a.since * 1000).toLocaleString() : null, text: a.since ? HBD.fmtDuration(HBD.now() - a.since) : "–" }),
        notifiedCell(a.notification_count, a.delivery),
        actionCell(a),
      );
      tr.dataset.host = a.hostname;
      tr.dataset.level = a.level;
      body.append(tr);
    }
    $("alerts-empty").hidden = shown.length > 0;
    $("alerts-empty").textContent = unavailable ? "Alerts are unavailable." : alerts.length === 0 ? "No active alerts: everything is fine." : "No alerts at this level.";
  }

  function renderSummary(s, hostCount) {
    const set = (id, v) => { $(id).textContent = typeof v === "number" ? String(v) : "–"; };
    set("sum-critical", s.critical);
    set("sum-warning", s.warning);
    set("sum-unknown", s.unknown);
    set("sum-hosts", hostCount);
  }

  async function load() {
    const [r, h] = await Promise.all([HBD.api("GET", "/api/0/alerts"), HBD.api("GET", "/api/0/hosts")]);
    if (h.ok && Array.isArray(h.data)) {
      access = new Map(h.data.map((x) => [x.name, { owner: x.owner, managers: x.managers }]));
    }
    if (!r.ok || !r.data || !Array.isArray(r.data.alerts)) {
      HBD.notice("Alerts are unavailable: " + (r.error || "unexpected answer"), "error");
      alerts = [];
      unavailable = true;
      renderSummary({}, h.ok && Array.isArray(h.data) ? h.data.length : undefined);
      render();
      return;
    }
    unavailable = false;
    alerts = r.data.alerts.filter((a) => a && typeof a.hostname === "string");
    renderSummary(r.data.summary || {}, r.data.host_count);
    render();
    $("updated").textContent = "updated " + HBD.fmtTime(HBD.now());
  }

  // fmtPeak shows an episode's worst value: a heartbeat metric's value is
  // its state (1 LATE or DEGRADED, 2 DOWN).
  function fmtPeak(path, v) {
    if (typeof v !== "number") return "–";
    if (path === "heartbeat.host" || path === "heartbeat.ipv4" || path === "heartbeat.ipv6") {
      return v >= 2 ? "DOWN" : v >= 1 ? (path === "heartbeat.host" ? "DEGRADED" : "LATE") : "UP";
    }
    return HBD.fmtMetric(metricKey(path), v);
  }

  function renderRecent() {
    const body = HBD.clear($("recent-body"));
    for (const ep of recent) {
      const tr = el("tr", {},
        el("td", {}, HBD.badge(ep.worst_level)),
        el("td", { class: "host" }, el("a", { href: "/hosts/" + encodeURIComponent(ep.hostname), text: ep.hostname })),
        alertCell(ep.text, ep.metric_path, ep.hostname),
        el("td", { title: new Date(ep.start * 1000).toLocaleString(), text: HBD.fmtTime(ep.start) }),
        el("td", { class: "num", text: HBD.fmtDuration(ep.duration_s) }),
        el("td", { class: "num", text: fmtPeak(ep.metric_path, ep.peak_value) }),
        el("td", { text: ep.acknowledged_by || "–" }),
        notifiedCell(ep.deliveries, ep.delivery),
      );
      tr.dataset.host = ep.hostname;
      tr.dataset.metric = ep.metric_path;
      body.append(tr);
    }
    $("recent-empty").hidden = recent.length > 0;
    $("recent-more").hidden = !recentNext;
  }

  // loadRecent reads the first page of resolved episodes again, or with
  // more the page after the last one shown.
  async function loadRecent(more) {
    let path = "/api/0/alerts/history?state=resolved&limit=" + RECENT_PAGE;
    if (more && recentNext) path += "&before=" + encodeURIComponent(recentNext);
    const r = await HBD.api("GET", path);
    if (!r.ok || !r.data || !Array.isArray(r.data.episodes)) {
      HBD.notice("Recent alerts are unavailable: " + (r.error || "unexpected answer"), "error");
      return;
    }
    const page = r.data.episodes.filter((ep) => ep && typeof ep.hostname === "string" && typeof ep.start === "number");
    recent = more ? recent.concat(page) : page;
    recentNext = typeof r.data.next === "string" ? r.data.next : null;
    recentLoaded = true;
    renderRecent();
    $("recent-updated").textContent = "updated " + HBD.fmtTime(HBD.now());
  }

  function show(v) {
    view = v === "recent" || v === "silences" ? v : "active";
    document.querySelectorAll("[data-view]").forEach((b) => {
      const on = b.dataset.view === view;
      b.classList.toggle("active", on);
      b.setAttribute("aria-selected", on ? "true" : "false");
    });
    $("active-view").hidden = view !== "active";
    $("recent-view").hidden = view !== "recent";
    $("silences-view").hidden = view !== "silences";
    document.dispatchEvent(new CustomEvent("hbd:view", { detail: view }));
    if (view === "recent" && !recentLoaded) loadRecent(false);
  }

  function refresh() {
    load();
    // Paging further than the first page stops the refresh of the list,
    // so it does not jump under the reader.
    if (view === "recent" && !(recent.length > RECENT_PAGE)) loadRecent(false);
  }

  document.addEventListener("DOMContentLoaded", async () => {
    document.querySelectorAll("[data-filter]").forEach((b) => {
      b.addEventListener("click", () => {
        filter = b.dataset.filter;
        document.querySelectorAll("[data-filter]").forEach((x) => x.classList.toggle("active", x === b));
        render();
      });
    });
    document.querySelectorAll("[data-view]").forEach((b) => {
      b.addEventListener("click", () => {
        history.replaceState(null, "", b.dataset.view === "active" ? location.pathname + location.search : "#" + b.dataset.view);
        show(b.dataset.view);
      });
    });
    $("recent-more").addEventListener("click", () => loadRecent(true));
    show(location.hash.slice(1));
    me = await HBD.me();
    HBD.every(REFRESH_MS, refresh);
    let pending = null;
    HBD.feed(["alert"], () => {
      clearTimeout(pending);
      pending = setTimeout(refresh, 500);
    }, () => {});
  });
})();
