// status.js: the public status page (GET /status). It reads only
// GET /api/0/status_page, which needs no session and answers only the
// hosts status_page lists: their state, uptime figures and 24 h strip.
"use strict";

(function () {
  const el = HBD.el;
  const $ = (id) => document.getElementById(id);
  const words = { UP: "Operational", DEGRADED: "Degraded", DOWN: "Down", UNKNOWN: "No data" };

  function pct(v) {
    return typeof v === "number" ? HBD.fmtNumber(v, v >= 99.95 || v === 0 ? 0 : 2) + " %" : "—";
  }

  function hostCard(h, step) {
    const state = words[h.state] ? h.state : "UNKNOWN";
    const strip = el("div", { class: "strip", role: "img" });
    const n = Array.isArray(h.strip) ? h.strip.length : 0;
    (h.strip || []).forEach((st, i) => {
      const ago = (n - i) * step / 3600;
      strip.append(el("span", { class: "cell " + (st || "NONE"), title: HBD.fmtNumber(ago, 1) + " h ago: " + (st || "no data") }));
    });
    strip.setAttribute("aria-label", "Uptime over the last 24 hours: " + pct(h.uptime_24h));
    const card = el("section", { class: "card status-host" },
      el("div", { class: "status-head" },
        el("h2", { text: h.name }),
        el("span", { class: "badge " + state, text: words[state] }),
      ),
      strip,
      el("p", { class: "muted status-figures" },
        el("span", { text: "24 h " + pct(h.uptime_24h) }),
        el("span", { text: "7 days " + pct(h.uptime_7d) }),
        el("span", { text: "30 days " + pct(h.uptime_30d) }),
      ),
    );
    card.dataset.host = h.name;
    card.dataset.state = state;
    return card;
  }

  async function load() {
    const r = await HBD.api("GET", "/api/0/status_page");
    if (!r.ok || !r.data || !Array.isArray(r.data.hosts)) {
      $("status-summary").textContent = "The status is unavailable right now: " + (r.error || "unexpected answer");
      return;
    }
    const d = r.data;
    const title = typeof d.title === "string" && d.title ? d.title : "Status";
    document.title = title;
    document.querySelector("main h1").textContent = title;
    const list = HBD.clear($("status-hosts"));
    for (const h of d.hosts) if (h && typeof h.name === "string") list.append(hostCard(h, d.bucket_seconds || 1800));
    const down = d.hosts.filter((h) => h.state === "DOWN").length;
    const degraded = d.hosts.filter((h) => h.state === "DEGRADED").length;
    $("status-summary").textContent = down ? down + " of " + d.hosts.length + " down" :
      degraded ? degraded + " of " + d.hosts.length + " degraded" : "All systems operational";
    $("status-summary").className = down ? "status-summary DOWN" : degraded ? "status-summary DEGRADED" : "status-summary UP";
    $("status-updated").textContent = new Date(d.updated * 1000).toLocaleString();
  }

  document.addEventListener("DOMContentLoaded", () => {
    load();
    setInterval(load, 60000);
  });
})();
