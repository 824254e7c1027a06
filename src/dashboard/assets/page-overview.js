// Overview: cluster-wide totals and charts over a time range, and the top
// keys, models and providers of that range.

import { api } from "./api.js";
import { h, replace, table, empty, section, num, compact, usdMicros, duration } from "./dom.js";
import { chart } from "./charts.js";
import { loadError } from "./ui.js";
import { names } from "./names.js";

const RANGES = [
  { id: "15m", label: "15 min", ms: 15 * 60e3, step: 15e3 },
  { id: "1h", label: "1 hour", ms: 3600e3, step: 60e3 },
  { id: "24h", label: "24 hours", ms: 86400e3, step: 900e3 },
  { id: "7d", label: "7 days", ms: 7 * 86400e3, step: 2 * 3600e3 },
];

let rangeId = "1h";
let sortBy = "requests";

export async function overviewPage(root, ctx) {
  const fromParams = ctx.params.get("range");
  if (RANGES.some((r) => r.id === fromParams)) rangeId = fromParams;

  const picker = h("div", { class: "segmented", role: "group", "aria-label": "Time range", testid: "range-picker" },
    RANGES.map((r) => h("button", {
      type: "button", class: "seg", testid: `range-${r.id}`, dataset: { range: r.id },
      "aria-pressed": r.id === rangeId ? "true" : "false", text: r.label,
    })));
  const refresh = h("button", { type: "button", class: "btn small", testid: "overview-refresh", text: "Refresh" });
  const stamp = h("span", { class: "muted small", testid: "overview-updated" });
  const totals = h("div", { class: "stats", testid: "totals" });
  const missing = h("div", { testid: "missing-nodes" });
  const charts = h("div", { class: "charts" });
  const tops = h("div", { class: "tops" });

  replace(root,
    h("div", { class: "page-head" },
      h("h1", { text: "Overview" }),
      h("div", { class: "page-actions" }, picker, refresh, stamp)),
    missing, totals, charts, tops);

  let timer = null;
  let busy = false;
  const load = async () => {
    if (busy) return;
    busy = true;
    const range = RANGES.find((r) => r.id === rangeId);
    const until = Date.now();
    const since = until - range.ms;
    root.dataset.loading = "true";
    try {
      const [ov, byKey, byModel, byProvider, nm] = await Promise.all([
        api.get("/api/overview", { since, until, step_ms: range.step }),
        api.get("/api/spend", { group_by: "key", since, until }),
        api.get("/api/spend", { group_by: "model", since, until }),
        api.get("/api/spend", { group_by: "provider", since, until }),
        names(),
      ]);
      if (!root.isConnected) return;
      renderMissing(missing, ov.missing_nodes, ov.truncated);
      renderTotals(totals, ov.totals || {});
      renderCharts(charts, ov);
      renderTops(tops, { byKey, byModel, byProvider, nm, since });
      stamp.textContent = `Updated ${new Date().toLocaleTimeString()}`;
      root.dataset.loaded = String(Date.now());
    } catch (e) {
      if (!root.isConnected) return;
      replace(charts, loadError(e, load));
    } finally {
      busy = false;
      delete root.dataset.loading;
    }
  };

  picker.addEventListener("click", (ev) => {
    const b = ev.target.closest("button[data-range]");
    if (!b) return;
    rangeId = b.dataset.range;
    for (const x of picker.querySelectorAll("button")) x.setAttribute("aria-pressed", x === b ? "true" : "false");
    load();
  });
  refresh.addEventListener("click", load);

  await load();
  timer = setInterval(() => { if (!document.hidden) load(); }, 15000);
  return () => clearInterval(timer);
}

function renderMissing(box, missingNodes, truncated) {
  replace(box,
    Array.isArray(missingNodes) && missingNodes.length
      ? h("p", { class: "alert alert-warn", role: "status" }, `These nodes did not answer; their requests are not counted: ${missingNodes.join(", ")}`)
      : null,
    truncated
      ? h("p", { class: "alert alert-warn", role: "status", text: "Too many requests in this range to scan them all: the figures cover only part of it. Pick a shorter range." })
      : null);
}

function stat(label, value, testid, sub) {
  return h("div", { class: "stat" },
    h("div", { class: "stat-label", text: label }),
    h("div", { class: "stat-value", testid, text: value }),
    sub ? h("div", { class: "stat-sub muted", text: sub }) : null);
}

