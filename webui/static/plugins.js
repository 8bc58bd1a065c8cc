// plugins.js: current values of one host's plugin as cards (nested objects
// such as per-partition disk data grouped) with sparklines of the last
// hour, and the history of one metric (or of one key across all groups,
// e.g. every partition's percent) as a chart with the configured threshold
// lines. Refreshes every 30 seconds. On the host page (/hosts/{name}) the
// host is fixed by the page's address.
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

  function card(path, value) {
    const key = path[path.length - 1];
    const unit = HBD.unitOf(key);
    const c = el("div", { class: "metric", title: pathKey(path), tabindex: "0" },
      el("div", { class: "mlabel", text: label(path.length > 2 ? path.slice(1).join(" · ") : key) }),
      el("div", { class: "mvalue", text: HBD.fmtMetric(key, value) }),
    );
    c.dataset.metric = pathKey(path);
    const th = thresholds[pluginSel().value + "." + pathKey(path)];
    const lvl = levelOf(th, value);
    if (lvl) c.dataset.level = lvl;
    if (th) c.title = pathKey(path) + thresholdText(th, key);
    if (unit === "%" && typeof value === "number") {
      const fill = el("span");
      fill.style.width = Math.max(0, Math.min(100, value)) + "%";
      c.append(el("div", { class: "bar" + (lvl === "CRITICAL" ? " crit" : lvl === "WARNING" ? " warn" : "") }, fill));
    }
    const spark = el("div", { class: "spark", "aria-hidden": "true" });
    c.append(spark);
    c._spark = { node: spark, points: sparks[pathKey(path)] || [], percent: unit === "%" };
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

  function thresholdText(th, key) {
    const parts = [];
    if (typeof th.warning === "number") parts.push("warning " + (th.below ? "≤ " : "≥ ") + HBD.fmtMetric(key, th.warning));
    if (typeof th.critical === "number") parts.push("critical " + (th.below ? "≤ " : "≥ ") + HBD.fmtMetric(key, th.critical));
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
    if (top.length) {
      area.append(el("div", { class: "group" },
        el("h3", {}, el("code", { text: name })),
        el("div", { class: "cards" }, ...top.map((k) => card([k], p.data[k]))),
      ));
    }
    for (const g of groups) {
      const paths = leaves(p.data[g], [g], []);
      area.append(el("div", { class: "group" },
        el("h3", {}, el("code", { text: g })),
        el("div", { class: "cards" }, ...paths.map((path) => card(path, valueAt(p.data, path)))),
      ));
    }
    $("updated").textContent = "sample " + HBD.fmtTime(p.timestamp) + " · " + (p.sample_count || 0) + " in memory";
    drawSparks();
  }

  // loadSparks reads the plugin's last hour for the cards' sparklines.
  async function loadSparks() {
    const host = hostSel().value, plugin = pluginSel().value;
    sparks = {};
    if (!host || !plugin) return;
    const until = Math.ceil(HBD.now());
    const r = await HBD.api("GET", "/api/0/hosts/" + encodeURIComponent(host) + "/plugins/" + encodeURIComponent(plugin) +
      "?since=" + (until - SPARK_SPAN) + "&until=" + until + "&limit=720");
    if (!r.ok || !r.data || !Array.isArray(r.data.samples)) return;
    for (const path of metricPaths) {
      sparks[pathKey(path)] = r.data.samples.map((s) => ({ t: s.timestamp, v: valueAt(s.data || {}, path) }));
    }
    document.querySelectorAll("#cards .metric").forEach((c) => { if (c._spark) c._spark.points = sparks[c.dataset.metric] || []; });
    drawSparks();
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
      pref = keys.find((k) => HBD.unitOf(k.split(".").pop()) === "%");
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
    document.dispatchEvent(new CustomEvent("hbd:plugins", { detail: { host: host, plugins: plugins, thresholds: thresholds } }));
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
    const key = paths[0][paths[0].length - 1];
    const series = paths.map((path) => ({
      label: paths.length > 1 ? path[0] : pathKey(path),
      points: r.data.samples.map((s) => ({ t: s.timestamp, v: valueAt(s.data || {}, path) })),
    }));
    // Threshold lines: the rule of the one metric, or the one all the
    // series share.
    const ths = paths.map((p) => thresholds[plugin + "." + pathKey(p)]);
    const th = ths.every((x) => x && JSON.stringify(x) === JSON.stringify(ths[0])) ? ths[0] : null;
    // "auto" spans the samples there are (up to 24 h), so fresh data
    // fills the chart instead of being a sliver at its right edge.
    const first = Math.min(...r.data.samples.map((s) => s.timestamp));
    HBD.chart(chart, {
      series: series,
      format: (v) => HBD.fmtMetric(key, v),
      percent: HBD.unitOf(key) === "%",
      thresholds: th,
      from: auto && isFinite(first) ? first : since,
      to: until,
      emptyText: "No samples of " + metric + " in this range.",
    });
    chart.dataset.metric = metric;
    chart.dataset.series = String(series.length);
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
    window.addEventListener("resize", () => { clearTimeout(resizeTimer); resizeTimer = setTimeout(() => { loadHistory(); drawSparks(); }, 250); });
    if (await loadHosts()) await refresh();
    setInterval(async () => { if (!document.hidden && await loadHosts()) refresh(); }, REFRESH_MS);
  });
})();
