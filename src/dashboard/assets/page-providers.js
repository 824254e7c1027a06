// Providers and their keys (secrets come redacted from the server), the
// health of every route, and the routing rules.

import { api, listAll, seg } from "./api.js";
import { h, replace, table, empty, section, badge, code, list, ms, datetime, splitList } from "./dom.js";
import { modal, field, clearErrors, showError, formError, confirm, toast, loadError } from "./ui.js";

const KINDS = ["openai", "azure", "anthropic", "gemini", "groq", "mistral", "cerebras", "deepseek", "xai", "together",
  "fireworks", "openrouter", "perplexity", "ollama", "vllm", "huggingface", "nebius", "sambanova", "novita",
  "hyperbolic", "dashscope", "moonshot", "zhipu", "databricks", "lmstudio", "llamacpp", "sglang", "mock", "openai_compatible"];

const STATE_KIND = { healthy: "ok", degraded: "warn", failed: "error", recovering: "info" };

export async function providersPage(root) {
  const add = h("button", { type: "button", class: "btn primary", testid: "new-provider", text: "Add provider" });
  const provBox = h("div");
  const routesBox = h("div");
  const rulesBox = h("div");
  replace(root,
    h("div", { class: "page-head" }, h("h1", { text: "Providers" }), h("div", { class: "page-actions" }, add)),
    section("Providers and their keys", null, provBox),
    section("Route health", null, h("p", { class: "muted small", text: "Every (provider, key, model) this node has used or heard of from its peers. The router prefers the higher score and routes around failed routes." }), routesBox),
    section("Routing rules", null, rulesBox));
  const reload = () => providersPage(root);
  add.addEventListener("click", () => providerForm(reload));

  const [providers, routes, rules] = await Promise.all([
    listAll("/api/providers"),
    api.get("/api/routes").then((r) => r.data || []).catch((e) => e),
    listAll("/api/routing-rules").catch((e) => e),
  ]);

  if (!providers.length) {
    replace(provBox, empty("No provider is configured, so the gateway cannot answer any request.",
      h("p", null, "Add one in the config file, e.g. ", code('[providers.openai]  api_key = "env.OPENAI_API_KEY"'),
        ", or here with “Add provider” (PUT /api/providers/{name})."),
      h("p", null, "To try the gateway without an account, start it with ", code("tollgate serve --demo"), ": a mock provider “demo” answers every request.")));
  } else {
    replace(provBox, table([
      { label: "Name", cell: (p) => h("div", null, h("span", { class: "strong", testid: "provider-name", text: p.name }), h("div", { class: "muted small", text: p.source === "api" ? "set through the API" : "config file" })) },
      { label: "Kind", cell: (p) => (p.config && p.config.kind) || p.name },
      { label: "Base URL", cell: (p) => (p.config && p.config.base_url ? code(p.config.base_url) : h("span", { class: "muted small", text: "preset default" })) },
      { label: "Models", cell: (p) => h("span", { class: "small", text: p.config && p.config.models ? list(p.config.models) : "preset catalog" }) },
      { label: "Keys", cell: (p) => keysCell(p.config || {}) },
      { label: "Actions", class: "actions", cell: (p) => (p.source === "api"
        ? h("div", { class: "row-actions" },
          h("button", { type: "button", class: "btn small danger-ghost", testid: "provider-delete", text: "Delete", "aria-label": `Delete provider ${p.name}`, onclick: async () => {
            if (!(await confirm(`Delete provider ${p.name}?`, "Requests stop going to it from the next request."))) return;
            try { await api.del(`/api/providers/${seg(p.name)}`); toast(`Deleted provider ${p.name}.`); reload(); } catch (e) { toast(e.message, "error"); }
          } }))
        : h("span", { class: "muted small", text: "edit the config file" })) },
    ], providers, { testid: "providers-table", rowAttrs: (p) => ({ testid: "provider-row", dataset: { name: p.name } }) }));
  }

  if (routes instanceof Error) replace(routesBox, loadError(routes));
  else if (!routes.length) replace(routesBox, empty("No route has been used yet.", h("p", { class: "muted", text: "Routes appear after the first request to a provider." })));
  else {
    const sorted = [...routes].sort((a, b) => `${a.provider}/${a.model}/${a.key}`.localeCompare(`${b.provider}/${b.model}/${b.key}`));
    replace(routesBox, table([
      { label: "Provider", cell: (r) => r.provider },
      { label: "Model", cell: (r) => r.model },
      { label: "Key", cell: (r) => r.key },
      { label: "State", cell: (r) => badge(r.state, STATE_KIND[r.state]) },
      { label: "Error rate", class: "num", cell: (r) => `${(100 * (r.errors || 0)).toFixed(1)}%` },
      { label: "Latency", class: "num", cell: (r) => ms(r.latency_ms) },
      { label: "In flight", class: "num", cell: (r) => String(r.in_flight) },
      { label: "Score", class: "num", cell: (r) => Number(r.score).toFixed(3) },
    ], sorted, { testid: "routes-table", rowAttrs: (r) => ({ testid: "route-row", dataset: { state: r.state } }) }));
  }

  if (rules instanceof Error) replace(rulesBox, loadError(rules));
  else if (!rules.length) replace(rulesBox, empty("No routing rules.", h("p", { class: "muted" }, "Rules send matching requests (a CEL condition) to weighted targets: ", code("POST /api/routing-rules"), " — see docs/routing.md.")));
  else {
    const sorted = [...rules].sort((a, b) => a.priority - b.priority);
    replace(rulesBox, table([
      { label: "Priority", class: "num", cell: (r) => String(r.priority) },
      { label: "Name", cell: (r) => h("span", { class: "strong", text: r.name }) },
      { label: "Scope", cell: (r) => (r.scope && r.scope.kind !== "global" ? `${r.scope.kind} ${r.scope.id}` : "everyone") },
      { label: "Condition", cell: (r) => code(r.condition) },
      { label: "Targets", cell: (r) => (r.targets || []).map((t) => `${t.model} ×${t.weight}`).join(", ") },
      { label: "Enabled", cell: (r) => (r.enabled ? badge("on", "ok") : badge("off", "neutral")) },
      { label: "Created", cell: (r) => datetime(r.created_at) },
    ], sorted, { testid: "rules-table", rowAttrs: (r) => ({ testid: "rule-row", dataset: { id: r.id } }) }));
  }
  return undefined;
}

