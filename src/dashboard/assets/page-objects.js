// Customers, teams and virtual keys: list, create, edit, rotate,
// (de)activate and delete; budgets with their usage and time to reset.

import { api, listAll, seg } from "./api.js";
import { h, replace, table, empty, badge, usd, span, datetime, list, prefix, splitList, toLocalInput, fromLocalInput, nextId } from "./dom.js";
import { modal, field, checkbox, clearErrors, showError, formError, confirm, showSecret, toast } from "./ui.js";
import { invalidateNames } from "./names.js";

const PERIODS = [["1m", "minute"], ["1h", "hour"], ["1d", "day"], ["1w", "week"], ["1M", "month"], ["1Q", "quarter"], ["1Y", "year"]];
const periodName = (p) => (PERIODS.find(([v]) => v === p) || [p, p])[1];

const KINDS = {
  keys: { one: "key", title: "Virtual keys", api: "/api/keys" },
  teams: { one: "team", title: "Teams", api: "/api/teams" },
  customers: { one: "customer", title: "Customers", api: "/api/customers" },
};

export const keysPage = (root) => objectsPage(root, "keys");
export const teamsPage = (root) => objectsPage(root, "teams");
export const customersPage = (root) => objectsPage(root, "customers");

async function objectsPage(root, kind) {
  const meta = KINDS[kind];
  const [keys, teams, customers] = await Promise.all([
    listAll("/api/keys"),
    listAll("/api/teams"),
    listAll("/api/customers"),
  ]);
  const ctx = { kind, meta, keys, teams, customers, root,
    teamById: new Map(teams.map((t) => [t.id, t])),
    customerById: new Map(customers.map((c) => [c.id, c])) };
  // Newest first: what was just created is at the top.
  const rows = [...(kind === "keys" ? keys : kind === "teams" ? teams : customers)].sort((a, b) => (b.created_at || 0) - (a.created_at || 0));

  const add = h("button", { type: "button", class: "btn primary", testid: "new-object", text: `New ${meta.one}` });
  add.addEventListener("click", () => openForm(ctx, null));
  const body = h("div", { class: "card" });
  replace(root,
    h("div", { class: "page-head" }, h("h1", { text: meta.title }), h("div", { class: "page-actions" }, add)),
    intro(kind),
    body);

  if (!rows.length) {
    replace(body, emptyFor(kind, () => openForm(ctx, null)));
    return;
  }
  replace(body, table(columns(ctx), rows, {
    testid: `${kind}-table`,
    rowAttrs: (r) => ({ testid: "object-row", dataset: { id: r.id, active: kind === "keys" ? String(r.active) : null } }),
  }));
  // Budget usage, fetched per object that has budgets of its own (or above it, for keys).
  for (const r of rows) {
    const cell = body.querySelector(`tr[data-id="${CSS.escape(r.id)}"] [data-budgets]`);
    if (cell && hasBudgets(ctx, r)) loadBudgets(ctx, r, cell);
  }
}

function intro(kind) {
  const text = {
    keys: "Clients send a virtual key (sk-tg-…) instead of a provider's key. Each key may be limited to models and providers, and belongs to a team or a customer whose budgets also apply.",
    teams: "A team groups keys; its budgets and rate limits apply to every key in it, and to its customer's.",
    customers: "A customer is the top of the hierarchy: customer → team → key. Its budgets cover every team and key under it.",
  }[kind];
  return h("p", { class: "muted intro", text });
}

function emptyFor(kind, create) {
  const btn = (label) => h("button", { type: "button", class: "btn primary", testid: "empty-create", text: label, onclick: create });
  if (kind === "keys") {
    return empty("No virtual keys yet.",
      h("p", { text: "Create a key to give a client access to the gateway: it gets a secret to send as 'Authorization: Bearer sk-tg-…'." }),
      btn("Create a key"));
  }
  if (kind === "teams") {
    return empty("No teams yet.", h("p", { text: "Create a team to share budgets and rate limits among several keys." }), btn("Create a team"));
  }
  return empty("No customers yet.", h("p", { text: "Create a customer to bill and limit several teams together." }), btn("Create a customer"));
}

function hasBudgets(ctx, r) {
  if (r.budgets && r.budgets.length) return true;
  if (ctx.kind !== "keys") return false;
  if (r.provider_budgets && Object.keys(r.provider_budgets).length) return true;
  const t = r.team_id && ctx.teamById.get(r.team_id);
  const cid = (t && t.customer_id) || r.customer_id;
  const c = cid && ctx.customerById.get(cid);
  return !!((t && t.budgets && t.budgets.length) || (c && c.budgets && c.budgets.length));
}

