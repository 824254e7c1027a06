// Shared widgets: modal dialogs (confirm, the one-time secret, details),
// labelled form fields with an error slot, and API errors shown beside the
// form or field that caused them.

import { h, replace, nextId } from "./dom.js";

/** Opens a modal <dialog>; resolves with its return value when it closes. */
export function modal({ title, testid, body, actions, wide, onClose }) {
  const titleId = nextId("dlg-title");
  const closeX = h("button", { type: "button", class: "icon-btn dialog-x", "aria-label": "Close", testid: "dialog-close", text: "×" });
  const dlg = h("dialog", { class: wide ? "dialog wide" : "dialog", testid, "aria-labelledby": titleId },
    h("div", { class: "dialog-head" }, h("h2", { id: titleId, text: title }), closeX),
    h("div", { class: "dialog-body" }, body),
    actions ? h("div", { class: "dialog-actions" }, actions) : null);
  closeX.addEventListener("click", () => dlg.close("cancel"));
  document.body.append(dlg);
  const done = new Promise((resolve) => {
    dlg.addEventListener("close", () => {
      const v = dlg.returnValue;
      if (onClose) onClose(v);
      // Nothing the dialog showed (a secret among others) stays in the page.
      dlg.replaceChildren();
      dlg.remove();
      resolve(v);
    });
  });
  dlg.showModal();
  return { dialog: dlg, done, close: (v) => dlg.close(v) };
}

/** Asks before doing something that cannot be undone; resolves true to go on. */
export async function confirm(title, message, okLabel = "Delete", danger = true) {
  const ok = h("button", { type: "button", class: danger ? "btn danger" : "btn primary", testid: "confirm-ok", text: okLabel });
  const cancel = h("button", { type: "button", class: "btn", testid: "confirm-cancel", text: "Cancel" });
  const m = modal({ title, testid: "confirm-dialog", body: h("p", { text: message }), actions: [cancel, ok] });
  ok.addEventListener("click", () => m.close("ok"));
  cancel.addEventListener("click", () => m.close("cancel"));
  cancel.focus();
  return (await m.done) === "ok";
}

/**
 * Shows a key's secret once, with a copy button. The secret is held only by
 * this dialog's DOM and removed from the page when it closes.
 */
export function showSecret(title, secret, note) {
  const value = h("code", { class: "secret", testid: "secret-value", text: secret });
  const status = h("span", { class: "copy-status", role: "status", testid: "secret-copy-status" });
  const copy = h("button", { type: "button", class: "btn", testid: "secret-copy", text: "Copy" });
  copy.addEventListener("click", async () => {
    let ok = false;
    try {
      await navigator.clipboard.writeText(value.textContent);
      ok = true;
    } catch {
      // Clipboard API refused (not focused, insecure context): select the text instead.
      const r = document.createRange();
      r.selectNodeContents(value);
      const sel = window.getSelection();
      sel.removeAllRanges();
      sel.addRange(r);
      try { ok = document.execCommand("copy"); } catch { ok = false; }
    }
    status.textContent = ok ? "Copied." : "Selected: press Ctrl+C to copy.";
  });
  const close = h("button", { type: "button", class: "btn primary", testid: "secret-close", text: "Done" });
  const m = modal({
    title,
    testid: "secret-dialog",
    body: [
      h("p", { class: "warn-text", text: "Copy this secret now. It is shown only once: the gateway stores only its hash." }),
      h("div", { class: "secret-row" }, value, copy),
      status,
      note ? h("p", { class: "muted", text: note }) : null,
    ],
    actions: [close],
  });
  close.addEventListener("click", () => m.close("done"));
  copy.focus();
  return m.done;
}

/** A definition list of label → value (node or text). */
export function details(pairs, testidPrefix = "detail") {
  return h("dl", { class: "details" }, pairs.filter(Boolean).map(([label, value, key]) => [
    h("dt", { text: label }),
    h("dd", { testid: key ? `${testidPrefix}-${key}` : null }, value === null || value === undefined || value === "" ? "—" : value),
  ]));
}

/**
 * A labelled field. `input` is the control (its id is set here); returns
 * the wrapper, whose `.error` slot shows that field's API error.
 */
