// The dashboard's shell: session (login, logout, 401), theme, navigation,
// the status banner and the hash router.

import { api, setCsrf, setUnauthorizedHandler, ApiError } from "./api.js";
import { h, replace } from "./dom.js";
import { loadError } from "./ui.js";
import { overviewPage } from "./page-overview.js";
import { logsPage, toolLogsPage } from "./page-logs.js";
import { keysPage, teamsPage, customersPage } from "./page-objects.js";
import { providersPage } from "./page-providers.js";
import { mcpPage } from "./page-mcp.js";
import { clusterPage } from "./page-cluster.js";

const PAGES = {
  overview: { title: "Overview", nav: "overview", render: overviewPage },
  logs: { title: "Request logs", nav: "logs", render: logsPage },
  "tool-logs": { title: "Tool logs", nav: "logs", render: toolLogsPage },
  keys: { title: "Virtual keys", nav: "keys", render: keysPage },
  teams: { title: "Teams", nav: "teams", render: teamsPage },
  customers: { title: "Customers", nav: "customers", render: customersPage },
  providers: { title: "Providers", nav: "providers", render: providersPage },
  mcp: { title: "MCP", nav: "mcp", render: mcpPage },
  cluster: { title: "Cluster", nav: "cluster", render: clusterPage },
};

const $ = (id) => document.getElementById(id);
let session = null;
let cleanup = null;
let renderSeq = 0;
let statusTimer = null;
let expiryTimer = null;

// ---------- theme ----------

const THEME_KEY = "tollgate-theme";

function systemDark() {
  return window.matchMedia && window.matchMedia("(prefers-color-scheme: dark)").matches;
}

function currentTheme() {
  return document.documentElement.dataset.theme || (systemDark() ? "dark" : "light");
}

function applyTheme(theme) {
  if (theme === "light" || theme === "dark") document.documentElement.dataset.theme = theme;
  else delete document.documentElement.dataset.theme;
  const next = currentTheme() === "dark" ? "light" : "dark";
  for (const b of document.querySelectorAll(".theme-toggle")) {
    b.setAttribute("aria-label", `Switch to ${next} theme`);
    b.title = `Switch to ${next} theme`;
  }
}

function initTheme() {
  let saved = null;
  try { saved = localStorage.getItem(THEME_KEY); } catch { saved = null; }
  applyTheme(saved);
  for (const b of document.querySelectorAll(".theme-toggle")) {
    b.addEventListener("click", () => {
      const next = currentTheme() === "dark" ? "light" : "dark";
      try { localStorage.setItem(THEME_KEY, next); } catch { /* private mode */ }
      applyTheme(next);
    });
  }
  if (window.matchMedia) {
    window.matchMedia("(prefers-color-scheme: dark)").addEventListener("change", () => applyTheme(document.documentElement.dataset.theme));
  }
}

// ---------- session ----------

function showLogin(message) {
  session = null;
  setCsrf(null);
  if (cleanup) { cleanup(); cleanup = null; }
  clearInterval(statusTimer);
  clearTimeout(expiryTimer);
  for (const d of document.querySelectorAll("dialog")) d.close("cancel");
  $("topbar").hidden = true;
  $("main").hidden = true;
  $("warnings").hidden = true;
  replace($("main"));
  $("login").hidden = false;
  $("login-error").textContent = message || "";
  const input = $("login-token");
  input.value = "";
  input.removeAttribute("aria-invalid");
  input.focus();
}

function startSession(s) {
  session = s;
  setCsrf(s.csrf);
  $("node-id").textContent = s.node || "";
  // A named token's name and role; the bootstrap token is an admin.
  $("who").textContent = s.token && s.token !== "bootstrap" ? `${s.token} · ${s.role}` : "";
  $("login").hidden = true;
  $("topbar").hidden = false;
  $("main").hidden = false;
  refreshStatus();
  clearInterval(statusTimer);
  statusTimer = setInterval(refreshStatus, 30000);
  clearTimeout(expiryTimer);
  const left = Number(s.expires_at) - Date.now();
  if (Number.isFinite(left) && left > 0 && left < 2 ** 31 - 1) {
    expiryTimer = setTimeout(() => showLogin("Your session expired: sign in again."), left);
  }
  route();
}

