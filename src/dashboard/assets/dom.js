// DOM helpers. Every value is set as text (textContent) or as a plain
// attribute: nothing here parses HTML, so names that clients or admins
// control can never become markup.

/**
 * Creates an element. `attrs` keys: `class`, `text`, `testid`, `on<event>`
 * (a listener), `dataset` (object), boolean attributes (`true` sets, false
 * or null skips), anything else through setAttribute. Children may be
 * nodes, strings (text nodes), arrays, or null/undefined/false (skipped).
 */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  apply(el, attrs);
  append(el, children);
  return el;
}

const SVG_NS = "http://www.w3.org/2000/svg";

/** An SVG element with attributes (setAttribute) and children. */
export function s(tag, attrs, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  apply(el, attrs);
  append(el, children);
  return el;
}

function apply(el, attrs) {
  if (!attrs) return;
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "text") el.textContent = String(v);
    else if (k === "class") el.setAttribute("class", v);
    else if (k === "testid") el.setAttribute("data-testid", v);
    else if (k === "dataset") Object.assign(el.dataset, v);
    else if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
    else if (v === true) el.setAttribute(k, "");
    else el.setAttribute(k, String(v));
  }
}

export function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

/** Replaces every child of `el`. */
export function replace(el, ...children) {
  el.replaceChildren();
  return append(el, children);
}

/**
 * A table. `columns`: [{label, cell: (row) => node|string, class?}];
 * `opts.rowAttrs(row)` gives each <tr>'s attributes.
 */
export function table(columns, rows, opts = {}) {
  const head = h("thead", null, h("tr", null, columns.map((c) =>
    h("th", { scope: "col", class: c.class }, c.label))));
  const body = h("tbody", null, rows.map((r) =>
    h("tr", opts.rowAttrs ? opts.rowAttrs(r) : null,
      columns.map((c) => h("td", { class: c.class }, c.cell(r))))));
  return h("div", { class: "table-wrap" },
    h("table", { class: "data", testid: opts.testid }, opts.caption ? h("caption", { class: "sr-only", text: opts.caption }) : null, head, body));
}

/** An empty state: a title, what to do next, and optional actions. */
export function empty(title, ...next) {
  return h("div", { class: "empty", testid: "empty-state" },
    h("p", { class: "empty-title", text: title }), ...next);
}

export function badge(text, kind) {
  return h("span", { class: `badge badge-${kind || "neutral"}`, text });
}

export function code(text) {
  return h("code", { text });
}

/** A section with a heading, optional header actions and body. */
export function section(title, actions, ...body) {
  return h("section", { class: "card" },
    h("div", { class: "card-head" }, h("h2", { text: title }), actions ? h("div", { class: "card-actions" }, actions) : null),
    ...body);
}

// ---------- formatting ----------

const nf = new Intl.NumberFormat(undefined);
const nf1 = new Intl.NumberFormat(undefined, { maximumFractionDigits: 1 });

export function num(n) {
  if (n === null || n === undefined) return "—";
  return nf.format(n);
}

/** 1234567 → "1.2M". */
export function compact(n) {
  if (n === null || n === undefined) return "—";
  const a = Math.abs(n);
  if (a >= 1e9) return nf1.format(n / 1e9) + "B";
  if (a >= 1e6) return nf1.format(n / 1e6) + "M";
  if (a >= 1e4) return nf1.format(n / 1e3) + "k";
  return nf1.format(n);
}

/** Micro-dollars → "$1.23" (more decimals for small amounts). */
export function usdMicros(micros) {
  if (micros === null || micros === undefined) return "—";
  return usd(micros / 1e6);
}

export function usd(dollars) {
  const d = Number(dollars);
  if (!Number.isFinite(d)) return String(dollars);
  if (d === 0) return "$0";
  const a = Math.abs(d);
  const digits = a >= 100 ? 0 : a >= 1 ? 2 : a >= 0.01 ? 4 : 6;
  return "$" + d.toLocaleString(undefined, { minimumFractionDigits: digits === 0 ? 0 : Math.min(2, digits), maximumFractionDigits: digits });
}

/** Microseconds → "812 ms" / "1.2 s" / "344 µs". */
export function duration(us) {
  if (us === null || us === undefined) return "—";
  if (us < 1000) return `${Math.round(us)} µs`;
  const ms = us / 1000;
  if (ms < 1000) return `${ms < 10 ? nf1.format(ms) : Math.round(ms)} ms`;
  return `${nf1.format(ms / 1000)} s`;
}

export function ms(msValue) {
  if (msValue === null || msValue === undefined) return "—";
  return duration(msValue * 1000);
}

/** A span of time in words: "3 h 12 min", "2 d 4 h", "45 s". */
export function span(msValue) {
  if (msValue === null || msValue === undefined) return "—";
  let s = Math.max(0, Math.round(msValue / 1000));
  const d = Math.floor(s / 86400); s -= d * 86400;
  const hh = Math.floor(s / 3600); s -= hh * 3600;
  const m = Math.floor(s / 60); s -= m * 60;
  if (d) return `${d} d ${hh} h`;
  if (hh) return `${hh} h ${m} min`;
  if (m) return `${m} min ${s} s`;
  return `${s} s`;
}

const dtf = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "medium" });
const tf = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });
const dayf = new Intl.DateTimeFormat(undefined, { month: "short", day: "numeric" });

export function datetime(msValue) {
  if (!msValue) return "—";
  return dtf.format(new Date(msValue));
}

const tsec = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit", second: "2-digit" });

/** "14:03:30" today, "Dec 3 14:03:30" before. */
export function shortTime(msValue) {
  if (!msValue) return "—";
  const d = new Date(msValue);
  const today = new Date().toDateString() === d.toDateString();
  return today ? tsec.format(d) : `${dayf.format(d)} ${tsec.format(d)}`;
}

export function timeLabel(msValue, rangeMs) {
  const d = new Date(msValue);
  return rangeMs > 2 * 86400000 ? `${dayf.format(d)} ${tf.format(d)}` : tf.format(d);
}

export function ago(msValue) {
  if (!msValue) return "—";
  return span(Date.now() - msValue) + " ago";
}

/** "a, b" for a list; "any" (or `none`) when empty. */
export function list(items, none = "any") {
  return items && items.length ? items.join(", ") : none;
}

/** "sk-tg-AbC…" */
export function prefix(p) {
  return p ? `${p}…` : "—";
}

/** Splits "a, b  c" into ["a", "b", "c"]. */
export function splitList(text) {
  return String(text || "").split(/[\s,]+/).map((x) => x.trim()).filter(Boolean);
}

/** <input type=datetime-local> value for a Unix ms, and back. */
export function toLocalInput(msValue) {
  if (!msValue) return "";
  const d = new Date(msValue);
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

export function fromLocalInput(value) {
  if (!value) return null;
  const t = new Date(value).getTime();
  return Number.isFinite(t) ? t : null;
}

let uid = 0;
/** A unique id for label/for pairs. */
export function nextId(base) {
  uid += 1;
  return `${base}-${uid}`;
}
