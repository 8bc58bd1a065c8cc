// chart.js: a small SVG line chart for metric history.
"use strict";

(function () {
  const el = HBD.el;

  // niceTicks returns about n round values spanning [lo, hi].
  function niceTicks(lo, hi, n) {
    if (hi === lo) { hi = lo + 1; lo = lo - 1; }
    const raw = (hi - lo) / n;
    const mag = Math.pow(10, Math.floor(Math.log10(raw)));
    const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) || raw;
    const start = Math.floor(lo / step) * step;
    const ticks = [];
    for (let v = start; ; v += step) {
      ticks.push(Number(v.toPrecision(12)));
      if (v >= hi || ticks.length > 20) break;
    }
    return ticks;
  }

  function timeLabel(ts, span) {
    const d = new Date(ts * 1000);
    const pad = (n) => String(n).padStart(2, "0");
    const hm = pad(d.getHours()) + ":" + pad(d.getMinutes());
    return span > 86400 ? (pad(d.getMonth() + 1) + "-" + pad(d.getDate()) + " " + hm) : hm;
  }

  // lineChart draws points [{t, v}] (any order) into container. format
  // turns a value into its label. The time axis spans [from, to] when
  // given, else the data. An empty list shows emptyText instead.
  HBD.lineChart = function (container, points, format, emptyText, from, to) {
    HBD.clear(container);
    const pts = points.filter((p) => typeof p.v === "number" && isFinite(p.v)).sort((a, b) => a.t - b.t);
    if (pts.length === 0) {
      container.append(el("p", { class: "muted", text: emptyText || "No data in this range." }));
      return;
    }
    const W = Math.max(container.clientWidth || 600, 320), H = 260;
    const m = { l: 70, r: 16, t: 14, b: 28 };
    const t0 = Math.min(from || pts[0].t, pts[0].t), t1 = Math.max(to || pts[pts.length - 1].t, pts[pts.length - 1].t);
    let lo = Math.min(...pts.map((p) => p.v)), hi = Math.max(...pts.map((p) => p.v));
    const ticks = niceTicks(lo, hi, 4);
    lo = Math.min(lo, ticks[0]);
    hi = Math.max(hi, ticks[ticks.length - 1]);
    const x = (t) => m.l + (t1 === t0 ? (W - m.l - m.r) / 2 : (t - t0) / (t1 - t0) * (W - m.l - m.r));
    const y = (v) => H - m.b - (hi === lo ? 0.5 : (v - lo) / (hi - lo)) * (H - m.t - m.b);

    const svg = el("svg:svg", { viewBox: "0 0 " + W + " " + H, width: W, height: H, role: "img", "aria-label": "History chart" });
    for (const v of ticks) {
      if (v < lo || v > hi) continue;
      svg.append(el("svg:line", { class: "grid", x1: m.l, x2: W - m.r, y1: y(v), y2: y(v) }));
      svg.append(el("svg:text", { x: m.l - 6, y: y(v) + 4, "text-anchor": "end", text: format(v) }));
    }
    svg.append(el("svg:line", { class: "axis", x1: m.l, x2: W - m.r, y1: H - m.b, y2: H - m.b }));
    const span = t1 - t0;
    const nx = Math.max(2, Math.min(6, Math.floor((W - m.l - m.r) / 110)));
    for (let i = 0; i <= nx; i++) {
      const t = t0 + span * i / nx;
      if (span === 0 && i > 0) break;
      svg.append(el("svg:text", { x: x(t), y: H - m.b + 17, "text-anchor": i === 0 ? "start" : i === nx ? "end" : "middle", text: timeLabel(t, span) }));
    }
    const line = pts.map((p, i) => (i ? "L" : "M") + x(p.t).toFixed(1) + " " + y(p.v).toFixed(1)).join(" ");
    const first = pts[0].t, last = pts[pts.length - 1].t;
    const area = line + " L" + x(last).toFixed(1) + " " + (H - m.b) + " L" + x(first).toFixed(1) + " " + (H - m.b) + " Z";
    svg.append(el("svg:path", { class: "area", d: area }));
    svg.append(el("svg:path", { class: "line", d: line }));
    if (pts.length === 1) svg.append(el("svg:circle", { class: "dot", cx: x(first), cy: y(pts[0].v), r: 3.5 }));

    // Hover: the nearest sample's value and time.
    const cursor = el("svg:line", { class: "cursor", y1: m.t, y2: H - m.b, visibility: "hidden" });
    const dot = el("svg:circle", { class: "dot", r: 4, visibility: "hidden" });
    const tip = el("svg:text", { class: "tip", visibility: "hidden" });
    svg.append(cursor, dot, tip);
    svg.addEventListener("mousemove", (ev) => {
      const r = svg.getBoundingClientRect();
      const mx = (ev.clientX - r.left) * (W / r.width);
      let best = pts[0];
      for (const p of pts) if (Math.abs(x(p.t) - mx) < Math.abs(x(best.t) - mx)) best = p;
      const bx = x(best.t), by = y(best.v);
      cursor.setAttribute("x1", bx); cursor.setAttribute("x2", bx);
      dot.setAttribute("cx", bx); dot.setAttribute("cy", by);
      tip.textContent = format(best.v) + "  ·  " + HBD.fmtTime(best.t);
      const right = bx > W / 2;
      tip.setAttribute("x", right ? bx - 8 : bx + 8);
      tip.setAttribute("y", Math.max(m.t + 12, by - 8));
      tip.setAttribute("text-anchor", right ? "end" : "start");
      for (const n of [cursor, dot, tip]) n.setAttribute("visibility", "visible");
    });
    svg.addEventListener("mouseleave", () => {
      for (const n of [cursor, dot, tip]) n.setAttribute("visibility", "hidden");
    });
    container.append(svg);
  };
})();