function columns(ctx) {
  const { kind } = ctx;
  const nameCell = (r) => h("span", { class: "strong", testid: "object-name", text: r.name });
  const idCell = (r) => h("code", { class: "small muted nowrap", text: r.id });
  const teamName = (id) => (id ? (ctx.teamById.get(id) ? ctx.teamById.get(id).name : id) : null);
  const custName = (id) => (id ? (ctx.customerById.get(id) ? ctx.customerById.get(id).name : id) : null);
  const budgetCell = (r) => h("div", { class: "budgets-cell", dataset: { budgets: "" } },
    hasBudgets(ctx, r) ? h("span", { class: "muted small", text: "…" }) : h("span", { class: "muted small", text: "no budget" }));
  const limitsCell = (r) => (r.rate_limits && r.rate_limits.length ? r.rate_limits.map(rateText).join("; ") : h("span", { class: "muted small", text: "none" }));
  const actions = (r) => h("div", null, h("div", { class: "row-actions" }, actionButtons(ctx, r)),
    h("p", { class: "field-error small", role: "alert", testid: "row-error" }));
  if (kind === "keys") {
    return [
      { label: "Key", cell: (r) => h("div", null, nameCell(r),
        h("div", { class: "key-ids" }, h("code", { class: "nowrap", testid: "key-prefix", title: "The secret's first characters", text: prefix(r.secret_prefix) }), " ", idCell(r))) },
      { label: "State", cell: (r) => keyState(r) },
      { label: "Team / customer", cell: (r) => {
        const t = teamName(r.team_id);
        const c = custName(r.customer_id);
        return t || c ? h("div", null, t ? h("div", { testid: "key-team", text: `team ${t}` }) : null, c ? h("div", { text: `customer ${c}` }) : null)
          : h("span", { class: "muted small", text: "none" });
      } },
      { label: "May use", cell: (r) => h("div", { class: "small may-use" },
        h("div", null, h("span", { class: "muted", text: "models " }), list(r.models)),
        h("div", null, h("span", { class: "muted", text: "providers " }), list(r.providers))) },
      { label: "Budgets", cell: budgetCell },
      { label: "Actions", class: "actions", cell: actions },
    ];
  }
  if (kind === "teams") {
    return [
      { label: "Name", cell: (r) => h("div", null, nameCell(r), h("div", null, idCell(r))) },
      { label: "Customer", cell: (r) => custName(r.customer_id) || h("span", { class: "muted small", text: "none" }) },
      { label: "Keys", class: "num", cell: (r) => String(ctx.keys.filter((k) => k.team_id === r.id).length) },
      { label: "Budgets", cell: budgetCell },
      { label: "Rate limits", cell: limitsCell },
      { label: "Actions", class: "actions", cell: actions },
    ];
  }
  return [
    { label: "Name", cell: (r) => h("div", null, nameCell(r), h("div", null, idCell(r))) },
    { label: "Teams", class: "num", cell: (r) => String(ctx.teams.filter((t) => t.customer_id === r.id).length) },
    { label: "Budgets", cell: budgetCell },
    { label: "Rate limits", cell: limitsCell },
    { label: "Actions", class: "actions", cell: actions },
  ];
}

function keyState(k) {
  if (!k.active) return badge("inactive", "error");
  if (k.expires_at && k.expires_at <= Date.now()) return badge("expired", "warn");
  return h("span", null, badge("active", "ok"), k.expires_at ? h("div", { class: "muted small", text: `expires ${datetime(k.expires_at)}` }) : null);
}

function rateText(l) {
  const parts = [];
  if (l.requests !== null && l.requests !== undefined) parts.push(`${l.requests} req`);
  if (l.tokens !== null && l.tokens !== undefined) parts.push(`${l.tokens} tokens`);
  return `${parts.join(" + ") || "—"} / ${periodName(l.window)}`;
}

/** Shows a failed row action's error under that row's buttons. */
function rowError(ctx, r, e) {
  const row = ctx.root.querySelector(`tr[data-id="${CSS.escape(r.id)}"] [data-testid=row-error]`);
  if (row) row.textContent = e.message;
  else toast(e.message, "error");
}

function actionButtons(ctx, r) {
  const { kind, meta } = ctx;
  const btn = (label, testid, onclick, cls = "btn small") => h("button", { type: "button", class: cls, testid, text: label, "aria-label": `${label} ${meta.one} ${r.name}`, onclick });
  const out = [btn("Edit", "edit", () => openForm(ctx, r))];
  if (kind === "keys") {
    out.push(btn("Rotate", "rotate", () => rotate(ctx, r)));
    out.push(r.active
      ? btn("Deactivate", "toggle-active", () => setActive(ctx, r, false))
      : btn("Activate", "toggle-active", () => setActive(ctx, r, true)));
  }
  out.push(btn("Delete", "delete", () => remove(ctx, r), "btn small danger-ghost"));
  return out;
}

