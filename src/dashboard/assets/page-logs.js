// Request logs and tool logs: filters, pages ("Older"), one record's detail.

import { api, listAll } from "./api.js";
import { h, replace, table, empty, num, usdMicros, duration, datetime, shortTime, badge, code } from "./dom.js";
import { modal, details, field, checkbox, loadError } from "./ui.js";
import { names } from "./names.js";

const ENDPOINTS = ["chat", "completions", "embeddings", "responses", "anthropic_messages", "gemini_generate_content"];

function tabs(current) {
  return h("nav", { class: "tabs", "aria-label": "Log kind" },
    h("a", { href: "#/logs", testid: "tab-requests", "aria-current": current === "requests" ? "page" : null, text: "Requests" }),
    h("a", { href: "#/tool-logs", testid: "tab-tools", "aria-current": current === "tools" ? "page" : null, text: "Tool calls" }));
}

/** Loads the current page again, newest records first. */
function refreshButton(testid) {
  return h("button", { type: "button", class: "btn small", testid, text: "Refresh",
    onclick: () => window.dispatchEvent(new HashChangeEvent("hashchange")) });
}

function statusBadge(status) {
  const kind = status >= 500 ? "error" : status >= 400 ? "warn" : status >= 200 && status < 300 ? "ok" : "neutral";
  return badge(String(status), kind);
}

function select(options, value, attrs) {
  return h("select", attrs, options.map(([v, label]) => h("option", { value: v, selected: v === value, text: label })));
}

/** Reads a filter form into a query object with only the set values. */
function formQuery(form) {
  const q = {};
  for (const el of form.elements) {
    if (!el.name) continue;
    if (el.type === "checkbox") { if (el.checked) q[el.name] = "true"; }
    else if (el.value.trim()) q[el.name] = el.value.trim();
  }
  return q;
}

function setHash(base, q) {
  const qs = new URLSearchParams(q).toString();
  const target = qs ? `${base}?${qs}` : base;
  if (location.hash === target) window.dispatchEvent(new HashChangeEvent("hashchange"));
  else location.hash = target;
}

// ---------- request logs ----------

const LOG_FILTERS = ["model", "provider", "virtual_key", "status", "endpoint", "key"];

