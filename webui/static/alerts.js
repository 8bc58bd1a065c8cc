// alerts.js: summary cards, the filterable list of active alerts with their
// duration, and acknowledgement for those allowed to. Refreshes every 15
// seconds and whenever the live feed reports an alert change.
"use strict";

(function () {
  const el = HBD.el;
  const REFRESH_MS = 15000;
  // ackPath is where an acknowledgement is posted ({"metric_path": ...});
  // it needs manager rights on the host.
  const ackPath = (host) => "/api/0/hosts/" + encodeURIComponent(host) + "/alerts/ack";
  const RANK = { CRITICAL: 0, WARNING: 1, UNKNOWN: 2, OK: 3 };
  let filter = "all";
  let alerts = [];
  let access = new Map(); // host -> {owner, managers}
  let me = null;
  let unavailable = false;

  const $ = (id) => document.getElementById(id);

  function canAck(a) {
    if (typeof a.can_ack === "boolean") return a.can_ack;
    if (!me || me.open || me.admin) return true; // the server has the last word
    const h = access.get(a.hostname);
    return !!h && (h.owner === me.name || (Array.isArray(h.managers) && h.managers.includes(me.name)));
  }

  function metricKey(path) {
    const parts = String(path || "").split(".");
    return parts[parts.length - 1];
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
        el("td", { class: "host" }, a.hostname),
        el("td", {}, el("code", { text: a.metric_path })),
        el("td", { class: "num", text: HBD.fmtMetric(metricKey(a.metric_path), a.last_value) }),
        el("td", { class: "num", title: a.since ? "since " + new Date(a.since * 1000).toLocaleString() : null, text: a.since ? HBD.fmtDuration(HBD.now() - a.since) : "–" }),
        el("td", { class: "num", text: String(a.notification_count ?? 0) }),
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

  document.addEventListener("DOMContentLoaded", async () => {
    document.querySelectorAll(".segmented button").forEach((b) => {
      b.addEventListener("click", () => {
        filter = b.dataset.filter;
        document.querySelectorAll(".segmented button").forEach((x) => x.classList.toggle("active", x === b));
        render();
      });
    });
    me = await HBD.me();
    HBD.every(REFRESH_MS, load);
    let pending = null;
    HBD.feed(["alert"], () => {
      clearTimeout(pending);
      pending = setTimeout(load, 500);
    }, () => {});
  });
})();