async function reload(ctx) {
  invalidateNames();
  if (!ctx.root.isConnected) return;
  await objectsPage(ctx.root, ctx.kind);
}

async function rotate(ctx, k) {
  if (!(await confirm(`Rotate key ${k.name}?`, "A new secret is issued and the current one is refused from the next request. Clients using it must be given the new one.", "Rotate", false))) return;
  try {
    const issued = await api.post(`/api/keys/${seg(k.id)}/rotate`);
    await showSecret(`New secret for ${k.name}`, issued.secret, "The previous secret no longer works.");
    await reload(ctx);
  } catch (e) {
    rowError(ctx, k, e);
  }
}

async function setActive(ctx, k, active) {
  try {
    await api.patch(`/api/keys/${seg(k.id)}`, { active });
    toast(active ? `Key ${k.name} is active again.` : `Key ${k.name} is deactivated: its secret is refused from now on.`);
    await reload(ctx);
  } catch (e) {
    rowError(ctx, k, e);
  }
}

async function remove(ctx, r) {
  const { meta } = ctx;
  const what = ctx.kind === "keys" ? "Its secret is refused from the next request." : "Objects that name it keep their reference but lose its budgets and limits.";
  if (!(await confirm(`Delete ${meta.one} ${r.name}?`, `This cannot be undone. ${what}`))) return;
  try {
    await api.del(`${meta.api}/${seg(r.id)}`);
    toast(`Deleted ${meta.one} ${r.name}.`);
    await reload(ctx);
  } catch (e) {
    rowError(ctx, r, e);
  }
}

// ---------- budgets ----------

function scopeLabel(ctx, scope, own) {
  if (scope === own) return "own";
  const [head, rest] = scope.split("/");
  const [kind, id] = head.split(":");
  let name = id;
  if (kind === "team" && ctx.teamById.get(id)) name = ctx.teamById.get(id).name;
  if (kind === "customer" && ctx.customerById.get(id)) name = ctx.customerById.get(id).name;
  if (kind === "key") name = "key";
  return rest ? `${kind === "key" ? "" : `${kind} ${name} `}${rest.replace(":", " ")}`.trim() : `${kind} ${name}`;
}

async function loadBudgets(ctx, r, cell) {
  try {
    const res = await api.get(`${ctx.meta.api}/${seg(r.id)}/budgets`);
    const own = `${ctx.meta.one}:${r.id}`;
    const rows = res.data || [];
    replace(cell, rows.length ? rows.map((b) => budgetBar(b, scopeLabel(ctx, b.scope, own))) : h("span", { class: "muted small", text: "no budget" }));
  } catch (e) {
    replace(cell, h("span", { class: "muted small", title: e.message, text: "usage unavailable" }));
  }
}

/** One budget: spent of limit, a bar, and when its window resets. */
export function budgetBar(b, scopeText) {
  const limit = Number(b.limit_usd);
  const spent = Number(b.spent_usd);
  const pct = limit > 0 ? Math.min(100, (100 * spent) / limit) : 100;
  const fill = h("div", { class: `bar-fill ${pct >= 90 ? "hot" : pct >= 70 ? "warm" : ""}` });
  fill.style.width = `${pct.toFixed(1)}%`;
  const resets = b.window_end_ms ? `resets in ${span(b.window_end_ms - Date.now())}` : "";
  return h("div", { class: "budget", testid: "budget-usage", dataset: { scope: b.scope } },
    h("div", { class: "budget-line" },
      h("span", { text: `${usd(spent)} of ${usd(limit)} / ${periodName(b.period)}${b.calendar ? " (calendar)" : ""}` }),
      scopeText && scopeText !== "own" ? h("span", { class: "muted small", text: scopeText }) : null),
    h("div", { class: "bar", role: "progressbar", "aria-valuemin": "0", "aria-valuemax": "100", "aria-valuenow": pct.toFixed(0),
      "aria-label": `${pct.toFixed(0)}% of the ${periodName(b.period)} budget spent` }, fill),
    h("div", { class: "muted small", testid: "budget-reset", text: `${usd(b.remaining_usd)} left · ${resets}` }));
}

// ---------- the create / edit form ----------

