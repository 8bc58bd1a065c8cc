// plugins.js: current values of one host's plugin as cards (nested objects
// such as per-partition disk data grouped) with sparklines of the last
// hour, and the history of one metric (or of one key across all groups,
// e.g. every partition's percent) as a chart with the configured threshold
// lines. Refreshes every 30 seconds. On the host page (/hosts/{name}) the
// host is fixed by the page's address.
//
// Values are formatted by the unit the agent declared (the endpoints'
// "units"; HBD.fmtUnit), else by guessing from the key (older agents).
// Counters since boot are shown as rates between successive samples, on
// the cards and the chart; a counter whose agent also reports its rate
// ("bytes_sent" beside "bytes_sent_per_s") shows only that rate. Groups
// with no traffic in the last hour (idle network interfaces) and the
// loopback interface are folded behind a "Show N idle" toggle.
"use strict";

(function () {
  const el = HBD.el;
  const REFRESH_MS = 30000;
  const HISTORY_LIMIT = 10000;
  const SPARK_SPAN = 3600;
  const AUTO_SPAN = 86400; // the default range: the span with data, at most this
  const params = new URLSearchParams(location.search);
  const fixedHost = document.body.dataset.page === "host" ? decodeURIComponent(location.pathname.split("/")[2] || "") : null;
  const want = { host: params.get("host"), plugin: params.get("plugin"), metric: params.get("metric") };
  let plugins = {}; // plugin name -> {timestamp, data, sample_count} of the selected host
  let thresholds = {}; // "plugin.path" -> {warning, critical, below, for, rule}
  let sparks = {}; // path key -> [{t, v}] of the last hour
  let metricPaths = []; // [[key, key...]] leaves of the selected plugin
  let units = {}; // "plugin.path" -> declared unit (absent: none declared)
  let sparksFor = ""; // "host plugin" the sparks were read for
  let showIdle = false; // folded groups shown

  const $ = (id) => document.getElementById(id);
  const hostSel = () => $("host-select");
  const pluginSel = () => $("plugin-select");
  const metricSel = () => $("metric-select");

  function setOptions(select, values, preferred) {
    const keep = preferred && values.includes(preferred) ? preferred : (values.includes(select.value) ? select.value : values[0]);
    HBD.clear(select);
    for (const v of values) select.append(el("option", { value: v, text: v.startsWith("*.") ? v.slice(2) + " (all, one line each)" : v }));
    if (keep !== undefined) select.value = keep;
    select.disabled = values.length === 0;
  }

  function isObject(v) { return v !== null && typeof v === "object" && !Array.isArray(v); }

  // leaves lists the numeric leaves of data as key paths.
  function leaves(data, prefix, out) {
    for (const k of Object.keys(data).sort(naturalOrder)) {
      const v = data[k];
      if (typeof v === "number") out.push(prefix.concat(k));
      else if (isObject(v)) leaves(v, prefix.concat(k), out);
    }
    return out;
  }

  function naturalOrder(a, b) { return HBD.compare(a, b); }

  function valueAt(data, path) {
    let v = data;
    for (const k of path) {
      if (!isObject(v) || !(k in v)) return undefined;
      v = v[k];
    }
    return v;
  }

  const pathKey = (path) => path.join(".");
  const label = (k) => String(k).replace(/_/g, " ");

  function updateURL() {
    const q = new URLSearchParams();
    if (hostSel().value) q.set("host", hostSel().value);
    if (pluginSel().value) q.set("plugin", pluginSel().value);
    if (metricSel().value) q.set("metric", metricSel().value);
    if (fixedHost !== null) {
      q.delete("host");
      history.replaceState(null, "", location.pathname + "?" + q.toString() + location.hash);
      return;
    }
    history.replaceState(null, "", "/plugins?" + q.toString());
  }

  // unitFor is the declared unit of a path of the selected plugin,
  // undefined when the agent declared none.
  function unitFor(path) {
    const u = units[pluginSel().value + "." + pathKey(path)];
    return typeof u === "string" ? u : undefined;
  }

  function isPercent(path) {
    const unit = unitFor(path);
    return unit === undefined ? HBD.unitOf(path[path.length - 1]) === "%" : unit === "percent";
  }

  // A declared unit makes a key's unit suffix redundant: "available_mb"
  // reads "available", "bytes_recv_per_s" "bytes recv".
  function shortKey(key, unit) {
    if (unit === undefined) return key;
    const short = String(key).replace(/_(mb|gb|kb|mib|gib|kib|per_s|per_sec|ms|mhz|seconds|secs|pct)$/i, "");
    return short || key;
  }

  // rateNow is a counter's newest rate from the last hour's samples.
  function rateNow(path) {
    const r = HBD.rates(sparks[pathKey(path)]).filter((p) => p.v !== null);
    return r.length ? r[r.length - 1].v : undefined;
  }

  function card(path, value) {
    const key = path[path.length - 1];
    const unit = unitFor(path);
    const counter = HBD.isCounter(unit);
    const keyLabel = shortKey(key, unit);
    const text = counter ? HBD.fmtUnit(HBD.rateUnit(unit), rateNow(path)) : HBD.fmtValue(unit, key, value);
    const c = el("div", { class: "metric", title: pathKey(path), tabindex: "0" },
      el("div", { class: "mlabel", text: label(path.length > 2 ? path.slice(1, -1).concat(keyLabel).join(" · ") : keyLabel) }),
      el("div", { class: "mvalue", text: text }),
    );
    c.dataset.metric = pathKey(path);
    if (unit !== undefined) c.dataset.unit = unit;
    const th = thresholds[pluginSel().value + "." + pathKey(path)];
    const lvl = levelOf(th, value);
    if (lvl) c.dataset.level = lvl;
    if (th) c.title = pathKey(path) + thresholdText(th, key, unit);
    if (counter) {
      c.dataset.rate = "true";
      c.title = pathKey(path) + ": counter since boot, shown per second; total " + HBD.fmtUnit(unit, value);
    }
    if (isPercent(path) && typeof value === "number") {
      const fill = el("span");
      fill.style.width = Math.max(0, Math.min(100, value)) + "%";
      c.append(el("div", { class: "bar" + (lvl === "CRITICAL" ? " crit" : lvl === "WARNING" ? " warn" : "") }, fill));
    }
    const spark = el("div", { class: "spark", "aria-hidden": "true" });
    c.append(spark);
    const points = sparks[pathKey(path)] || [];
    c._spark = { node: spark, points: counter ? HBD.rates(points) : points, percent: isPercent(path) };
    if (pathKey(path) === metricSel().value) c.classList.add("selected");
    const choose = () => {
      metricSel().value = pathKey(path);
      document.querySelectorAll(".metric.selected").forEach((n) => n.classList.remove("selected"));
      c.classList.add("selected");
      updateURL();
      loadHistory();
    };
    c.addEventListener("click", choose);
    c.addEventListener("keydown", (e) => { if (e.key === "Enter") choose(); });
    return c;
  }

  // levelOf is the level the configured threshold gives value ("" when
  // no rule applies): the cards' colors follow the configuration.
  function levelOf(th, v) {
    if (!th || typeof v !== "number") return "";
    const past = (limit) => typeof limit === "number" && (th.below ? v <= limit : v >= limit);
    return past(th.critical) ? "CRITICAL" : past(th.warning) ? "WARNING" : "OK";
  }

  function thresholdText(th, key, unit) {
    const parts = [];
    if (typeof th.warning === "number") parts.push("warning " + (th.below ? "≤ " : "≥ ") + HBD.fmtValue(unit, key, th.warning));
    if (typeof th.critical === "number") parts.push("critical " + (th.below ? "≤ " : "≥ ") + HBD.fmtValue(unit, key, th.critical));
    return parts.length ? " · " + parts.join(", ") : "";
  }

  function drawSparks() {
    document.querySelectorAll("#cards .metric").forEach((c) => {
      if (c._spark) HBD.sparkline(c._spark.node, c._spark.points, { percent: c._spark.percent, width: Math.max(c.clientWidth - 24, 60) });
    });
  }

  function renderCards() {
    const area = HBD.clear($("cards"));
    const name = pluginSel().value;
    const p = plugins[name];
    if (!p || !isObject(p.data)) {
      area.append(el("p", { class: "muted", text: hostSel().value ? "This host has not reported any plugin data yet." : "No hosts yet." }));
      return;
    }
    // Top-level numbers first, then one group per nested object.
    const top = [], groups = [];
    for (const k of Object.keys(p.data).sort(naturalOrder)) {
      const v = p.data[k];
      if (typeof v === "number") top.push(k);
      else if (isObject(v)) groups.push(k);
    }
    const shown = (paths) => paths.filter((path) => !hasOwnRate(p.data, path));
    if (top.length) {
      area.append(el("div", { class: "group" },
        el("h3", {}, el("code", { text: name })),
        el("div", { class: "cards" }, ...shown(top.map((k) => [k])).map((path) => card(path, p.data[path[0]]))),
      ));
    }
    const folded = [];
    let loopback = false;
    for (const g of groups) {
      const paths = shown(leaves(p.data[g], [g], []));
      const group = el("div", { class: "group" },
        el("h3", {}, el("code", { text: g })),
        el("div", { class: "cards" }, ...paths.map((path) => card(path, valueAt(p.data, path)))),
      );
      group.dataset.group = g;
      const lo = name === "network_monitor" && g === "lo";
      if (lo || idle(paths)) {
        group.dataset.folded = lo ? "loopback" : "idle";
        loopback = loopback || lo;
        folded.push(group);
        continue;
      }
      area.append(group);
    }
    if (folded.length) {
      const box = el("div", { id: "folded-groups" }, ...folded);
      box.hidden = !showIdle;
      const idleCount = folded.filter((g) => g.dataset.folded === "idle").length;
      const what = name === "network_monitor" ? (folded.length === 1 ? "interface" : "interfaces") : (folded.length === 1 ? "group" : "groups");
      const words = (idleCount ? idleCount + " idle" : "") + (idleCount && loopback ? " and " : "") + (loopback ? "loopback" : "") + " " + what;
      const toggle = el("button", { type: "button", class: "fold-toggle", "aria-controls": "folded-groups", "aria-expanded": String(showIdle),
        text: (showIdle ? "Hide " : "Show ") + words });
      toggle.title = "No traffic in the last hour" + (loopback ? "; the loopback interface is folded too" : "");
      toggle.dataset.count = String(folded.length);
      toggle.addEventListener("click", () => { showIdle = !showIdle; renderCards(); });
      area.append(toggle, box);
    }
    $("updated").textContent = "sample " + HBD.fmtTime(p.timestamp) + " · " + (p.sample_count || 0) + " in memory";
    drawSparks();
  }

  // hasOwnRate: a counter the agent also reports as a rate ("bytes_sent"
  // beside a declared "bytes_sent_per_s") is left to that rate's card.
  function hasOwnRate(data, path) {
    if (!HBD.isCounter(unitFor(path))) return false;
    const sibling = path.slice(0, -1).concat(path[path.length - 1] + "_per_s");
    return typeof valueAt(data, sibling) === "number" && unitFor(sibling) !== undefined;
  }

  // idle: a group whose counters did not grow and whose rates stayed 0
  // over the last hour (known only once the sparks are read, and only
  // from declared units).
  function idle(paths) {
    if (sparksFor !== hostSel().value + " " + pluginSel().value) return false;
    let traffic = 0;
    for (const path of paths) {
      const unit = unitFor(path);
      const counter = HBD.isCounter(unit), rate = unit === "bytes/s" || unit === "count/s";
      if (!counter && !rate) continue;
      const vs = (sparks[pathKey(path)] || []).map((p) => p.v).filter((v) => typeof v === "number");
      if (vs.length < (counter ? 2 : 1)) return false;
      if (counter ? Math.max(...vs) !== Math.min(...vs) : vs.some((v) => v !== 0)) return false;
      traffic++;
    }
    return traffic > 0;
  }

  // loadSparks reads the plugin's last hour for the cards' sparklines.
  async function loadSparks() {
    const host = hostSel().value, plugin = pluginSel().value;
    sparks = {};
    sparksFor = "";
    if (!host || !plugin) return;
    const until = Math.ceil(HBD.now());
    const r = await HBD.api("GET", "/api/0/hosts/" + encodeURIComponent(host) + "/plugins/" + encodeURIComponent(plugin) +
      "?since=" + (until - SPARK_SPAN) + "&until=" + until + "&limit=720");
    if (!r.ok || !r.data || !Array.isArray(r.data.samples)) return;
    if (host !== hostSel().value || plugin !== pluginSel().value) return; // the choice changed meanwhile
    for (const path of metricPaths) {
      sparks[pathKey(path)] = r.data.samples.map((s) => ({ t: s.timestamp, v: valueAt(s.data || {}, path) }));
    }
    sparksFor = host + " " + plugin;
    // Counters' rates and idle groups need the samples: draw again.
    renderCards();
  }

  function fillMetrics() {
    const p = plugins[pluginSel().value];
    metricPaths = p && isObject(p.data) ? leaves(p.data, [], []) : [];
    const keys = metricPaths.map(pathKey);
    // "*.percent": one key across every group (all partitions), when
    // two or more groups have it.
    const shared = {};
    for (const path of metricPaths) if (path.length === 2) shared[path[1]] = (shared[path[1]] || 0) + 1;
    for (const k of Object.keys(shared).sort(naturalOrder)) if (shared[k] > 1) keys.push("*." + k);
    let pref = want.metric;
    if (!keys.includes(pref) && !keys.includes(metricSel().value)) {
      pref = keys.find((k) => !k.startsWith("*.") && isPercent(k.split(".")));
    }
    setOptions(metricSel(), keys, pref);
    want.metric = null;
  }

  async function loadHosts() {
    if (fixedHost !== null) {
      setOptions(hostSel(), [fixedHost], fixedHost);
      return true;
    }
    const r = await HBD.api("GET", "/api/0/hosts");
    if (!r.ok || !Array.isArray(r.data)) {
      HBD.notice("Could not load hosts: " + (r.error || "unexpected answer"), "error");
      return false;
    }
    setOptions(hostSel(), r.data.map((h) => h.name).filter((n) => typeof n === "string"), want.host);
    want.host = null;
    return true;
  }

  async function loadPlugins() {
    const host = hostSel().value;
    if (!host) {
      plugins = {};
      setOptions(pluginSel(), [], null);
      fillMetrics();
      renderCards();
      HBD.chart($("chart"), { series: [], emptyText: "No hosts yet." });
      return;
    }
    const r = await HBD.api("GET", "/api/0/hosts/" + encodeURIComponent(host) + "/plugins");
    if (!r.ok || !r.data || !isObject(r.data.plugins)) {
      HBD.notice("Could not load plugins of " + host + ": " + (r.error || "unexpected answer"), "error");
      return;
    }
    HBD.notice("");
    plugins = r.data.plugins;
    thresholds = isObject(r.data.thresholds) ? r.data.thresholds : {};
    units = isObject(r.data.units) ? r.data.units : {};
    document.dispatchEvent(new CustomEvent("hbd:plugins", { detail: { host: host, plugins: plugins, thresholds: thresholds, units: units } }));
    setOptions(pluginSel(), Object.keys(plugins).sort(naturalOrder), want.plugin);
    want.plugin = null;
    fillMetrics();
    renderCards();
    updateURL();
  }

  let historySeq = 0;
  async function loadHistory() {
    const host = hostSel().value, plugin = pluginSel().value, metric = metricSel().value;
    const chart = $("chart");
    if (!host || !plugin || !metric) {
      HBD.chart(chart, { series: [], emptyText: Object.keys(plugins).length ? "Choose a metric." : "No data yet." });
      return;
    }
    // The series: one path, or "*.key" for that key in every group.
    const paths = metric.startsWith("*.")
      ? metricPaths.filter((p) => p.length === 2 && p[1] === metric.slice(2))
      : [metricPaths.find((p) => pathKey(p) === metric) || metric.split(".")];
    const until = Math.ceil(HBD.now());
    const range = $("range-select").value;
    const auto = range === "auto";
    const since = until - (auto ? AUTO_SPAN : Number(range));
    const seq = ++historySeq;
    const r = await HBD.api("GET", "/api/0/hosts/" + encodeURIComponent(host) + "/plugins/" + encodeURIComponent(plugin) +
      "?since=" + since + "&until=" + until + "&limit=" + HISTORY_LIMIT);
    if (seq !== historySeq) return; // a newer request is on its way
    if (!r.ok || !r.data || !Array.isArray(r.data.samples)) {
      HBD.clear(chart).append(el("p", { class: "muted", text: "History unavailable: " + (r.error || "unexpected answer") }));
      return;
    }
    if (isObject(r.data.units)) Object.assign(units, r.data.units);
    const key = paths[0][paths[0].length - 1];
    const unit = unitFor(paths[0]);
    const counter = HBD.isCounter(unit);
    const series = paths.map((path) => {
      const points = r.data.samples.map((s) => ({ t: s.timestamp, v: valueAt(s.data || {}, path) }));
      return { label: (paths.length > 1 ? path[0] : pathKey(path)) + (counter ? " per second" : ""), points: counter ? HBD.rates(points) : points };
    });
    // Threshold lines: the rule of the one metric, or the one all the
    // series share (not for a counter drawn as its rate: the rule is on
    // the total).
    const ths = paths.map((p) => thresholds[plugin + "." + pathKey(p)]);
    const th = !counter && ths.every((x) => x && JSON.stringify(x) === JSON.stringify(ths[0])) ? ths[0] : null;
    // "auto" spans the samples there are (up to 24 h), so fresh data
    // fills the chart instead of being a sliver at its right edge.
    // (A counter's rates start at its second sample.)
    const first = Math.min(...series.flatMap((s) => s.points.filter((p) => typeof p.v === "number").map((p) => p.t)));
    HBD.chart(chart, {
      series: series,
      format: counter ? (v) => HBD.fmtUnit(HBD.rateUnit(unit), v) : (v) => HBD.fmtValue(unit, key, v),
      percent: isPercent(paths[0]),
      thresholds: th,
      from: auto && isFinite(first) ? first : since,
      to: until,
      emptyText: "No samples of " + metric + " in this range.",
    });
    chart.dataset.metric = metric;
    chart.dataset.series = String(series.length);
    chart.dataset.unit = counter ? HBD.rateUnit(unit) : (unit || "");
  }

  async function refresh() {
    await loadPlugins();
    await Promise.all([loadHistory(), loadSparks()]);
  }

  document.addEventListener("DOMContentLoaded", async () => {
    hostSel().addEventListener("change", refresh);
    pluginSel().addEventListener("change", () => { fillMetrics(); renderCards(); updateURL(); loadHistory(); loadSparks(); });
    metricSel().addEventListener("change", () => { renderCards(); updateURL(); loadHistory(); });
    $("range-select").addEventListener("change", loadHistory);
    $("refresh").addEventListener("click", refresh);
    $("picker").addEventListener("submit", (e) => e.preventDefault());
    let resizeTimer = null;
    // A resize fits the drawn chart to its box at once (no new request).
    const fitChart = () => {
      const u = $("chart")._uplot;
      if (u) u.setSize({ width: Math.max($("chart").clientWidth || 600, 280), height: u.height });
      else loadHistory();
    };
    window.addEventListener("resize", () => { clearTimeout(resizeTimer); resizeTimer = setTimeout(() => { fitChart(); drawSparks(); }, 250); });
    if (await loadHosts()) await refresh();
    setInterval(async () => { if (!document.hidden && await loadHosts()) refresh(); }, REFRESH_MS);
  });
})();
