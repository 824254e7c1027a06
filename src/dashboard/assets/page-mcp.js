// MCP: upstream servers (this node's connection state, tools, the Code Mode
// and enabled switches), the tools exposed, and tool groups.

import { api, listAll, seg } from "./api.js";
import { h, replace, table, empty, section, badge, code, list, usdMicros, nextId, splitList } from "./dom.js";
import { modal, field, clearErrors, showError, formError, confirm, toast, loadError } from "./ui.js";

const STATE_KIND = { connected: "ok", connecting: "info", disconnected: "warn", error: "error", disabled: "neutral" };

export async function mcpPage(root) {
  const add = h("button", { type: "button", class: "btn primary", testid: "new-mcp-server", text: "Add server" });
  const serversBox = h("div");
  const toolsBox = h("div");
  const groupsBox = h("div");
  replace(root,
    h("div", { class: "page-head" }, h("h1", { text: "MCP" }), h("div", { class: "page-actions" }, add)),
    section("Servers", null, h("p", { class: "muted small" }, "Upstream MCP servers whose tools the gateway exposes at ", code("/mcp"),
      ". With Code Mode on, a server's tools sit behind the Code Mode meta-tools instead of being listed one by one."), serversBox),
    section("Tools", null, toolsBox),
    section("Tool groups", null, groupsBox));
  const reload = () => mcpPage(root);
  add.addEventListener("click", () => serverForm(reload));

  const [servers, tools, groups] = await Promise.all([
    listAll("/api/mcp/servers"),
    api.get("/api/mcp/tools").then((r) => r.data || []).catch((e) => e),
    listAll("/api/mcp/tool-groups").catch((e) => e),
  ]);
  const toolCount = new Map();
  if (!(tools instanceof Error)) for (const t of tools) toolCount.set(t.server, (toolCount.get(t.server) || 0) + 1);

  if (!servers.length) {
    replace(serversBox, empty("No MCP server is registered.",
      h("p", null, "Add one with “Add server” (an HTTP URL or a command to run), or ", code("PUT /api/mcp/servers/{name}"),
        ". ", code("tollgate serve --demo"), " registers a sample server “demo”.")));
  } else {
    replace(serversBox, table([
      { label: "Name", cell: (sv) => h("span", { class: "strong", testid: "mcp-server-name", text: sv.id }) },
      { label: "Transport", cell: (sv) => transportText(sv.transport) },
      { label: "State", cell: (sv) => {
        const st = sv.status || {};
        return h("div", null, h("span", { testid: "mcp-server-state" }, badge(st.state || "unknown", STATE_KIND[st.state])),
          st.last_error ? h("div", { class: "small error-text", text: st.last_error }) : null);
      } },
      { label: "Tools", class: "num", cell: (sv) => String((sv.status && sv.status.tools) || toolCount.get(sv.id) || 0) },
      { label: "Code Mode", cell: (sv) => toggle(sv, "code_mode", "Code Mode", "code-mode-toggle") },
      { label: "Enabled", cell: (sv) => toggle(sv, "enabled", "Enabled", "enabled-toggle") },
      { label: "Actions", class: "actions", cell: (sv) => h("button", { type: "button", class: "btn small danger-ghost", testid: "mcp-server-delete", "aria-label": `Delete MCP server ${sv.id}`, text: "Delete", onclick: async () => {
        if (!(await confirm(`Delete MCP server ${sv.id}?`, "Every node disconnects it and its tools disappear."))) return;
        try { await api.del(`/api/mcp/servers/${seg(sv.id)}`); toast(`Deleted ${sv.id}.`); reload(); } catch (e) { toast(e.message, "error"); }
      } }) },
    ], servers, { testid: "mcp-servers-table", rowAttrs: (sv) => ({ testid: "mcp-server-row", dataset: { name: sv.id, state: (sv.status && sv.status.state) || "" } }) }));
  }

  if (tools instanceof Error) replace(toolsBox, loadError(tools));
  else if (!tools.length) replace(toolsBox, empty("No tools exposed on this node.", h("p", { class: "muted", text: "Tools appear once a server is connected." })));
  else {
    replace(toolsBox, table([
      { label: "Tool", cell: (t) => h("code", { testid: "mcp-tool-name", text: t.name }) },
      { label: "Server", cell: (t) => t.server },
      { label: "Description", cell: (t) => h("span", { class: "small", text: t.description || "" }) },
      { label: "Price", class: "num", cell: (t) => (t.price_micros ? usdMicros(t.price_micros) : "free") },
      { label: "Auto-execute", cell: (t) => (t.auto_execute ? "yes" : "no") },
      { label: "Code Mode", cell: (t) => (t.code_mode ? badge("behind Code Mode", "info") : "listed") },
    ], tools, { testid: "mcp-tools-table", rowAttrs: (t) => ({ testid: "mcp-tool-row", dataset: { server: t.server } }) }));
  }

  if (groups instanceof Error) replace(groupsBox, loadError(groups));
  else if (!groups.length) replace(groupsBox, empty("No tool groups.", h("p", { class: "muted" }, "A group names tool patterns that keys, teams or customers may use: ", code('PUT /api/mcp/tool-groups/{name} {"tools": ["demo-*"]}'), ".")));
  else {
    replace(groupsBox, table([
      { label: "Name", cell: (g) => h("span", { class: "strong", text: g.id }) },
      { label: "Description", cell: (g) => g.description || "" },
      { label: "Tools", cell: (g) => list(g.tools, "none") },
    ], groups, { testid: "tool-groups-table", rowAttrs: (g) => ({ testid: "tool-group-row", dataset: { name: g.id } }) }));
  }
  return undefined;
}