export async function logsPage(root, ctx) {
  const params = ctx.params;
  const nm = await names();
  const q = {};
  for (const f of LOG_FILTERS) if (params.get(f)) q[f] = params.get(f);
  const pageSize = Math.min(1000, Math.max(1, Number(params.get("limit")) || 50));

  const keyOptions = [["", "Any key"], ...[...nm.keys.values()].map((k) => [k.id, `${k.name} (${k.id})`])];
  if (q.virtual_key && !nm.keys.has(q.virtual_key)) keyOptions.push([q.virtual_key, q.virtual_key]);
  const form = h("form", { class: "filters", testid: "logs-filter", role: "search" },
    field("Model", h("input", { type: "text", testid: "filter-model", value: q.model || "", placeholder: "gpt-4o or demo/mock-1" }), { name: "model" }),
    field("Provider", h("input", { type: "text", testid: "filter-provider", value: q.provider || "", placeholder: "openai" }), { name: "provider" }),
    field("Virtual key", select(keyOptions, q.virtual_key || "", { testid: "filter-virtual_key" }), { name: "virtual_key" }),
    field("Status", select([["", "Any"], ["2xx", "2xx success"], ["4xx", "4xx client error"], ["5xx", "5xx server error"], ["429", "429 rate limited"]], q.status || "", { testid: "filter-status" }), { name: "status" }),
    field("Endpoint", select([["", "Any"], ...ENDPOINTS.map((e) => [e, e])], q.endpoint || "", { testid: "filter-endpoint" }), { name: "endpoint" }),
    h("div", { class: "filter-actions" },
      h("button", { type: "submit", class: "btn primary", testid: "filter-apply", text: "Apply" }),
      h("button", { type: "button", class: "btn", testid: "filter-clear", text: "Clear", onclick: () => setHash("#/logs", {}) })));
  if (q.key) form.append(h("input", { type: "hidden", name: "key", value: q.key }));
  if (params.get("limit")) form.append(h("input", { type: "hidden", name: "limit", value: String(pageSize) }));
  form.addEventListener("submit", (ev) => { ev.preventDefault(); setHash("#/logs", formQuery(form)); });

  const list = h("div", { class: "card flush", testid: "logs-list" });
  const more = h("div", { class: "more" });
  replace(root, h("div", { class: "page-head" }, h("h1", { text: "Logs" }), refreshButton("logs-refresh")), tabs("requests"), form, list, more);

  let rows = [];
  let cursor = null;
  let missing = [];
  const load = async (older) => {
    const page = await api.get("/api/logs", { ...q, limit: pageSize, cursor: older ? cursor : null });
    rows = older ? rows.concat(page.data || []) : page.data || [];
    cursor = page.next_cursor || null;
    missing = page.missing_nodes || [];
    render();
  };
  const render = () => {
    const clustered = rows.some((r) => r.node);
    if (!rows.length) {
      replace(list, Object.keys(q).length
        ? empty("No request matches these filters.", h("p", { class: "muted", text: "Clear a filter, or widen the status class." }))
        : empty("No requests yet.", h("p", { class: "muted" }, "Send one through the gateway, e.g. ",
          code(`curl ${location.origin}/v1/chat/completions -H 'authorization: Bearer sk-tg-…' -d '{"model":"demo/mock-1","messages":[{"role":"user","content":"hi"}]}'`)),
          h("p", { class: "muted" }, "Create a virtual key on the ", h("a", { href: "#/keys", text: "Keys" }), " page first.")));
    } else {
      replace(list,
        missing.length ? h("p", { class: "alert alert-warn", text: `Not included (did not answer): ${missing.join(", ")}` }) : null,
        table([
          { label: "Time", cell: (r) => h("button", { type: "button", class: "link nowrap", testid: "log-open", text: shortTime(r.ts_ms), title: datetime(r.ts_ms), onclick: () => logDetail(r, nm) }) },
          { label: "Status", cell: (r) => statusBadge(r.status) },
          { label: "Endpoint", cell: (r) => r.endpoint },
          { label: "Model", cell: (r) => h("span", { class: "cell-model" },
            r.requested_model ? h("span", { testid: "log-model", text: r.requested_model }) : h("span", { class: "muted", testid: "log-model", text: "—" }),
            r.provider && r.model && `${r.provider}/${r.model}` !== r.requested_model
              ? h("span", { class: "muted small block", text: `→ ${r.provider}/${r.model}` }) : null) },
          { label: "Key", cell: (r) => keyCell(r.virtual_key, nm, r.status) },
          { label: "Tokens", class: "num", cell: (r) => num(r.usage ? r.usage.total_tokens : 0) },
          { label: "Cost", class: "num", cell: (r) => usdMicros(r.cost_micros) },
          { label: "Latency", class: "num", cell: (r) => duration(r.latency_us) },
          { label: "Cache", cell: (r) => (r.cache ? r.cache.status : "—") },
          clustered ? { label: "Node", cell: (r) => h("code", { class: "small", text: r.node || "" }) } : null,
        ].filter(Boolean), rows, { testid: "logs-table", rowAttrs: (r) => ({ testid: "log-row", dataset: { id: r.id, status: String(r.status) } }) }));
    }
    replace(more, cursor
      ? h("button", { type: "button", class: "btn", testid: "logs-older", text: "Older", onclick: async (ev) => {
        ev.target.disabled = true;
        try { await load(true); } catch (e) { replace(more, loadError(e)); }
      } })
      : rows.length ? h("p", { class: "muted small", testid: "logs-end", text: "End of the log." }) : null);
  };
  try {
    await load(false);
  } catch (e) {
    if (e.status === 400) {
      replace(list, h("p", { class: "form-error", role: "alert", testid: "form-error", text: e.message }));
      return undefined;
    }
    throw e;
  }
  return undefined;
}

function keyCell(id, nm, status) {
  if (!id) return h("span", { class: "muted", text: status === 401 ? "no valid key" : "anonymous" });
  const k = nm.keys.get(id);
  return h("span", { title: id, text: k ? k.name : id });
}