async function login(ev) {
  ev.preventDefault();
  const input = $("login-token");
  const err = $("login-error");
  const button = ev.target.querySelector("button[type=submit]");
  const token = input.value.trim();
  err.textContent = "";
  if (!token) {
    err.textContent = "Enter the admin token.";
    input.setAttribute("aria-invalid", "true");
    input.focus();
    return;
  }
  button.disabled = true;
  try {
    const s = await api.post("/api/session", { token }, { quiet401: true });
    input.value = "";
    startSession(s);
  } catch (e) {
    input.setAttribute("aria-invalid", "true");
    if (e instanceof ApiError && e.status === 401) err.textContent = "Wrong admin token.";
    else if (e instanceof ApiError && e.status === 429) err.textContent = `Too many failed attempts: wait a minute and try again. (${e.message})`;
    else err.textContent = e.message;
    input.select();
  } finally {
    button.disabled = false;
  }
}

async function logout() {
  try {
    await api.del("/api/session", undefined, { quiet401: true });
  } catch {
    // Gone already: the login form is what follows either way.
  }
  showLogin("You are signed out.");
}

// ---------- status banner ----------

async function refreshStatus() {
  const box = $("warnings");
  try {
    const st = await api.get("/api/status");
    if (st.node) $("node-id").textContent = st.node;
    if (st.version) $("node-id").title = `Tollgate ${st.version}`;
    const warnings = Array.isArray(st.warnings) ? st.warnings : [];
    replace(box, warnings.map((w) => h("p", { class: "warning", testid: "warning", text: w })));
    box.hidden = warnings.length === 0;
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) return;
    replace(box, h("p", { class: "warning", testid: "warning", text: `Status unavailable: ${e.message}` }));
    box.hidden = false;
  }
}

// ---------- router ----------

function parseHash() {
  const raw = location.hash.startsWith("#/") ? location.hash.slice(2) : "";
  const [path, qs] = raw.split("?");
  const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  return { name: parts[0] || "overview", rest: parts.slice(1), params: new URLSearchParams(qs || "") };
}

async function route() {
  if (!session) return;
  if (location.hash && !location.hash.startsWith("#/")) return;
  const { name, rest, params } = parseHash();
  const page = PAGES[name];
  if (!page) {
    location.replace("#/overview");
    return;
  }
  if (cleanup) { cleanup(); cleanup = null; }
  const seq = ++renderSeq;
  for (const a of document.querySelectorAll("#nav-links a")) {
    if (a.dataset.page === page.nav) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  document.title = `${page.title} · Tollgate`;
  const root = h("div", { class: "page", testid: `page-${name}`, dataset: { state: "loading" } });
  replace($("main"), root);
  try {
    const c = await page.render(root, { rest, params, isCurrent: () => seq === renderSeq });
    if (seq !== renderSeq) {
      if (typeof c === "function") c();
      return;
    }
    cleanup = typeof c === "function" ? c : null;
    root.dataset.state = "ready";
  } catch (e) {
    if (seq !== renderSeq) return;
    if (e instanceof ApiError && e.status === 401) return;
    root.dataset.state = "error";
    root.append(loadError(e, route));
  }
}

// ---------- start ----------

async function start() {
  initTheme();
  setUnauthorizedHandler(() => {
    if (session) showLogin("Your session ended: sign in again.");
  });
  $("login-form").addEventListener("submit", login);
  $("logout").addEventListener("click", logout);
  $("skip-link").addEventListener("click", (ev) => {
    ev.preventDefault();
    $("main").focus();
  });
  window.addEventListener("hashchange", route);
  try {
    const s = await api.get("/api/session", undefined, { quiet401: true });
    startSession(s);
  } catch (e) {
    showLogin(e instanceof ApiError && e.status === 401 ? "" : e.message);
  }
}

start();
