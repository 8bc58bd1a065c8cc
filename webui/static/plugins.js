// plugins.js: current values of one host's plugin as cards (nested objects
// such as per-partition disk data grouped), and the history of one metric
// as a chart. Refreshes every 30 seconds.
"use strict";

(function () {
  const el = HBD.el;
  const REFRESH_MS = 30000;
  const HISTORY_LIMIT = 2000;
  const params = new URLSearchParams(location.search);
  const want = { host: params.get("host"), plugin: params.get("plugin"), metric: params.get("metric") };
  let plugins = {}; // plugin name -> {timestamp, data, sample_count} of the selected host
  let metricPaths = []; // [[key, key...]] leaves of the selected plugin

  const $ = (id) => document.getElementById(id);
  const hostSel = () => $("host-select");
  const pluginSel = () => $("plugin-select");
  const metricSel = () => $("metric-select");

  function setOptions(select, values, preferred) {
    const keep = preferred && values.includes(preferred) ? preferred : (values.includes(select.value) ? select.value : values[0]);
    HBD.clear(select);
    for (const v of values) select.append(el("option", { value: v, text: v }));
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
    if (unit === "%" && typeof value === "number") {
      const fill = el("span");
      fill.style.width = Math.max(0, Math.min(100, value)) + "%";
      c.append(el("div", { class: "bar" + (value >= 90 ? " crit" : value >= 75 ? " warn" : "") }, fill));
    }
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
  }

  function fillMetrics() {
    const p = plugins[pluginSel().value];
    metricPaths = p && isObject(p.data) ? leaves(p.data, [], []) : [];
    const keys = metricPaths.map(pathKey);
    let pref = want.metric;
    if (!keys.includes(pref) && !keys.includes(metricSel().value)) {
      pref = keys.find((k) => HBD.unitOf(k.split(".").pop()) === "%");
    }
    setOptions(metricSel(), keys, pref);
    want.metric = null;
  }

  async function loadHosts() {
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
      HBD.lineChart($("chart"), [], String, "No hosts yet.");
      return;
    }
    const r = await HBD.api("GET", "/api/0/hosts/" + encodeURIComponent(host) + "/plugins");
    if (!r.ok || !r.data || !isObject(r.data.plugins)) {
      HBD.notice("Could not load plugins of " + host + ": " + (r.error || "unexpected answer"), "error");
      return;
    }
    HBD.notice("");
    plugins = r.data.plugins;
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
      HBD.lineChart(chart, [], String, "Choose a metric.");
      return;
    }
    const path = metricPaths.find((p) => pathKey(p) === metric) || metric.split(".");
    const until = Math.ceil(HBD.now());
    const since = until - Number($("range-select").value);
    const seq = ++historySeq;
    const r = await HBD.api("GET", "/api/0/hosts/" + encodeURIComponent(host) + "/plugins/" + encodeURIComponent(plugin) +
      "?since=" + since + "&until=" + until + "&limit=" + HISTORY_LIMIT);
    if (seq !== historySeq) return; // a newer request is on its way
    if (!r.ok || !r.data || !Array.isArray(r.data.samples)) {
      HBD.clear(chart).append(el("p", { class: "muted", text: "History unavailable: " + (r.error || "unexpected answer") }));
      return;
    }
    const points = r.data.samples.map((s) => ({ t: s.timestamp, v: valueAt(s.data || {}, path) }));
    const key = path[path.length - 1];
    HBD.lineChart(chart, points, (v) => HBD.fmtMetric(key, v), "No samples of " + metric + " in this range.", since, until);
  }

  async function refresh() {
    await loadPlugins();
    await loadHistory();
  }

  document.addEventListener("DOMContentLoaded", async () => {
    hostSel().addEventListener("change", refresh);
    pluginSel().addEventListener("change", () => { fillMetrics(); renderCards(); updateURL(); loadHistory(); });
    metricSel().addEventListener("change", () => { renderCards(); updateURL(); loadHistory(); });
    $("range-select").addEventListener("change", loadHistory);
    $("refresh").addEventListener("click", refresh);
    $("picker").addEventListener("submit", (e) => e.preventDefault());
    let resizeTimer = null;
    window.addEventListener("resize", () => { clearTimeout(resizeTimer); resizeTimer = setTimeout(loadHistory, 250); });
    if (await loadHosts()) await refresh();
    setInterval(async () => { if (!document.hidden && await loadHosts()) refresh(); }, REFRESH_MS);
  });
})();
