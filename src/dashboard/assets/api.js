// The admin API client. The session lives in an HttpOnly cookie the server
// sets; this module keeps only the CSRF token, in memory, and sends it on
// every request that changes something.

let csrf = null;
let onUnauthorized = () => {};

export class ApiError extends Error {
  constructor(status, message, type) {
    super(message);
    this.status = status;
    this.type = type || "";
  }
}

/** Called with no arguments whenever the API answers 401. */
export function setUnauthorizedHandler(fn) {
  onUnauthorized = fn;
}

export function setCsrf(token) {
  csrf = token || null;
}

async function request(method, path, { body, query, quiet401 } = {}) {
  let url = path;
  if (query) {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(query)) {
      if (v !== undefined && v !== null && v !== "") q.set(k, String(v));
    }
    const qs = q.toString();
    if (qs) url += (url.includes("?") ? "&" : "?") + qs;
  }
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET" && method !== "HEAD" && csrf) headers["X-CSRF-Token"] = csrf;
  let res;
  try {
    res = await fetch(url, {
      method,
      headers,
      credentials: "same-origin",
      cache: "no-store",
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (e) {
    throw new ApiError(0, `The node did not answer (${e.message}). Is it running?`, "network_error");
  }
  if (res.status === 204) return null;
  const text = await res.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (!res.ok) {
    const err = data && data.error ? data.error : null;
    const message = err && err.message ? String(err.message) : `${res.status} ${res.statusText || "error"}`;
    const e = new ApiError(res.status, message, err && err.type);
    if (res.status === 401 && !quiet401) onUnauthorized(e);
    throw e;
  }
  return data;
}

export const api = {
  get: (path, query, opts) => request("GET", path, { query, ...opts }),
  post: (path, body, opts) => request("POST", path, { body: body === undefined ? {} : body, ...opts }),
  put: (path, body) => request("PUT", path, { body }),
  patch: (path, body) => request("PATCH", path, { body }),
  del: (path, query, opts) => request("DELETE", path, { query, ...opts }),
};

/** Path segment, escaped. */
export function seg(s) {
  return encodeURIComponent(String(s));
}

/** Every page of a paged list (`{data, next_cursor}`), up to `max` items. */
export async function listAll(path, max = 5000) {
  const out = [];
  let cursor = null;
  for (;;) {
    const page = await api.get(path, { limit: 1000, cursor });
    out.push(...(page.data || []));
    cursor = page.next_cursor;
    if (!cursor || out.length >= max) return out;
  }
}