export function field(label, input, { hint, name, wide } = {}) {
  const id = input.id || nextId("f");
  input.id = id;
  if (name) input.name = name;
  const err = h("p", { class: "field-error", id: `${id}-err`, role: "alert", testid: name ? `error-${name}` : null });
  const hintEl = hint ? h("p", { class: "hint", id: `${id}-hint`, text: hint }) : null;
  input.setAttribute("aria-describedby", [hintEl ? hintEl.id : null, err.id].filter(Boolean).join(" "));
  const wrap = h("div", { class: wide ? "field wide" : "field", dataset: { field: name || "" } },
    h("label", { for: id, text: label }), input, hintEl, err);
  wrap.error = err;
  wrap.input = input;
  return wrap;
}

/** A checkbox with its label after it. */
export function checkbox(label, { name, checked, testid, role } = {}) {
  const input = h("input", { type: "checkbox", id: nextId("cb"), name, testid, role, checked: !!checked });
  const wrap = h("div", { class: "field check", dataset: { field: name || "" } },
    input, h("label", { for: input.id, text: label }),
    h("p", { class: "field-error", role: "alert", testid: name ? `error-${name}` : null }));
  wrap.error = wrap.lastChild;
  wrap.input = input;
  return wrap;
}

/** Clears the errors shown in `form`. */
export function clearErrors(form) {
  for (const e of form.querySelectorAll(".field-error, .form-error")) e.textContent = "";
  for (const e of form.querySelectorAll("[aria-invalid]")) e.removeAttribute("aria-invalid");
}

/**
 * Shows an API error in `form`: in its form-level slot, and beside the
 * field the message names ("budgets[0].limit_usd: …" → field `budgets`).
 */
export function showError(form, err) {
  const msg = err && err.message ? err.message : String(err);
  const slot = form.querySelector(".form-error");
  if (slot) {
    slot.textContent = msg;
    slot.scrollIntoView({ block: "nearest" });
  }
  const m = /^([a-z_]+)(?:[[.][^:]*)?:/.exec(msg);
  let f = m && m[1] !== "body" ? m[1] : null;
  if (!f) {
    // serde's messages name no field: recognise the value's kind instead.
    if (/USD amount|limit_usd/.test(msg)) f = "budgets";
    else if (/\bwindow\b|requests|tokens/.test(msg)) f = "rate_limits";
    else if (/environment variable|api_key/.test(msg)) f = "api_key";
    else { const k = /\b(name|team_id|customer_id|models|providers|budgets|rate_limits|expires_at|tool_groups|base_url|kind|url)\b/.exec(msg); f = k && k[1]; }
  }
  if (f === "limit_usd" || f === "period" || f === "calendar") f = "budgets";
  if (f) {
    const wrap = form.querySelector(`[data-field="${f}"]`);
    if (wrap) {
      const e = wrap.querySelector(".field-error");
      if (e) e.textContent = msg.replace(/^body: /, "");
      // The control whose value the message quotes, else the field's first.
      const inputs = [...wrap.querySelectorAll("input, select, textarea")];
      const quoted = (i) => i.value && i.type !== "checkbox" && [`'${i.value}'`, `"${i.value}"`, `\\"${i.value}\\"`].some((q) => msg.includes(q));
      const input = inputs.find(quoted) || inputs[0];
      if (input) input.setAttribute("aria-invalid", "true");
    }
  }
}

/** The slot for form-level errors. */
export function formError() {
  return h("p", { class: "form-error", role: "alert", testid: "form-error" });
}

/** A short-lived message at the bottom of the screen. */
export function toast(text, kind = "ok") {
  let host = document.getElementById("toasts");
  if (!host) {
    host = h("div", { id: "toasts", class: "toasts", role: "status", "aria-live": "polite" });
    document.body.append(host);
  }
  const t = h("div", { class: `toast toast-${kind}`, testid: "toast", text });
  host.append(t);
  setTimeout(() => t.remove(), 5000);
}

/** The error state of a page or section that failed to load. */
export function loadError(err, retry) {
  return h("div", { class: "alert alert-error", role: "alert", testid: "load-error" },
    h("span", { text: `Could not load: ${err && err.message ? err.message : err}` }),
    retry ? h("button", { type: "button", class: "btn small", text: "Retry", onclick: retry }) : null);
}

/** Puts a "loading" line in `el`. */
export function loading(el) {
  replace(el, h("p", { class: "muted loading", text: "Loading…" }));
}