/** The id of the node serving the dashboard (a node alone names none in its records). */
function thisNode() {
  const el = document.getElementById("node-id");
  return (el && el.textContent) || "this node";
}

function logDetail(r, nm) {
  const k = r.virtual_key ? nm.keys.get(r.virtual_key) : null;
  const t = r.team ? nm.teams.get(r.team) : null;
  const c = r.customer ? nm.customers.get(r.customer) : null;
  const named = (obj, id) => (id ? (obj ? `${obj.name} (${id})` : id) : null);
  const u = r.usage || {};
  const target = r.target_index === 0 ? "0 — the requested model" : `${r.target_index} — fallback ${r.target_index}`;
  const cache = r.cache
    ? [r.cache.status, r.cache.saved_micros ? `saved ${usdMicros(r.cache.saved_micros)}` : null,
      r.cache.similarity !== null && r.cache.similarity !== undefined ? `similarity ${Number(r.cache.similarity).toFixed(3)}` : null].filter(Boolean).join(", ")
    : "off";
  modal({
    title: "Request",
    testid: "log-detail",
    wide: true,
    body: h("div", { class: "detail-grid" },
      h("div", null, h("h3", { text: "Request" }),
      details([
        ["Id", code(r.id), "id"],
        ["Time", datetime(r.ts_ms), "time"],
        ["Node", r.node ? code(r.node) : h("span", null, code(thisNode()), " (this node)"), "node"],
        ["Endpoint", r.endpoint, "endpoint"],
        ["Requested model", r.requested_model, "requested_model"],
        ["Provider", r.provider, "provider"],
        ["Upstream model", r.model, "model"],
        ["Provider key", r.provider_key, "provider_key"],
        ["Virtual key", named(k, r.virtual_key), "virtual_key"],
        ["Team", named(t, r.team), "team"],
        ["Customer", named(c, r.customer), "customer"],
        ["Stream", r.stream ? "yes" : "no", "stream"],
      ])),
      h("div", null, h("h3", { text: "Outcome" }),
      details([
        ["Status", statusBadge(r.status), "status"],
        ["Error", r.error ? h("pre", { class: "pre", text: r.error }) : null, "error"],
        ["Attempts", num(r.attempts), "attempts"],
        ["Target", target, "target_index"],
        ["Cache", cache, "cache"],
        ["Cost", usdMicros(r.cost_micros), "cost"],
      ]),
      h("h3", { text: "Timing" }),
      details([
        ["Latency (total)", duration(r.latency_us), "latency"],
        ["Upstream", duration(r.upstream_us), "upstream"],
        ["Time to first token", duration(r.ttft_us), "ttft"],
        ["Gateway overhead", duration(r.overhead_us), "overhead"],
      ]),
      h("h3", { text: "Usage" }),
      details([
        ["Prompt tokens", num(u.prompt_tokens), "prompt_tokens"],
        ["Completion tokens", num(u.completion_tokens), "completion_tokens"],
        ["Total tokens", num(u.total_tokens), "total_tokens"],
        ["Cached tokens", num(u.cached_tokens), "cached_tokens"],
      ]))),
  });
}

// ---------- tool logs ----------