function keysCell(c) {
  const keys = [];
  if (c.api_key) keys.push({ name: "api_key", secret: c.api_key, weight: 1, models: [] });
  for (const [i, k] of (c.keys || []).entries()) keys.push({ name: k.name || `key-${i + 1}`, secret: k.secret, weight: k.weight, models: k.models || [] });
  if (!keys.length) return h("span", { class: "muted small", text: "none (no auth, or from the environment)" });
  return h("ul", { class: "plain small", testid: "provider-keys" }, keys.map((k) => h("li", null,
    h("span", { class: "strong", text: k.name }), " ", code(k.secret),
    ` weight ${k.weight}`, k.models.length ? ` · ${k.models.join(", ")}` : "")));
}

function providerForm(reload) {
  const name = field("Name", h("input", { type: "text", testid: "provider-field-name", required: true, autocomplete: "off", placeholder: "openai" }), { name: "name", hint: "Used as the prefix of models: name/model." });
  const kind = field("Kind", h("select", { testid: "provider-field-kind" }, h("option", { value: "", text: "same as the name" }), KINDS.map((k) => h("option", { value: k, text: k }))), { name: "kind" });
  const base = field("Base URL", h("input", { type: "url", testid: "provider-field-base_url", autocomplete: "off", placeholder: "the preset's" }), { name: "base_url", hint: "Up to and including the version segment, e.g. …/v1. Empty: the preset's." });
  const key = field("API key", h("input", { type: "text", testid: "provider-field-api_key", autocomplete: "off", placeholder: "env.OPENAI_API_KEY" }), { name: "api_key", hint: "Prefer env.VAR (the variable must be set on the node): a literal secret is stored and replicated as written." });
  const models = field("Models", h("input", { type: "text", testid: "provider-field-models", autocomplete: "off" }), { name: "models", hint: "Comma-separated; empty: the preset's catalog." });
  const submit = h("button", { type: "submit", class: "btn primary", testid: "form-submit", text: "Save provider" });
  const cancel = h("button", { type: "button", class: "btn", testid: "form-cancel", text: "Cancel" });
  const form = h("form", { class: "form-grid", testid: "provider-form", novalidate: true }, name, kind, base, key, models, formError(), h("div", { class: "form-actions" }, cancel, submit));
  const m = modal({ title: "Add provider", testid: "provider-form-dialog", body: form, wide: true });
  cancel.addEventListener("click", () => m.close("cancel"));
  name.input.focus();
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    clearErrors(form);
    const n = name.input.value.trim();
    if (!n) { showError(form, { message: "name: give the provider a name" }); return; }
    const body = {};
    if (kind.input.value) body.kind = kind.input.value;
    if (base.input.value.trim()) body.base_url = base.input.value.trim();
    if (key.input.value.trim()) body.api_key = key.input.value.trim();
    const ml = splitList(models.input.value);
    if (ml.length) body.models = ml;
    submit.disabled = true;
    try {
      await api.put(`/api/providers/${seg(n)}`, body);
      m.close("saved");
      toast(`Provider ${n} saved.`);
      reload();
    } catch (e) {
      showError(form, e);
    } finally {
      submit.disabled = false;
    }
  });
}