function periodSelect(value, testid) {
  return h("select", { testid, "aria-label": "Period" }, PERIODS.map(([v, label]) => h("option", { value: v, selected: v === value, text: `per ${label}` })));
}

/** "5.000000" → "5", "12.500000" → "12.5". */
function trimUsd(v) {
  const s = String(v);
  return s.includes(".") ? s.replace(/0+$/, "").replace(/\.$/, "") : s;
}

function budgetsEditor(initial) {
  const rows = h("div", { class: "rows" });
  const addRow = (b = { limit_usd: "", period: "1M", calendar: true }) => {
    const id = nextId("budget");
    const limitInput = h("input", { type: "text", inputmode: "decimal", id, testid: "budget-limit", value: b.limit_usd === undefined ? "" : trimUsd(b.limit_usd), placeholder: "25.00", "aria-label": "Limit in USD" });
    const cal = h("input", { type: "checkbox", id: `${id}-cal`, testid: "budget-calendar", checked: !!b.calendar });
    const row = h("div", { class: "edit-row", testid: "budget-row" },
      h("span", { class: "prefix-sign", "aria-hidden": "true", text: "$" }), limitInput,
      periodSelect(b.period, "budget-period"),
      h("span", { class: "inline-check" }, cal, h("label", { for: cal.id, text: "calendar" })),
      h("button", { type: "button", class: "icon-btn", testid: "budget-remove", "aria-label": "Remove this budget", text: "×", onclick: () => row.remove() }));
    rows.append(row);
    return limitInput;
  };
  for (const b of initial || []) addRow(b);
  const add = h("button", { type: "button", class: "btn small", testid: "budget-add", text: "Add budget", onclick: () => addRow().focus() });
  const wrap = h("fieldset", { class: "field wide group", dataset: { field: "budgets" } },
    h("legend", { text: "Budgets (USD)" }), rows, add,
    h("p", { class: "hint", text: "Calendar budgets reset on UTC boundaries (months on the 1st, weeks on Monday); others run in fixed windows from when they were set." }),
    h("p", { class: "field-error", role: "alert", testid: "error-budgets" }));
  wrap.value = () => [...rows.querySelectorAll("[data-testid=budget-row]")].map((r) => ({
    limit_usd: r.querySelector("[data-testid=budget-limit]").value.trim(),
    period: r.querySelector("[data-testid=budget-period]").value,
    calendar: r.querySelector("[data-testid=budget-calendar]").checked,
  }));
  return wrap;
}

function ratesEditor(initial) {
  const rows = h("div", { class: "rows" });
  const addRow = (l = { window: "1m" }) => {
    const req = h("input", { type: "number", min: "0", step: "1", testid: "rate-requests", value: l.requests === undefined || l.requests === null ? "" : String(l.requests), placeholder: "requests", "aria-label": "Requests per window" });
    const tok = h("input", { type: "number", min: "0", step: "1", testid: "rate-tokens", value: l.tokens === undefined || l.tokens === null ? "" : String(l.tokens), placeholder: "tokens", "aria-label": "Tokens per window" });
    const row = h("div", { class: "edit-row", testid: "rate-row" }, req, tok, periodSelect(l.window, "rate-window"),
      h("button", { type: "button", class: "icon-btn", testid: "rate-remove", "aria-label": "Remove this rate limit", text: "×", onclick: () => row.remove() }));
    rows.append(row);
    return req;
  };
  for (const l of initial || []) addRow(l);
  const add = h("button", { type: "button", class: "btn small", testid: "rate-add", text: "Add rate limit", onclick: () => addRow().focus() });
  const wrap = h("fieldset", { class: "field wide group", dataset: { field: "rate_limits" } },
    h("legend", { text: "Rate limits" }), rows, add,
    h("p", { class: "hint", text: "Requests and/or tokens (prompt + completion) per fixed UTC-aligned window." }),
    h("p", { class: "field-error", role: "alert", testid: "error-rate_limits" }));
  wrap.value = () => [...rows.querySelectorAll("[data-testid=rate-row]")].map((r) => {
    const o = { window: r.querySelector("[data-testid=rate-window]").value };
    const rq = r.querySelector("[data-testid=rate-requests]").value.trim();
    const tk = r.querySelector("[data-testid=rate-tokens]").value.trim();
    if (rq !== "") o.requests = Number(rq);
    if (tk !== "") o.tokens = Number(tk);
    return o;
  });
  return wrap;
}

function refSelect(items, value, noneLabel, testid) {
  return h("select", { testid }, h("option", { value: "", text: noneLabel }),
    items.map((x) => h("option", { value: x.id, selected: x.id === value, text: `${x.name} (${x.id})` })));
}