export async function toolLogsPage(root, ctx) {
  const params = ctx.params;
  const q = {};
  for (const f of ["server", "tool", "is_error", "virtual_key", "parent_request"]) if (params.get(f)) q[f] = params.get(f);
  const [servers, nm] = await Promise.all([listAll("/api/mcp/servers").catch(() => []), names()]);
  const serverOptions = [["", "Any server"], ...servers.map((s) => [s.id, s.id])];
  if (q.server && !servers.some((s) => s.id === q.server)) serverOptions.push([q.server, q.server]);
  const errors = checkbox("Errors only", { name: "is_error", checked: q.is_error === "true", testid: "filter-errors" });
  const form = h("form", { class: "filters", testid: "tool-logs-filter", role: "search" },
    field("Server", select(serverOptions, q.server || "", { testid: "filter-server" }), { name: "server" }),
    field("Tool", h("input", { type: "text", testid: "filter-tool", value: q.tool || "", placeholder: "demo-echo", title: "The tool's full name, server-tool" }), { name: "tool" }),
    errors,
    h("div", { class: "filter-actions" },
      h("button", { type: "submit", class: "btn primary", testid: "filter-apply", text: "Apply" }),
      h("button", { type: "button", class: "btn", testid: "filter-clear", text: "Clear", onclick: () => setHash("#/tool-logs", {}) })));
  for (const f of ["virtual_key", "parent_request"]) if (q[f]) form.append(h("input", { type: "hidden", name: f, value: q[f] }));
  form.addEventListener("submit", (ev) => { ev.preventDefault(); setHash("#/tool-logs", formQuery(form)); });

  const list = h("div", { class: "card flush", testid: "tool-logs-list" });
  const more = h("div", { class: "more" });
  replace(root, h("div", { class: "page-head" }, h("h1", { text: "Logs" }), refreshButton("tool-logs-refresh")), tabs("tools"), form, list, more);

  let rows = [];
  let cursor = null;
  const load = async (older) => {
    const page = await api.get("/api/tool-logs", { ...q, limit: 50, cursor: older ? cursor : null });
    rows = older ? rows.concat(page.data || []) : page.data || [];
    cursor = page.next_cursor || null;
    render();
  };
  const render = () => {
    if (!rows.length) {
      replace(list, Object.keys(q).length
        ? empty("No tool call matches these filters.")
        : empty("No tool calls yet.", h("p", { class: "muted" }, "Tools of MCP servers run through ", code("/mcp"),
          " or in agent mode are logged here. Register a server on the ", h("a", { href: "#/mcp", text: "MCP" }), " page.")));
    } else {
      replace(list, table([
        { label: "Time", cell: (r) => h("button", { type: "button", class: "link nowrap", testid: "tool-log-open", text: shortTime(r.ts_ms), title: datetime(r.ts_ms), onclick: () => toolDetail(r, nm) }) },
        { label: "Tool", cell: (r) => h("span", { testid: "tool-log-tool", text: r.tool }) },
        { label: "Server", cell: (r) => r.server },
        { label: "Result", cell: (r) => (r.is_error ? badge("error", "error") : badge("ok", "ok")) },
        { label: "Latency", class: "num", cell: (r) => duration(r.latency_us) },
        { label: "Key", cell: (r) => keyCell(r.virtual_key, nm) },
        { label: "Cost", class: "num", cell: (r) => usdMicros(r.cost_micros) },
      ], rows, { testid: "tool-logs-table", rowAttrs: (r) => ({ testid: "tool-log-row", dataset: { id: r.id } }) }));
    }
    replace(more, cursor
      ? h("button", { type: "button", class: "btn", testid: "tool-logs-older", text: "Older", onclick: async (ev) => {
        ev.target.disabled = true;
        try { await load(true); } catch (e) { replace(more, loadError(e)); }
      } })
      : null);
  };
  await load(false);
  return undefined;
}

/** JSON text pretty-printed when it parses, as it is otherwise. */
function pretty(text) {
  if (text === null || text === undefined) return "";
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    return String(text);
  }
}

function toolDetail(r, nm) {
  const k = r.virtual_key ? nm.keys.get(r.virtual_key) : null;
  modal({
    title: `Tool call ${r.tool}`,
    testid: "tool-log-detail",
    wide: true,
    body: [
      details([
        ["Id", code(r.id), "id"],
        ["Time", datetime(r.ts_ms), "time"],
        ["Tool", r.tool, "tool"],
        ["Server", r.server, "server"],
        ["Result", r.is_error ? badge("error", "error") : badge("ok", "ok"), "is_error"],
        ["Latency", duration(r.latency_us), "latency"],
        ["Virtual key", r.virtual_key ? (k ? `${k.name} (${r.virtual_key})` : r.virtual_key) : "none", "virtual_key"],
        ["Parent request", r.parent_request ? code(r.parent_request) : "none (a direct /mcp call)", "parent_request"],
        ["Cost", usdMicros(r.cost_micros), "cost"],
      ], "tool-detail"),
      h("h3", { text: "Arguments" }),
      h("pre", { class: "pre", testid: "tool-args", text: pretty(r.arguments) }),
      h("h3", { text: "Result" }),
      h("pre", { class: "pre", testid: "tool-result", text: pretty(r.result) }),
    ],
  });
}
