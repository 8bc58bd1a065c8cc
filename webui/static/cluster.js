// cluster.js: the cluster page for administrators (GET /api/0/cluster,
// polled every few seconds): the daemons, who leads since when, each
// one's last heartbeat flush and delivery backlog, and the recent epochs.
// With clustering off the API answers 404 and the page says how to turn
// it on.
"use strict";

(function () {
  const el = HBD.el;
  const $ = (id) => document.getElementById(id);
  // POLL_MS is how often the page asks again; a daemon unseen for
  // STALE_S seconds is shown as gone (the default lease TTL is 10 s).
  const POLL_MS = 3000;
  const STALE_S = 30;

  // ago is "12 seconds ago" measured on the database's clock: now is the
  // answer's newest time (its own node's last round) plus the time the
  // page has waited since, so a skewed browser clock does not show.
  function ago(ts, now) {
    if (typeof ts !== "number" || ts <= 0) return "–";
    const d = Math.max(0, now - ts);
    return d < 2 ? "just now" : HBD.fmtDuration(d) + " ago";
  }

  function timeCell(ts, now) {
    if (typeof ts !== "number" || ts <= 0) return el("td", { class: "muted", text: "not yet" });
    return el("td", {}, el("time", { datetime: new Date(ts * 1000).toISOString(), title: HBD.fmtTime(ts), text: ago(ts, now) }));
  }

  function render(c) {
    $("cluster-off").hidden = true;
    $("cluster-view").hidden = false;
    // The database's "now": the newest last_seen the answer holds.
    let now = 0;
    for (const n of c.nodes || []) now = Math.max(now, n.last_seen || 0);
    if (!now) now = HBD.now();
    $("leader").textContent = c.leader || "none";
    $("stat-leader").className = "stat " + (c.leader ? "ok" : "critical");
    $("epoch").textContent = String(c.epoch || 0);
    $("since").textContent = c.since ? HBD.fmtTime(c.since) : "–";
    $("since").title = c.since ? ago(c.since, now) : "";
    $("answering").textContent = c.node || "–";

    const body = HBD.clear($("nodes-body"));
    for (const n of c.nodes || []) {
      const gone = now - (n.last_seen || 0) > STALE_S;
      const role = n.leading ? "LEADER" : gone ? "GONE" : "FOLLOWER";
      const cls = n.leading ? "OK" : gone ? "DOWN" : "soft";
      const tr = el("tr", { "data-node": n.node, "data-role": role.toLowerCase() },
        el("th", { scope: "row" }, n.node, n.node === c.node ? el("span", { class: "sub", text: "this page" }) : null),
        el("td", {}, el("span", { class: "badge " + cls, text: role })),
        timeCell(n.last_seen, now),
        timeCell(n.heartbeat_flush, now),
        el("td", { class: "num", text: typeof n.delivery_backlog === "number" ? HBD.fmtNumber(n.delivery_backlog, 0) : "–" }),
        timeCell(n.started, now),
        el("td", {}, el("code", { text: n.address || "" })));
      body.append(tr);
    }
    const eb = HBD.clear($("epochs-body"));
    const epochs = c.epochs || [];
    epochs.forEach((e, i) => {
      // Epochs come newest first: an epoch lasted until the next began.
      const next = i > 0 ? epochs[i - 1].since : null;
      eb.append(el("tr", { "data-epoch": String(e.epoch) },
        el("td", { class: "num", text: String(e.epoch) }),
        el("td", { text: e.node }),
        el("td", {}, el("time", { datetime: new Date(e.since * 1000).toISOString(), text: HBD.fmtTime(e.since) })),
        el("td", { class: "muted", text: next ? HBD.fmtDuration(next - e.since) : c.leader ? "still leading" : "–" })));
    });
    $("cluster-updated").textContent = "Updated " + HBD.fmtTime(HBD.now());
  }

  async function load() {
    const r = await HBD.api("GET", "/api/0/cluster");
    if (r.ok && r.data) {
      HBD.notice("");
      render(r.data);
      return;
    }
    if (r.status === 404 && r.data && typeof r.data.error === "string" && r.data.error.startsWith("Clustering is off")) {
      $("cluster-view").hidden = true;
      $("cluster-off").hidden = false;
      return;
    }
    HBD.notice("The cluster cannot be shown: " + r.error, "error");
  }

  document.addEventListener("DOMContentLoaded", () => HBD.every(POLL_MS, load));
})();
