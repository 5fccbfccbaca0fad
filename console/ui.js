// ui.js - the console's DOM helpers and formatting. Every element is
// built with h() from text, never from HTML strings, so nothing the API
// returns (a prompt, an error message, a tool's output) can become markup.

// h("a", {href: "#/jobs", class: "x", onclick: fn}, "text", child, ...)
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else if (k === "dataset") Object.assign(el.dataset, v);
    else if (k === "value") el.value = v;
    else if (k === "checked" || k === "disabled" || k === "selected") el[k] = Boolean(v);
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === undefined || c === null || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

// Replaces el's children.
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

const STATUS_CLASS = {
  queued: "st-queued", running: "st-running", waiting: "st-queued", cancelling: "st-cancelling",
  succeeded: "st-succeeded", failed: "st-failed", cancelled: "st-cancelled",
};

export function statusBadge(status) {
  return h("span", { class: "badge " + (STATUS_CLASS[status] || "st-other"), dataset: { status } },
    status || "?");
}

export const TERMINAL = ["succeeded", "failed", "cancelled"];
export const isTerminal = (status) => TERMINAL.includes(status);

export function shortId(id) {
  return id ? id.slice(0, 8) + "…" + id.slice(-4) : "";
}

export function idLink(href, id) {
  return h("a", { href, class: "mono", title: id }, shortId(id));
}

// "3 s ago", "in 2 min", "2026-12-07 15:29" past a day.
export function ago(ts) {
  if (!ts) return "—";
  const t = Date.parse(ts);
  if (Number.isNaN(t)) return ts;
  const s = Math.round((Date.now() - t) / 1000);
  const a = Math.abs(s);
  let text;
  if (a < 5) return "just now";
  if (a < 60) text = `${a} s`;
  else if (a < 3600) text = `${Math.floor(a / 60)} min`;
  else if (a < 86400) text = `${Math.floor(a / 3600)} h`;
  else return new Date(t).toISOString().slice(0, 16).replace("T", " ");
  return s >= 0 ? `${text} ago` : `in ${text}`;
}

export function time(ts) {
  return h("time", { datetime: ts || "", title: ts || "" }, ago(ts));
}

export function ms(n) {
  if (n === null || n === undefined) return "—";
  if (n < 1000) return `${Math.round(n)} ms`;
  if (n < 60000) return `${(n / 1000).toFixed(n < 10000 ? 2 : 1)} s`;
  return `${Math.floor(n / 60000)} min ${Math.round((n % 60000) / 1000)} s`;
}

// Milliseconds between two timestamps (to now when the second is null).
export function between(a, b) {
  if (!a) return null;
  const end = b ? Date.parse(b) : Date.now();
  return Math.max(0, end - Date.parse(a));
}

export function json(v) {
  return h("pre", { class: "json" }, JSON.stringify(v, null, 2));
}

// A progress bar for {current, total, message}; indeterminate without a total.
export function progressBar(p, status) {
  const total = p && p.total > 0 ? p.total : 0;
  const pct = total ? Math.min(100, Math.round((100 * p.current) / total)) :
    status === "succeeded" ? 100 : 0;
  const fillEl = h("div", { class: "bar-fill " + (STATUS_CLASS[status] || "") });
  fillEl.style.width = pct + "%";
  const label = p ? (total ? `${p.current} / ${total}` : `${p.current ?? ""}`) : "";
  return h("div", { class: "progress", dataset: { pct: String(pct) } },
    h("div", { class: "bar" }, fillEl),
    h("div", { class: "bar-label" }, [label, p && p.message ? " · " + p.message : ""].join("")));
}

// The honest states of a page or panel.
export function loading(what) {
  return h("div", { class: "state loading" }, h("span", { class: "spinner" }), `Loading ${what}…`);
}

export function empty(title, hint) {
  return h("div", { class: "state empty" }, h("strong", {}, title), hint ? h("p", {}, hint) : null);
}

// An ApiError (api.js) or any other failure, said plainly.
export function errorState(err, what) {
  const st = err && err.status;
  let title = `Could not load ${what}`;
  let hint = err && err.message ? err.message : String(err);
  let cls = "state error";
  if (st === 404) {
    title = "Not found";
    hint = `No ${what} with this id in your tenant (or it does not exist).`;
    cls += " not-found";
  } else if (st === 401) {
    title = "Signed out: the token was rejected";
    hint = (err.detail || "") + " — sign in again with a valid token.";
  } else if (st === 403) {
    title = "Not allowed";
    hint = (err.detail || "your token may not do this") + ".";
  } else if (st === 0) {
    title = "The gateway cannot be reached";
  }
  return h("div", { class: cls, role: "alert", dataset: { status: String(st ?? "") } },
    h("strong", {}, title), h("p", {}, hint),
    st === 401 ? h("p", {}, h("a", { href: "#/signin" }, "Sign in")) : null);
}

// A short-lived message at the top of the page.
export function toast(text, kind = "info") {
  const box = document.getElementById("toasts");
  if (!box) return;
  const el = h("div", { class: `toast ${kind}`, role: "status" }, text);
  box.append(el);
  setTimeout(() => el.remove(), 5000);
}

// A button that asks once more before doing something that cannot be
// undone (no window.confirm: it blocks the page and its live updates).
export function confirmButton(label, confirmLabel, action, cls = "") {
  let armed = false;
  let timer = null;
  const btn = h("button", { type: "button", class: "btn " + cls }, label);
  btn.addEventListener("click", async () => {
    if (!armed) {
      armed = true;
      btn.textContent = confirmLabel;
      btn.classList.add("armed");
      timer = setTimeout(() => { armed = false; btn.textContent = label; btn.classList.remove("armed"); }, 4000);
      return;
    }
    clearTimeout(timer);
    armed = false;
    btn.textContent = label;
    btn.classList.remove("armed");
    btn.disabled = true;
    try { await action(); } finally { btn.disabled = false; }
  });
  return btn;
}

// A definition list of [label, value] rows.
export function fields(rows) {
  return h("dl", { class: "fields" },
    rows.filter(Boolean).map(([k, v]) => [h("dt", {}, k), h("dd", {}, v ?? "—")]));
}
