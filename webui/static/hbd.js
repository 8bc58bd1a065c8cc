// hbd.js: helpers shared by every page (API calls, DOM building, formatting,
// the live feed). Data from the server is only ever put into the page with
// textContent or attribute setters, never as HTML.
"use strict";

(function () {
  const HBD = {};
  window.HBD = HBD;

  let csrfToken = "";
  let mePromise = null;

  // loginURL is the login page that comes back here afterwards.
  HBD.loginURL = function () {
    return "/login?next=" + encodeURIComponent(location.pathname + location.search);
  };

  // api calls the JSON API and resolves to {ok, status, data, error}; it
  // never rejects. A 401 on a page sends the browser to the login page.
  HBD.api = async function (method, path, body) {
    const opts = { method: method, credentials: "same-origin", headers: { "Accept": "application/json" } };
    if (body !== undefined) {
      opts.headers["Content-Type"] = "application/json";
      opts.body = JSON.stringify(body);
    }
    if (method !== "GET" && csrfToken) {
      opts.headers["X-CSRF-Token"] = csrfToken;
    }
    let resp;
    try {
      resp = await fetch(path, opts);
    } catch (e) {
      return { ok: false, status: 0, data: null, error: "The server cannot be reached." };
    }
    let data = null;
    const text = await resp.text().catch(() => "");
    if (text) {
      try { data = JSON.parse(text); } catch (e) { data = null; }
    }
    if (resp.status === 401 && document.body.dataset.page !== "login" && !path.startsWith("/api/0/auth/")) {
      location.assign(HBD.loginURL());
    }
    let error = null;
    if (!resp.ok) {
      error = (data && typeof data.error === "string") ? data.error : ("HTTP " + resp.status);
      // Echo's own 404 ("Not found: /path") means the endpoint is missing,
      // not that the thing asked for is.
      if (resp.status === 404 && (!data || typeof data.error !== "string" || data.error.startsWith("Not found:"))) {
        error = "This feature is not available on this server (" + method + " " + path.split("?")[0] + " not found).";
      }
      if (resp.status === 503) {
        error = "This feature is not available right now" + (data && data.error ? ": " + data.error : ".");
      }
    }
    return { ok: resp.ok, status: resp.status, data: data, error: error };
  };

  // meResult resolves to the api() result of GET /api/0/users/me, fetched
  // once per page; it also picks up the CSRF token for writes.
  HBD.meResult = function () {
    if (!mePromise) {
      mePromise = HBD.api("GET", "/api/0/users/me").then((r) => {
        if (r.ok && r.data && r.data.csrf_token) csrfToken = r.data.csrf_token;
        return r;
      });
    }
    return mePromise;
  };

  // me resolves to the caller's profile, or null when it is unavailable.
  HBD.me = function () {
    return HBD.meResult().then((r) => (r.ok && r.data ? r.data : null));
  };

  // el builds an element: el("td", {class: "num", text: "3"}, child...).
  HBD.el = function (tag, attrs, ...children) {
    const svg = tag.startsWith("svg:");
    const node = svg ? document.createElementNS("http://www.w3.org/2000/svg", tag.slice(4)) : document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "text") node.textContent = String(v);
      else if (k === "class") node.setAttribute("class", v);
      else if (k === "dataset") Object.assign(node.dataset, v);
      else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else if (v === true) node.setAttribute(k, "");
      else node.setAttribute(k, String(v));
    }
    for (const c of children) {
      if (c === null || c === undefined || c === false) continue;
      node.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return node;
  };

  HBD.clear = function (node) {
    while (node.firstChild) node.removeChild(node.firstChild);
    return node;
  };

  // notice shows a message at the top of the page; kind is error, ok or
  // info; an empty text hides it.
  HBD.notice = function (text, kind) {
    const n = document.getElementById("notice");
    if (!n) return;
    n.textContent = text || "";
    n.className = "notice " + (kind || "info");
    n.hidden = !text;
  };

  HBD.badge = function (state, extraClass) {
    const s = String(state || "UNKNOWN");
    return HBD.el("span", { class: "badge " + s.replace(/[^A-Z]/g, "") + (extraClass ? " " + extraClass : ""), text: s });
  };

  // Formatting.

  HBD.fmtNumber = function (v, digits) {
    if (typeof v !== "number" || !isFinite(v)) return "–";
    const d = digits !== undefined ? digits : (Math.abs(v) >= 100 ? 0 : Math.abs(v) >= 10 ? 1 : 2);
    return v.toLocaleString(undefined, { maximumFractionDigits: d, minimumFractionDigits: 0 });
  };

  const BYTE_UNITS = ["B", "KB", "MB", "GB", "TB", "PB"];

  function scaleBytes(v, unitIndex) {
    let i = unitIndex;
    while (Math.abs(v) >= 1024 && i < BYTE_UNITS.length - 1) { v /= 1024; i++; }
    return HBD.fmtNumber(v, Math.abs(v) >= 100 ? 0 : 1) + " " + BYTE_UNITS[i];
  }

  // unitOf guesses a metric's unit from its key: cpu_percent -> "%",
  // total_mb -> "MB", bytes_sent -> "B", latency_ms -> "ms".
  HBD.unitOf = function (key) {
    const k = String(key).toLowerCase();
    if (/(percent|_pct|pct_|usage)$/.test(k) || k === "percent" || k === "pct") return "%";
    if (/(^|_)(mb|mib)$/.test(k) || /_mb_/.test(k)) return "MB";
    if (/(^|_)(gb|gib)$/.test(k)) return "GB";
    if (/(^|_)(kb|kib)$/.test(k)) return "KB";
    if (/bytes/.test(k)) return "B";
    if (/(^|_)ms$/.test(k)) return "ms";
    if (/(^|_)(mhz)$/.test(k)) return "MHz";
    if (/(temp|temperature|celsius)/.test(k)) return "°C";
    if (/(_per_sec|_ps|_rate)$/.test(k)) return "/s";
    if (/(^|_)(seconds|secs|uptime)$/.test(k)) return "s";
    return "";
  };

  // fmtMetric formats a value for its key's unit: 45.2 %, 3.9 GB, 1.2 ms.
  HBD.fmtMetric = function (key, v) {
    if (typeof v !== "number" || !isFinite(v)) return "–";
    switch (HBD.unitOf(key)) {
      case "%": return HBD.fmtNumber(v, 1) + " %";
      case "B": return scaleBytes(v, 0);
      case "KB": return scaleBytes(v, 1);
      case "MB": return scaleBytes(v, 2);
      case "GB": return scaleBytes(v, 3);
      case "ms": return HBD.fmtNumber(v, v < 10 ? 2 : 1) + " ms";
      case "MHz": return v >= 1000 ? HBD.fmtNumber(v / 1000, 2) + " GHz" : HBD.fmtNumber(v, 0) + " MHz";
      case "°C": return HBD.fmtNumber(v, 1) + " °C";
      case "/s": return HBD.fmtNumber(v) + "/s";
      case "s": return HBD.fmtDuration(v);
      default: return HBD.fmtNumber(v);
    }
  };

  // Units the agents declare (served as "units" by the plugin endpoints,
  // docs/AGENT.md): values are formatted with Intl.NumberFormat and
  // Intl.RelativeTimeFormat in the browser's locale. A metric without a
  // declared unit (an older agent) goes through fmtMetric's guessing.
  const numberFormats = new Map();
  function nf(opts) {
    const key = JSON.stringify(opts);
    let f = numberFormats.get(key);
    if (!f) {
      try { f = new Intl.NumberFormat(undefined, opts); } catch (e) { f = new Intl.NumberFormat(undefined, { maximumFractionDigits: opts.maximumFractionDigits }); }
      numberFormats.set(key, f);
    }
    return f;
  }
  const digitsFor = (v) => (Math.abs(v) >= 100 ? 0 : Math.abs(v) >= 10 ? 1 : 2);
  const BYTE_STEPS = ["byte", "kilobyte", "megabyte", "gigabyte", "terabyte", "petabyte"];
  const BYTE_BASE = { bytes: 0, KiB: 1, MiB: 2, GiB: 3, bytes_total: 0 };

  function fmtBytesIntl(v, perSecond) {
    let i = 0;
    while (Math.abs(v) >= 1024 && i < BYTE_STEPS.length - 1) { v /= 1024; i++; }
    // Intl's short "byte" reads oddly beside "kB": plain bytes are "B".
    if (i === 0) return nf({ maximumFractionDigits: 0 }).format(v) + (perSecond ? " B/s" : " B");
    const unit = BYTE_STEPS[i] + (perSecond ? "-per-second" : "");
    return nf({ style: "unit", unit: unit, unitDisplay: "short", maximumFractionDigits: Math.abs(v) >= 100 || i === 0 ? 0 : 1 }).format(v);
  }

  function fmtSecondsIntl(sec) {
    const a = Math.abs(sec);
    const [unit, div] = a < 1 ? ["millisecond", 0.001] : a < 120 ? ["second", 1] : a < 7200 ? ["minute", 60] : a < 172800 ? ["hour", 3600] : ["day", 86400];
    const x = sec / div;
    return nf({ style: "unit", unit: unit, unitDisplay: "short", maximumFractionDigits: Math.abs(x) >= 10 ? 0 : 1 }).format(x);
  }

  const relative = typeof Intl.RelativeTimeFormat === "function" ? new Intl.RelativeTimeFormat(undefined, { numeric: "auto" }) : null;
  // fmtRelative says when a unix time was (or will be): "5 minutes ago".
  HBD.fmtRelative = function (ts) {
    if (typeof ts !== "number" || !isFinite(ts) || ts <= 0) return "never";
    const d = ts - HBD.now(), a = Math.abs(d);
    if (!relative) return HBD.fmtAgo(ts);
    const [unit, div] = a < 60 ? ["second", 1] : a < 3600 ? ["minute", 60] : a < 86400 ? ["hour", 3600] : ["day", 86400];
    return relative.format(Math.round(d / div), unit);
  };

  // isCounter: a declared counter since some start (boot); its rate is
  // what to show. rateUnit is the unit of that rate.
  HBD.isCounter = (unit) => typeof unit === "string" && /_total$/.test(unit);
  HBD.rateUnit = (unit) => (unit === "bytes_total" ? "bytes/s" : "count/s");

  // rates turns a counter's points ({t, v}, any order) into per-second
  // rates between successive samples, oldest first; a counter that went
  // back (a reboot) gives a gap.
  HBD.rates = function (points) {
    const pts = (points || []).filter((p) => typeof p.v === "number" && isFinite(p.v) && typeof p.t === "number").sort((a, b) => a.t - b.t);
    const out = [];
    for (let i = 1; i < pts.length; i++) {
      const dt = pts[i].t - pts[i - 1].t, dv = pts[i].v - pts[i - 1].v;
      out.push({ t: pts[i].t, v: dt > 0 && dv >= 0 ? dv / dt : null });
    }
    return out;
  };

  // fmtUnit formats v in a declared unit: "45.2%", "22.7 GB", "501 B/s",
  // "2,100 MHz", "5 min", "3 minutes ago". A counter's own value is its
  // total; format its rate with rateUnit(unit).
  HBD.fmtUnit = function (unit, v) {
    if (typeof v !== "number" || !isFinite(v)) return "–";
    switch (unit) {
      case "percent": return nf({ style: "unit", unit: "percent", maximumFractionDigits: 1 }).format(v);
      case "bytes": case "KiB": case "MiB": case "GiB": case "bytes_total":
        return fmtBytesIntl(v * Math.pow(1024, BYTE_BASE[unit]), false);
      case "bytes/s": return fmtBytesIntl(v, true);
      case "count/s": return nf({ maximumFractionDigits: digitsFor(v) }).format(v) + "/s";
      case "count": case "count_total": return nf({ maximumFractionDigits: Number.isInteger(v) ? 0 : digitsFor(v) }).format(v);
      case "MHz": return nf({ maximumFractionDigits: v >= 100 ? 0 : 1 }).format(v) + " MHz";
      case "celsius": return nf({ style: "unit", unit: "celsius", maximumFractionDigits: 1 }).format(v);
      case "seconds": return fmtSecondsIntl(v);
      case "milliseconds": return Math.abs(v) < 1000 ? nf({ style: "unit", unit: "millisecond", unitDisplay: "short", maximumFractionDigits: v < 10 ? 2 : 1 }).format(v) : fmtSecondsIntl(v / 1000);
      case "unixtime": return HBD.fmtRelative(v);
      default: return nf({ maximumFractionDigits: digitsFor(v) }).format(v);
    }
  };

  // fmtValue formats a metric's value by its declared unit, or, when it
  // has none (undefined: an older agent), by guessing from its key.
  HBD.fmtValue = function (unit, key, v) {
    return unit === undefined ? HBD.fmtMetric(key, v) : HBD.fmtUnit(unit, v);
  };

  HBD.fmtDuration = function (sec) {
    if (typeof sec !== "number" || !isFinite(sec) || sec < 0) return "–";
    sec = Math.floor(sec);
    if (sec < 60) return sec + "s";
    const d = Math.floor(sec / 86400), h = Math.floor(sec % 86400 / 3600), m = Math.floor(sec % 3600 / 60);
    if (d > 0) return d + "d " + h + "h";
    if (h > 0) return h + "h " + m + "m";
    return m + "m " + (sec % 60) + "s";
  };

  HBD.now = function () { return Date.now() / 1000; };

  HBD.fmtAgo = function (ts) {
    if (!ts) return "never";
    const d = HBD.now() - ts;
    if (d < 2) return "just now";
    return HBD.fmtDuration(d) + " ago";
  };

  HBD.fmtTime = function (ts) {
    if (!ts) return "–";
    const d = new Date(ts * 1000);
    const pad = (n) => String(n).padStart(2, "0");
    const today = new Date();
    const time = pad(d.getHours()) + ":" + pad(d.getMinutes()) + ":" + pad(d.getSeconds());
    if (d.toDateString() === today.toDateString()) return time;
    return d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate()) + " " + time;
  };

  // every runs fn now and then every ms while the page is visible.
  HBD.every = function (ms, fn) {
    fn();
    return setInterval(() => { if (!document.hidden) fn(); }, ms);
  };

  // feed opens the live feed (WebSocket /hbd). It tries ws_port first (the
  // page's data-ws-port), then the page's own origin, and reconnects with
  // backoff. onStatus receives "live" or "polling": while "polling", the
  // page should poll the REST API instead. It asks for multi-message
  // frames (batch=1): each frame is a JSON array of messages, handed to
  // onMessage one by one in order (a single object is read too).
  HBD.feed = function (types, onMessage, onStatus) {
    const secure = location.protocol === "https:";
    const port = secure ? document.body.dataset.wssPort : document.body.dataset.wsPort;
    const scheme = secure ? "wss://" : "ws://";
    const query = "?batch=1" + (types && types.length ? "&types=" + types.join(",") : "");
    const urls = [];
    if (port && port !== "0" && port !== location.port) {
      urls.push(scheme + location.hostname + ":" + port + "/hbd" + query);
    }
    urls.push(scheme + location.host + "/hbd" + query);

    let attempt = 0, delay = 1000, status = "";
    const setStatus = (s) => {
      if (s === status) return;
      status = s;
      const badge = document.getElementById("feed-status");
      if (badge) {
        badge.hidden = false;
        badge.className = "feed-status " + s;
        badge.textContent = s === "live" ? "live" : "polling";
        badge.title = s === "live" ? "Updates arrive over the live feed" : "Live feed unavailable: refreshing periodically";
      }
      onStatus(s);
    };
    const connect = () => {
      const url = urls[attempt % urls.length];
      let opened = false;
      let sock;
      try {
        sock = new WebSocket(url);
      } catch (e) {
        retry();
        return;
      }
      sock.onopen = () => { opened = true; delay = 1000; setStatus("live"); };
      sock.onmessage = (ev) => {
        let frame;
        try { frame = JSON.parse(ev.data); } catch (e) { return; }
        for (const m of Array.isArray(frame) ? frame : [frame]) {
          if (m && typeof m.type === "string") onMessage(m.type, m.data || {});
        }
      };
      sock.onclose = () => {
        if (!opened) attempt++;
        setStatus("polling");
        retry();
      };
    };
    const retry = () => {
      const wait = delay;
      delay = Math.min(delay * 2, 30000);
      setTimeout(connect, attempt % urls.length === 0 ? wait : 0);
    };
    setStatus("polling");
    connect();
  };

  // sortTable makes a table's headers sort rows through the page's own
  // render: getSort() returns {key, dir}; onChange(key, dir) re-renders.
  HBD.sortable = function (table, state, onChange) {
    const ths = table.querySelectorAll("th[data-key]");
    const mark = () => ths.forEach((th) => {
      th.setAttribute("aria-sort", th.dataset.key === state.key ? (state.dir > 0 ? "ascending" : "descending") : "none");
    });
    ths.forEach((th) => {
      th.tabIndex = 0;
      const go = () => {
        if (state.key === th.dataset.key) state.dir = -state.dir;
        else { state.key = th.dataset.key; state.dir = 1; }
        mark();
        onChange();
      };
      th.addEventListener("click", go);
      th.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); go(); } });
    });
    mark();
  };

  // compare sorts numbers numerically, strings naturally, blanks last.
  HBD.compare = function (a, b) {
    const blankA = a === null || a === undefined || a === "", blankB = b === null || b === undefined || b === "";
    if (blankA || blankB) return blankA === blankB ? 0 : blankA ? 1 : -1;
    if (typeof a === "number" && typeof b === "number") return a - b;
    return String(a).localeCompare(String(b), undefined, { numeric: true, sensitivity: "base" });
  };

  // Nav bar: who is logged in, and the logout link.
  document.addEventListener("DOMContentLoaded", () => {
    if (document.body.dataset.page === "login" || document.body.dataset.page === "status") return;
    HBD.me().then((me) => {
      const who = document.getElementById("nav-user");
      const out = document.getElementById("nav-logout");
      if (!who) return;
      if (!me) { return; }
      if (me.open) { who.textContent = "open mode"; who.title = "No users are configured: everything is open"; return; }
      who.textContent = me.display_name || me.name || "";
      if (out) out.hidden = false;
      // The config editor and the cluster page are for administrators only.
      for (const id of ["nav-config", "nav-cluster"]) {
        const link = document.getElementById(id);
        if (!link || !me.admin) continue;
        link.hidden = false;
        // At phone width the nav is one scrolling row: show the page's link.
        if (link.classList.contains("active")) link.scrollIntoView({ block: "nearest", inline: "nearest" });
      }
    });
  });
})();
