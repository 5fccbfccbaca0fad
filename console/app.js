// app.js - the console's shell: sign-in, the navigation, and the hash
// router that shows one page at a time (#/jobs, #/jobs/{id}, #/runs/new,
// #/runs/{id}, #/queues, #/workers, #/dead-letters). A page is a function
// (container, params, query) that may return a cleanup function, called
// when the user leaves it (stops its polling and event streams).

import * as api from "./api.js";
import { h, fill, errorState, toast } from "./ui.js";
import { jobsPage, jobPage } from "./jobs.js";
import { runsPage, runPage, newRunPage } from "./runs.js";
import { queuesPage, workersPage, deadLettersPage } from "./ops.js";

const NAV = [
  ["#/jobs", "Jobs", "jobs"],
  ["#/runs", "Agent runs", "runs"],
  ["#/runs/new", "New run", "new-run"],
  ["#/queues", "Queues", "queues"],
  ["#/workers", "Workers", "workers"],
  ["#/dead-letters", "Dead letters", "dead-letters"],
];

// [pattern, page, nav key]; ":id" captures one path segment.
const ROUTES = [
  ["/signin", signinPage, null],
  ["/jobs", jobsPage, "jobs"],
  ["/jobs/:id", jobPage, "jobs"],
  ["/runs", runsPage, "runs"],
  ["/runs/new", newRunPage, "new-run"],
  ["/runs/:id", runPage, "runs"],
  ["/queues", queuesPage, "queues"],
  ["/workers", workersPage, "workers"],
  ["/dead-letters", deadLettersPage, "dead-letters"],
];

let cleanup = null;

function parseHash() {
  const raw = location.hash.replace(/^#/, "") || "/jobs";
  const [path, qs] = raw.split("?");
  return { path, query: Object.fromEntries(new URLSearchParams(qs || "")) };
}

function match(path) {
  for (const [pattern, page, nav] of ROUTES) {
    const want = pattern.split("/");
    const got = path.split("/");
    if (want.length !== got.length) continue;
    const params = {};
    let ok = true;
    for (let i = 0; i < want.length && ok; i++) {
      if (want[i].startsWith(":")) params[want[i].slice(1)] = decodeURIComponent(got[i]);
      else ok = want[i] === got[i];
    }
    if (ok && !(pattern === "/runs/:id" && got[2] === "new")) return { page, params, nav };
  }
  return null;
}

function renderShell() {
  const c = api.claims();
  const who = document.getElementById("who");
  const signedIn = Boolean(api.token());
  document.body.classList.toggle("signed-out", !signedIn);
  if (!signedIn || !c) {
    fill(who);
    return;
  }
  const roles = Array.isArray(c.roles) ? c.roles.join(" ") : c.roles || "";
  const exp = c.exp ? new Date(c.exp * 1000) : null;
  fill(who,
    h("span", { class: "who-tenant", title: "tenant" }, c.tenant_id || "?"),
    h("span", { class: "who-sub", title: `subject · roles: ${roles}` }, `${c.sub || "?"} · ${roles}`),
    exp ? h("span", { class: "who-exp", title: exp.toISOString() },
      exp < new Date() ? "token expired" : `until ${exp.toLocaleTimeString()}`) : null,
    h("button", { type: "button", class: "btn ghost", id: "signout", onclick: signOut }, "Sign out"));
}

function renderNav(active) {
  const nav = document.getElementById("nav");
  fill(nav, NAV.map(([href, label, key]) =>
    h("a", { href, class: key === active ? "active" : "", dataset: { nav: key } }, label)));
}

function signOut() {
  api.signOut();
  location.hash = "#/signin";
  renderShell();
}

function route() {
  if (cleanup) {
    try { cleanup(); } catch (e) { console.error(e); }
    cleanup = null;
  }
  const { path, query } = parseHash();
  const view = document.getElementById("view");
  if (!api.token() && path !== "/signin") {
    location.replace("#/signin?next=" + encodeURIComponent(location.hash || "#/jobs"));
    return;
  }
  renderShell();
  const m = match(path);
  renderNav(m ? m.nav : null);
  view.replaceChildren();
  if (!m) {
    view.append(errorState({ status: 404 }, "page"));
    return;
  }
  try {
    const c = m.page(view, m.params, query);
    if (typeof c === "function") cleanup = c;
  } catch (e) {
    view.append(errorState(e, "this page"));
  }
}

// Sign-in: the token is checked with one call before it is kept.
function signinPage(view, params, query) {
  const area = h("textarea", { id: "token", rows: 6, spellcheck: "false", autocomplete: "off",
    placeholder: "eyJhbGciOi…  (a JWT from agentgate-token or your identity provider)" });
  const msg = h("div", { id: "signin-msg" });
  const form = h("form", { class: "signin card", id: "signin-form" },
    h("h1", {}, "Sign in to agentgate"),
    h("p", { class: "muted" }, "Paste a bearer token. It stays in this tab only (session storage) and is sent to this gateway alone."),
    h("label", { for: "token" }, "Token"), area, msg,
    h("div", { class: "row" }, h("button", { type: "submit", class: "btn primary", id: "signin" }, "Sign in")),
    h("p", { class: "muted small" }, "Local stack: ",
      h("code", {}, "deploy/local/agentgate-stack token --tenant acme --sub alice --roles admin")));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const t = area.value.trim().replace(/^Bearer\s+/i, "");
    if (!t) { fill(msg, h("p", { class: "error-text" }, "Paste a token first.")); return; }
    if (!api.claims(t)) { fill(msg, h("p", { class: "error-text" }, "This is not a JWT (three base64url parts).")); return; }
    const previous = api.token();
    api.setToken(t);
    try {
      await api.get("/v1/jobs?limit=1");
    } catch (err) {
      if (err.status === 401 || err.status === 0) {
        if (previous) api.setToken(previous); else api.signOut();
        fill(msg, h("p", { class: "error-text", role: "alert" }, err.status === 401 ?
          `The gateway rejected this token: ${err.detail}` : err.detail));
        return;
      }
      // 403 and the like: the token is good, some pages will say what it may not do.
    }
    const next = query.next && query.next.startsWith("#/") && !query.next.startsWith("#/signin") ? query.next : "#/jobs";
    location.hash = next;
    toast("Signed in", "ok");
  });
  view.append(form);
  area.focus();
}

api.onUnauthorized(() => renderShell());
window.addEventListener("hashchange", route);
route();