function transportText(t) {
  if (!t) return "—";
  if (t.type === "stdio") return h("span", null, badge("stdio", "neutral"), " ", code([t.command, ...(t.args || [])].join(" ")));
  return h("span", null, badge(t.type, "neutral"), " ", code(t.url || ""));
}

/** A switch that PATCHes one boolean field of a server. */
function toggle(sv, fieldName, label, testid) {
  const input = h("input", { type: "checkbox", role: "switch", id: nextId(testid), testid, checked: !!sv[fieldName], "aria-label": `${label} for ${sv.id}` });
  const err = h("span", { class: "field-error small", role: "alert" });
  const state = h("span", { class: "small", text: sv[fieldName] ? "on" : "off" });
  input.addEventListener("change", async () => {
    const want = input.checked;
    input.disabled = true;
    err.textContent = "";
    try {
      const updated = await api.patch(`/api/mcp/servers/${seg(sv.id)}`, { [fieldName]: want });
      sv[fieldName] = updated[fieldName];
      input.checked = !!updated[fieldName];
      state.textContent = input.checked ? "on" : "off";
      toast(`${label} ${input.checked ? "on" : "off"} for ${sv.id}.`);
    } catch (e) {
      input.checked = !want;
      err.textContent = e.message;
    } finally {
      input.disabled = false;
    }
  });
  return h("label", { class: "switch", for: input.id }, input, state, err);
}

function serverForm(reload) {
  const name = field("Name", h("input", { type: "text", testid: "mcp-field-name", required: true, autocomplete: "off", placeholder: "filesystem" }), { name: "name", hint: "Letters, digits and _; tools are named name-tool." });
  const type = field("Transport", h("select", { testid: "mcp-field-type" }, ["http", "sse", "stdio"].map((t) => h("option", { value: t, text: t }))), { name: "transport" });
  const url = field("URL or command", h("input", { type: "text", testid: "mcp-field-target", autocomplete: "off", placeholder: "http://127.0.0.1:9000/mcp" }), { name: "url", hint: "For stdio: the command and its arguments, separated by spaces." });
  const submit = h("button", { type: "submit", class: "btn primary", testid: "form-submit", text: "Add server" });
  const cancel = h("button", { type: "button", class: "btn", testid: "form-cancel", text: "Cancel" });
  const form = h("form", { class: "form-grid", testid: "mcp-form", novalidate: true }, name, type, url, formError(), h("div", { class: "form-actions" }, cancel, submit));
  const m = modal({ title: "Add MCP server", testid: "mcp-form-dialog", body: form, wide: true });
  cancel.addEventListener("click", () => m.close("cancel"));
  name.input.focus();
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    clearErrors(form);
    const n = name.input.value.trim();
    if (!n) { showError(form, { message: "name: give the server a name" }); return; }
    const t = type.input.value;
    const target = url.input.value.trim();
    let transport;
    if (t === "stdio") {
      const [command, ...args] = splitList(target.replace(/,/g, " "));
      transport = { type: "stdio", command: command || "", args };
    } else {
      transport = { type: t, url: target };
    }
    submit.disabled = true;
    try {
      await api.put(`/api/mcp/servers/${seg(n)}`, { transport });
      m.close("saved");
      toast(`MCP server ${n} added.`);
      reload();
    } catch (e) {
      showError(form, e);
    } finally {
      submit.disabled = false;
    }
  });
}