function renderTotals(box, t) {
  const req = t.requests || 0;
  const errRate = req ? `${((100 * (t.errors || 0)) / req).toFixed(1)}% of requests` : "no requests";
  const tokens = (t.prompt_tokens || 0) + (t.completion_tokens || 0);
  replace(box,
    stat("Requests", num(req), "total-requests", t.cache_hits ? `${num(t.cache_hits)} from cache` : null),
    stat("Errors", num(t.errors || 0), "total-errors", errRate),
    stat("Tokens", compact(tokens), "total-tokens", `${compact(t.prompt_tokens || 0)} in · ${compact(t.completion_tokens || 0)} out`),
    stat("Spend", usdMicros(t.cost_micros || 0), "total-cost"),
    stat("Latency p50", duration(t.p50_us), "total-p50"),
    stat("Latency p99", duration(t.p99_us), "total-p99"));
}

function renderCharts(box, ov) {
  const series = ov.series || [];
  const times = series.map((b) => b.bucket_start_ms);
  const col = (k) => series.map((b) => (b[k] === undefined ? null : b[k]));
  const ms = (k) => series.map((b) => (b[k] === null || b[k] === undefined ? null : b[k] / 1000));
  const panel = (title, testid) => {
    const host = h("div", { class: "chart-host" });
    box.append(h("figure", { class: "card chart-card", testid }, h("figcaption", { text: title }), host));
    return host;
  };
  replace(box);
  const intFmt = (v) => compact(v);
  chart(panel("Requests and errors", "chart-requests"), {
    times, kind: "line", label: "Requests and errors over time", format: intFmt,
    series: [{ label: "Requests", values: col("requests"), cls: "s1" }, { label: "Errors", values: col("errors"), cls: "s4" }],
  });
  chart(panel("Latency", "chart-latency"), {
    times, kind: "line", label: "Latency p50 and p99 over time", format: (v) => (v === 0 ? "0" : duration(v * 1000)),
    series: [{ label: "p50", values: ms("p50_us"), cls: "s2" }, { label: "p99", values: ms("p99_us"), cls: "s3" }],
  });
  chart(panel("Tokens", "chart-tokens"), {
    times, kind: "bars", label: "Prompt and completion tokens over time", format: intFmt,
    series: [{ label: "Prompt", values: col("prompt_tokens"), cls: "s1" }, { label: "Completion", values: col("completion_tokens"), cls: "s5" }],
  });
  chart(panel("Spend", "chart-cost"), {
    times, kind: "bars", label: "Spend over time", format: (v) => usdMicros(v * 1e6),
    series: [{ label: "Spend (USD)", values: series.map((b) => (b.cost_micros || 0) / 1e6), cls: "s2" }],
  });
}

function renderTops(box, { byKey, byModel, byProvider, nm }) {
  const sortButtons = h("div", { class: "segmented small", role: "group", "aria-label": "Sort top lists by" },
    [["requests", "Requests"], ["cost", "Cost"]].map(([id, label]) => h("button", {
      type: "button", class: "seg", testid: `sort-${id}`, "aria-pressed": sortBy === id ? "true" : "false", text: label,
      onclick: () => { sortBy = id; renderTops(box, { byKey, byModel, byProvider, nm }); },
    })));
  const sorted = (rows) => [...(rows || [])].sort((a, b) =>
    sortBy === "cost" ? (b.cost_micros - a.cost_micros) || (b.requests - a.requests) : (b.requests - a.requests) || (b.cost_micros - a.cost_micros)).slice(0, 10);
  const keyName = (id) => {
    if (id === null || id === undefined) return h("span", { class: "muted", text: "anonymous" });
    const k = nm.keys.get(id);
    return h("a", { href: `#/logs?virtual_key=${encodeURIComponent(id)}`, title: id }, k ? k.name : id);
  };
  const plain = (param) => (g) => g === null || g === undefined
    ? h("span", { class: "muted", text: "none" })
    : h("a", { href: `#/logs?${param}=${encodeURIComponent(g)}` }, g);
  const top = (title, rows, cellGroup, testid, groupLabel) => {
    const data = sorted(rows);
    const body = data.length
      ? table([
        { label: groupLabel, cell: (r) => cellGroup(r.group) },
        { label: "Requests", class: "num", cell: (r) => num(r.requests) },
        { label: "Tokens", class: "num", cell: (r) => compact((r.prompt_tokens || 0) + (r.completion_tokens || 0)) },
        { label: "Cost", class: "num", cell: (r) => usdMicros(r.cost_micros) },
      ], data, { testid, rowAttrs: () => ({ testid: "top-row" }) })
      : empty("No requests in this range.", h("p", { class: "muted" }, "Create a key on the ", h("a", { href: "#/keys", text: "Keys" }),
        " page and send requests through the gateway with it, or pick a longer range."));
    return section(title, null, body);
  };
  replace(box,
    h("div", { class: "tops-head" }, h("h2", { text: "Top of the range" }), sortButtons),
    h("div", { class: "tops-grid" },
      top("Keys", byKey.data, keyName, "top-keys", "Key"),
      top("Models", byModel.data, plain("model"), "top-models", "Model"),
      top("Providers", byProvider.data, plain("provider"), "top-providers", "Provider")));
}
