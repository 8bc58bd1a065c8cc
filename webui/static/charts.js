// charts.js: metric charts and sparklines drawn by uPlot (vendored from
// npm under static/vendor/uplot, see webui/vendor/refresh.sh).
//
// HBD.chart(container, opts) draws one chart of one or more series:
//   series:     [{label, points: [{t, v}]}]   (t unix seconds, any order)
//   format:     value -> label (axis, tooltip)
//   percent:    true pins the y axis to 0–100
//   thresholds: {warning, critical, below}    dashed lines at those values
//   from, to:   the x range in unix seconds (default: the data)
//   emptyText:  shown instead of a chart when there are no points
// Drag across the chart zooms in; a double click zooms back out. The
// tooltip sits above the plot, so it never covers the line.
//
// HBD.sparkline(container, points, opts) draws a small line without axes.
"use strict";

(function () {
  const el = HBD.el;
  const PALETTE = ["#1f6feb", "#8250df", "#1a7f37", "#bf3989", "#0a7ea4", "#9a6700", "#cf222e", "#57606a"];
  const DARK_PALETTE = ["#58a6ff", "#d2a8ff", "#56d364", "#ff9bce", "#39c5cf", "#e3b341", "#ff7b72", "#a0aab8"];

  const dark = () => window.matchMedia && window.matchMedia("(prefers-color-scheme: dark)").matches;
  const css = (name) => getComputedStyle(document.documentElement).getPropertyValue(name).trim();

  // merge aligns series of points on one sorted time axis (uPlot's data
  // layout); a series without a value at a time gets null (a gap).
  function merge(series) {
    const times = new Set();
    const maps = series.map((s) => {
      const m = new Map();
      for (const p of s.points || []) {
        if (typeof p.v === "number" && isFinite(p.v) && typeof p.t === "number") { m.set(p.t, p.v); times.add(p.t); }
      }
      return m;
    });
    const xs = [...times].sort((a, b) => a - b);
    return [xs, ...maps.map((m) => xs.map((t) => (m.has(t) ? m.get(t) : null)))];
  }

  function timeLabel(ts, span) {
    const d = new Date(ts * 1000);
    const pad = (n) => String(n).padStart(2, "0");
    const hm = pad(d.getHours()) + ":" + pad(d.getMinutes());
    return span > 86400 ? (pad(d.getMonth() + 1) + "-" + pad(d.getDate()) + (span > 7 * 86400 ? "" : " " + hm)) : hm;
  }

  // thresholdPlugin draws the warning and critical lines and records what
  // it drew on the container (drawnThresholds) for the tests and for
  // screen readers (the figure's description).
  function thresholdPlugin(container, th) {
    return {
      hooks: {
        draw: [(u) => {
          const drawn = [];
          const ctx = u.ctx;
          const { left, width, top, height } = u.bbox;
          for (const [name, color] of [["warning", css("--warn") || "#9a6700"], ["critical", css("--crit") || "#c62828"]]) {
            const v = th && th[name];
            if (typeof v !== "number") continue;
            const y = Math.round(u.valToPos(v, "y", true));
            if (y < top - 1 || y > top + height + 1) continue;
            ctx.save();
            ctx.strokeStyle = color;
            ctx.lineWidth = 1.5 * devicePixelRatio;
            ctx.setLineDash([6 * devicePixelRatio, 4 * devicePixelRatio]);
            ctx.beginPath();
            ctx.moveTo(left, y);
            ctx.lineTo(left + width, y);
            ctx.stroke();
            ctx.setLineDash([]);
            ctx.fillStyle = color;
            ctx.font = (11 * devicePixelRatio) + "px system-ui, sans-serif";
            ctx.textAlign = "right";
            ctx.fillText(name + " " + (u._hbdFormat ? u._hbdFormat(v) : v), left + width - 4 * devicePixelRatio, y - 4 * devicePixelRatio);
            ctx.restore();
            drawn.push({ level: name, value: v, y: y });
          }
          container.drawnThresholds = drawn;
        }],
      },
    };
  }

  // tooltipPlugin shows the time and every series' value at the cursor in
  // a box pinned to the top of the plot, left or right of the cursor.
  function tooltipPlugin(format, labels) {
    let tip;
    return {
      hooks: {
        init: [(u) => {
          tip = el("div", { class: "chart-tip", role: "presentation" });
          tip.hidden = true;
          u.over.append(tip);
          u.over.addEventListener("mouseleave", () => { tip.hidden = true; });
        }],
        setCursor: [(u) => {
          const i = u.cursor.idx;
          if (i === null || i === undefined || u.cursor.left < 0) { tip.hidden = true; return; }
          HBD.clear(tip);
          tip.append(el("div", { class: "chart-tip-time", text: HBD.fmtTime(u.data[0][i]) }));
          for (let s = 1; s < u.data.length; s++) {
            const v = u.data[s][i];
            if (v === null || v === undefined) continue;
            tip.append(el("div", {}, el("span", { class: "chart-tip-key", text: labels.length > 1 ? labels[s - 1] + " " : "" }), format(v)));
          }
          tip.hidden = false;
          const w = tip.offsetWidth, x = u.cursor.left;
          tip.style.left = (x + 12 + w > u.over.clientWidth ? Math.max(0, x - 12 - w) : x + 12) + "px";
          tip.style.top = "4px";
        }],
      },
    };
  }

  HBD.chart = function (container, opts) {
    if (container._uplot) { container._uplot.destroy(); container._uplot = null; }
    HBD.clear(container);
    container.drawnThresholds = [];
    const series = (opts.series || []).filter((s) => (s.points || []).some((p) => typeof p.v === "number" && isFinite(p.v)));
    if (series.length === 0) {
      container.append(el("p", { class: "muted", text: opts.emptyText || "No data in this range." }));
      return null;
    }
    const data = merge(series);
    const xs = data[0];
    const format = opts.format || ((v) => HBD.fmtNumber(v));
    const th = opts.thresholds || {};
    let lo = Infinity, hi = -Infinity;
    for (let s = 1; s < data.length; s++) for (const v of data[s]) if (v !== null) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
    // A threshold near the data is shown; one far above it would flatten
    // the line, so it is left out of the scale (and then not drawn).
    for (const v of [th.warning, th.critical]) {
      if (typeof v === "number" && (v <= Math.max(hi, 0) * 3 || v <= 0)) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
    }
    const from = Math.min(opts.from || xs[0], xs[0]), to = Math.max(opts.to || xs[xs.length - 1], xs[xs.length - 1]);
    const palette = dark() ? DARK_PALETTE : PALETTE;
    const fg = css("--fg") || "#1c2330", grid = css("--border") || "#dde2ea";
    const width = Math.max(container.clientWidth || 600, 280);
    const axis = { stroke: fg, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid, width: 1 }, font: "12px system-ui, sans-serif" };
    let zoomed = false;
    // A drag selects a time span and zooms to it.
    const zoomPlugin = {
      hooks: {
        setSelect: [(u) => {
          if (u.select.width < 3) return;
          const min = u.posToVal(u.select.left, "x"), max = u.posToVal(u.select.left + u.select.width, "x");
          zoomed = true;
          u.setScale("x", { min: min, max: max });
          u.setSelect({ left: 0, top: 0, width: 0, height: 0 }, false);
          container.dataset.zoomed = "true";
        }],
      },
    };
    const u = new uPlot({
      width: width,
      height: opts.height || 260,
      legend: { show: series.length > 1, live: false },
      cursor: {
        drag: { x: true, y: false, setScale: false },
        points: { size: 7 },
        bind: { dblclick: (u, targ, handler) => (e) => { zoomed = false; return handler(e); } },
      },
      scales: {
        x: { time: true, range: (u, min, max) => (zoomed ? [min, max] : [from === to ? from - 60 : from, from === to ? to + 60 : to]) },
        y: {
          range: opts.percent ? [0, 100] : (u, min, max) => {
            let a = Math.min(lo, min), b = Math.max(hi, max);
            if (a === b) { a -= Math.abs(a) * 0.1 || 1; b += Math.abs(b) * 0.1 || 1; }
            const pad = (b - a) * 0.08;
            return [a >= 0 && a - pad < 0 ? 0 : a - pad, b + pad];
          },
        },
      },
      axes: [
        Object.assign({}, axis, { values: (u, vals) => vals.map((v) => timeLabel(v, to - from)) }),
        Object.assign({}, axis, { size: 76, values: (u, vals) => vals.map((v) => format(v)) }),
      ],
      series: [{}].concat(series.map((s, i) => ({
        label: s.label,
        stroke: palette[i % palette.length],
        width: 2,
        fill: series.length === 1 ? palette[0] + "22" : undefined,
        points: { show: xs.length < 3 },
        spanGaps: false,
        value: (u, v) => (v === null ? "–" : format(v)),
      }))),
      plugins: [thresholdPlugin(container, th), tooltipPlugin(format, series.map((s) => s.label)), zoomPlugin],
    }, data, container);
    u._hbdFormat = format;
    u.redraw(false);
    container._uplot = u;
    u.over.addEventListener("dblclick", () => { delete container.dataset.zoomed; });
    u.root.setAttribute("role", "img");
    u.root.setAttribute("aria-label", "Chart of " + series.map((s) => s.label).join(", ") +
      (typeof th.warning === "number" ? ", warning at " + format(th.warning) : "") +
      (typeof th.critical === "number" ? ", critical at " + format(th.critical) : ""));
    return u;
  };

  HBD.sparkline = function (container, points, opts) {
    if (container._uplot) { container._uplot.destroy(); container._uplot = null; }
    HBD.clear(container);
    const data = merge([{ points: points }]);
    if (data[0].length < 2) return null;
    const o = opts || {};
    const color = o.color || (dark() ? DARK_PALETTE[0] : PALETTE[0]);
    const u = new uPlot({
      width: o.width || Math.max(container.clientWidth || 120, 60),
      height: o.height || 28,
      legend: { show: false },
      cursor: { show: false },
      select: { show: false },
      scales: { x: { time: false }, y: o.percent ? { range: [0, 100] } : {} },
      axes: [{ show: false }, { show: false }],
      series: [{}, { stroke: color, width: 1.5, fill: color + "22", points: { show: false } }],
    }, data, container);
    container._uplot = u;
    container.dataset.points = String(data[0].length);
    return u;
  };
})();