function openForm(ctx, obj) {
  const { kind, meta } = ctx;
  const editing = !!obj;
  const o = obj || {};
  const name = field("Name", h("input", { type: "text", testid: "field-name", value: o.name || "", required: true, autocomplete: "off" }), { name: "name" });
  const parts = [name];
  let team, customer, models, providers, expires, active, groups;
  if (kind === "keys") {
    team = field("Team", refSelect(ctx.teams, o.team_id, "No team", "field-team_id"), { name: "team_id", hint: ctx.teams.length ? null : "No teams yet: create one on the Teams page." });
    customer = field("Customer", refSelect(ctx.customers, o.customer_id, "No customer", "field-customer_id"), { name: "customer_id", hint: "For a key in no team; a team's customer applies otherwise." });
    models = field("Models", h("input", { type: "text", testid: "field-models", value: (o.models || []).join(", "), placeholder: "gpt-4o*, demo/*", autocomplete: "off" }), { name: "models", hint: "Patterns (* wildcard), comma-separated. Empty: every model." });
    providers = field("Providers", h("input", { type: "text", testid: "field-providers", value: (o.providers || []).join(", "), placeholder: "openai, demo", autocomplete: "off" }), { name: "providers", hint: "Empty: every provider." });
    expires = field("Expires", h("input", { type: "datetime-local", testid: "field-expires_at", value: toLocalInput(o.expires_at) }), { name: "expires_at", hint: "Empty: never." });
    active = checkbox("Active (its secret is accepted)", { name: "active", checked: editing ? o.active : true, testid: "field-active" });
    parts.push(team, customer, models, providers, expires, active);
  } else {
    if (kind === "teams") {
      customer = field("Customer", refSelect(ctx.customers, o.customer_id, "No customer", "field-customer_id"), { name: "customer_id" });
      parts.push(customer);
    }
    groups = field("Tool groups", h("input", { type: "text", testid: "field-tool_groups", value: (o.tool_groups || []).join(", "), autocomplete: "off" }), { name: "tool_groups", hint: "MCP tool groups every key under it may use, comma-separated." });
    parts.push(groups);
  }
  const budgets = budgetsEditor(o.budgets);
  const rates = ratesEditor(o.rate_limits);
  parts.push(budgets, rates);

  const submit = h("button", { type: "submit", class: "btn primary", testid: "form-submit", text: editing ? "Save" : `Create ${meta.one}` });
  const cancel = h("button", { type: "button", class: "btn", testid: "form-cancel", text: "Cancel" });
  const form = h("form", { class: "form-grid", testid: "object-form", novalidate: true }, parts, formError(),
    h("div", { class: "form-actions" }, cancel, submit));
  const m = modal({ title: editing ? `Edit ${meta.one} ${o.name}` : `New ${meta.one}`, testid: "object-form-dialog", body: form, wide: true });
  cancel.addEventListener("click", () => m.close("cancel"));
  name.input.focus();

  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    clearErrors(form);
    const body = { name: name.input.value.trim() };
    if (!body.name) {
      showError(form, { message: "name: give it a name" });
      name.input.focus();
      return;
    }
    const opt = (v) => (v ? v : editing ? null : undefined);
    if (kind === "keys") {
      body.team_id = opt(team.input.value);
      body.customer_id = opt(customer.input.value);
      body.models = splitList(models.input.value);
      body.providers = splitList(providers.input.value);
      const exp = fromLocalInput(expires.input.value);
      body.expires_at = opt(exp);
      body.active = active.input.checked;
    } else {
      if (kind === "teams") body.customer_id = opt(customer.input.value);
      body.tool_groups = splitList(groups.input.value);
    }
    body.budgets = budgets.value();
    body.rate_limits = rates.value();
    for (const k of Object.keys(body)) if (body[k] === undefined) delete body[k];
    submit.disabled = true;
    try {
      if (editing) {
        await api.patch(`${meta.api}/${seg(o.id)}`, body);
        m.close("saved");
        toast(`Saved ${meta.one} ${body.name}.`);
        await reload(ctx);
      } else {
        const created = await api.post(meta.api, body);
        m.close("saved");
        if (kind === "keys" && created.secret) {
          await showSecret(`Key ${created.name} created`, created.secret,
            `Send it as 'Authorization: Bearer …' to ${location.origin}/v1/…. The list shows only its prefix, ${prefix(created.secret_prefix)}.`);
        } else {
          toast(`Created ${meta.one} ${created.name}.`);
        }
        await reload(ctx);
      }
    } catch (e) {
      showError(form, e);
    } finally {
      submit.disabled = false;
    }
  });
}

