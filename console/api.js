// api.js - the console's one way to the API: the token (kept in this
// tab's sessionStorage, gone when the tab closes or on sign-out), calls
// with it as a bearer token, problem+json answers turned into ApiError,
// and event streams (EventSource cannot send headers, so the token goes
// in ?access_token=, which only the event-stream routes accept).

const KEY = "agentgate.token";

export function token() {
  return sessionStorage.getItem(KEY) || "";
}

export function setToken(t) {
  sessionStorage.setItem(KEY, t);
}

export function signOut() {
  sessionStorage.removeItem(KEY);
}

// The token's claims, decoded for display only (the gateway verifies it).
export function claims(t = token()) {
  try {
    const part = t.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const text = atob(part + "===".slice((part.length + 3) % 4));
    const bytes = Uint8Array.from(text, (c) => c.charCodeAt(0));
    return JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    return null;
  }
}

export class ApiError extends Error {
  constructor(status, problem, fallback) {
    const detail = problem && problem.detail ? problem.detail : fallback;
    super(status ? `${status} ${problem && problem.title ? problem.title : ""}: ${detail}` : detail);
    this.status = status;
    this.problem = problem;
    this.detail = detail;
    this.pointer = problem && problem.errors && problem.errors[0] ? problem.errors[0].pointer : null;
  }
}

// Listeners told when a call is answered 401 (the shell shows it).
const unauthorized = new Set();
export function onUnauthorized(fn) { unauthorized.add(fn); }

// method, path ("/v1/jobs?..."), optional JSON body. Resolves to
// {status, body, headers}; rejects with ApiError for any answer >= 400
// (status 0 when the gateway could not be reached).
export async function call(method, path, body) {
  const headers = { Accept: "application/json" };
  const t = token();
  if (t) headers.Authorization = "Bearer " + t;
  const init = { method, headers, cache: "no-store" };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let resp;
  try {
    resp = await fetch(path, init);
  } catch (e) {
    throw new ApiError(0, null, `the gateway could not be reached (${e.message})`);
  }
  const text = await resp.text();
  let parsed = null;
  if (text) {
    try { parsed = JSON.parse(text); } catch { parsed = null; }
  }
  if (resp.status >= 400) {
    const err = new ApiError(resp.status, parsed, text.slice(0, 200) || resp.statusText);
    if (resp.status === 401) unauthorized.forEach((fn) => fn(err));
    throw err;
  }
  return { status: resp.status, body: parsed, headers: resp.headers };
}

export const get = (path) => call("GET", path).then((r) => r.body);
export const post = (path, body) => call("POST", path, body).then((r) => r.body);
export const del = (path) => call("DELETE", path).then((r) => r.body);

// "?a=1&b=2" from an object, leaving out empty values.
export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== "") q.set(k, v);
  const s = q.toString();
  return s ? "?" + s : "";
}

// Opens an EventSource on path (an events route) and hands every event
// to onEvent(type, envelope). It is closed on the job's terminal event,
// so the browser does not reconnect to a finished job. Returns
// {close()}; onState("live"|"reconnecting"|"ended"|"closed") reports
// the connection.
export const TERMINAL_EVENTS = ["job.succeeded", "job.failed", "job.cancelled"];

export function stream(path, onEvent, onState = () => {}) {
  const url = path + (path.includes("?") ? "&" : "?") + "access_token=" + encodeURIComponent(token());
  const es = new EventSource(url);
  let ended = false;
  const handle = (e) => {
    let env = null;
    try { env = JSON.parse(e.data); } catch { return; }
    onEvent(e.type, env);
    if (TERMINAL_EVENTS.includes(e.type)) {
      ended = true;
      es.close();
      onState("ended");
    }
  };
  const types = ["job.queued", "job.started", "job.progress", "job.retrying", "step.started",
    "step.completed", "llm.delta", "tool.called", "log", "approval.requested",
    "approval.resolved", ...TERMINAL_EVENTS];
  for (const t of types) es.addEventListener(t, handle);
  es.addEventListener("message", handle);
  es.onopen = () => onState("live");
  es.onerror = () => {
    if (ended) return;
    onState(es.readyState === EventSource.CLOSED ? "closed" : "reconnecting");
  };
  return { close() { ended = true; es.close(); }, source: es };
}
