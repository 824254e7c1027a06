// Small SVG time-series charts: lines (with gaps for null values) and
// stacked bars, with axes, a legend and a hover readout. Drawn with
// createElementNS; colours come from CSS classes (s1, s2, …).

import { h, s, replace, timeLabel } from "./dom.js";

const HEIGHT = 190;
const PAD = { top: 12, right: 12, bottom: 24, left: 56 };

/** Round tick values covering [0, max]. */
function ticks(max, count = 4) {
  if (!(max > 0)) return [0, 1];
  const raw = max / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const norm = raw / mag;
  const step = (norm <= 1 ? 1 : norm <= 2 ? 2 : norm <= 2.5 ? 2.5 : norm <= 5 ? 5 : 10) * mag;
  const out = [];
  for (let v = 0; v <= max + step * 0.001; v += step) out.push(v);
  if (out[out.length - 1] < max) out.push(out[out.length - 1] + step);
  return out;
}

/**
 * Draws a chart into `host` and redraws it when the host's width changes.
 * spec: {
 *   times: [ms, …] bucket starts, stepMs,
 *   series: [{label, values: [number|null, …], cls: "s1"}],
 *   kind: "line" | "bars" (stacked),
 *   format: (v) => string  (axis and readout),
 *   label: accessible name,
 * }
 */
export function chart(host, spec) {
  host.classList.add("chart");
  const plot = h("div", { class: "chart-plot" });
  const tip = h("div", { class: "chart-tip", hidden: true, "aria-hidden": "true" });
  const legend = h("ul", { class: "legend" }, spec.series.map((se) =>
    h("li", null, h("span", { class: `swatch ${se.cls}` }), se.label)));
  replace(host, plot, tip, legend);
  let width = 0;
  const draw = () => {
    const w = Math.max(240, Math.floor(plot.clientWidth || host.clientWidth || 480));
    if (w === width) return;
    width = w;
    replace(plot, render(spec, w, tip, plot));
  };
  draw();
  if (typeof ResizeObserver === "function") {
    const ro = new ResizeObserver(() => {
      if (!host.isConnected) { ro.disconnect(); return; }
      draw();
    });
    ro.observe(plot);
  }
}

function render(spec, width, tip, plot) {
  const { times, series, kind, format } = spec;
  const n = times.length;
  const iw = width - PAD.left - PAD.right;
  const ih = HEIGHT - PAD.top - PAD.bottom;
  let max = 0;
  if (kind === "bars") {
    for (let i = 0; i < n; i++) {
      let sum = 0;
      for (const se of series) sum += se.values[i] || 0;
      max = Math.max(max, sum);
    }
  } else {
    for (const se of series) for (const v of se.values) if (v !== null && v > max) max = v;
  }
  const yt = ticks(max);
  const top = yt[yt.length - 1] || 1;
  const slot = n > 0 ? iw / n : iw;
  const x = (i) => PAD.left + slot * i + slot / 2;
  const y = (v) => PAD.top + ih - (v / top) * ih;

  const svg = s("svg", {
    width, height: HEIGHT, viewBox: `0 0 ${width} ${HEIGHT}`, role: "img",
    "aria-label": spec.label, class: "chart-svg",
  });
  svg.append(s("title", null, spec.label));

  // Grid and y axis labels.
  const grid = s("g", { class: "grid" });
  for (const v of yt) {
    const yy = y(v);
    grid.append(s("line", { x1: PAD.left, x2: width - PAD.right, y1: yy, y2: yy }));
    grid.append(s("text", { x: PAD.left - 6, y: yy + 4, "text-anchor": "end", class: "axis-label" }, format(v)));
  }
  svg.append(grid);

  // X axis labels: about one per 110 px.
  const xa = s("g", { class: "x-axis" });
  const every = Math.max(1, Math.ceil(n / Math.max(1, Math.floor(iw / 110))));
  const range = n > 1 ? times[n - 1] - times[0] : 0;
  for (let i = 0; i < n; i += every) {
    xa.append(s("text", { x: x(i), y: HEIGHT - 6, "text-anchor": "middle", class: "axis-label" }, timeLabel(times[i], range)));
  }
  svg.append(xa);

  if (kind === "bars") {
    const bw = Math.max(1, slot * 0.72);
    const g = s("g", { class: "bars" });
    for (let i = 0; i < n; i++) {
      let acc = 0;
      for (const se of series) {
        const v = se.values[i] || 0;
        if (v <= 0) continue;
        const y0 = y(acc), y1 = y(acc + v);
        g.append(s("rect", { x: x(i) - bw / 2, y: y1, width: bw, height: Math.max(0.5, y0 - y1), class: `chart-bar ${se.cls}` }));
        acc += v;
      }
    }
    svg.append(g);
  } else {
    for (const se of series) {
      const g = s("g", { class: `series ${se.cls}` });
      let d = "";
      let run = [];
      const flush = () => {
        if (run.length === 1) {
          g.append(s("circle", { cx: run[0][0], cy: run[0][1], r: 2.5, class: `dot ${se.cls}` }));
        } else if (run.length > 1) {
          d += "M" + run.map(([a, b]) => `${a.toFixed(1)},${b.toFixed(1)}`).join("L");
        }
        run = [];
      };
      se.values.forEach((v, i) => {
        if (v === null || v === undefined) flush();
        else run.push([x(i), y(v)]);
      });
      flush();
      if (d) g.prepend(s("path", { d, class: `line ${se.cls}` }));
      svg.append(g);
    }
  }

  // Hover readout.
  const guide = s("line", { class: "guide", x1: 0, x2: 0, y1: PAD.top, y2: PAD.top + ih, visibility: "hidden" });
  svg.append(guide);
  const hit = s("rect", { x: PAD.left, y: PAD.top, width: iw, height: ih, class: "hit" });
  svg.append(hit);
  const hide = () => { guide.setAttribute("visibility", "hidden"); tip.hidden = true; };
  hit.addEventListener("pointerleave", hide);
  hit.addEventListener("pointermove", (ev) => {
    const box = svg.getBoundingClientRect();
    const px = ev.clientX - box.left;
    const i = Math.min(n - 1, Math.max(0, Math.floor((px - PAD.left) / slot)));
    if (n === 0) return;
    guide.setAttribute("x1", x(i));
    guide.setAttribute("x2", x(i));
    guide.setAttribute("visibility", "visible");
    replace(tip,
      h("div", { class: "tip-time", text: timeLabel(times[i], Infinity) }),
      series.map((se) => h("div", null, h("span", { class: `swatch ${se.cls}` }), `${se.label}: `,
        h("strong", { text: se.values[i] === null || se.values[i] === undefined ? "—" : format(se.values[i]) }))));
    tip.hidden = false;
    const left = x(i) + 12;
    const flip = left + 180 > width;
    tip.style.left = flip ? "auto" : `${left}px`;
    tip.style.right = flip ? `${width - x(i) + 12}px` : "auto";
    tip.style.top = `${PAD.top}px`;
  });
  return svg;
}
