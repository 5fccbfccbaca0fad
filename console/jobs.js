// jobs.js - the jobs list (filters, live refresh, "more") and a job's
// page (its fields, progress, result or error, its events as they come,
// cancel and retry).

import * as api from "./api.js";
import {
  h, fill, statusBadge, idLink, time, ms, between, json, progressBar, loading, empty,
  errorState, toast, fields, isTerminal, shortId,
} from "./ui.js";

const STATUSES = ["queued", "running", "waiting", "succeeded", "failed", "cancelled"];
// Used when GET /v1/queues cannot say which types are registered.
const KNOWN_TYPES = ["demo", "test", "long-running", "bench.ticker", "agent.run", "mcp.discover"];
const POLL_MS = 2000;

export async function jobTypes() {
  try {
    const q = await api.get("/v1/queues");
    const types = (q.items || []).map((i) => i.type);
    return types.length ? types : KNOWN_TYPES;
  } catch {
    return KNOWN_TYPES;
  }
}

function select(id, label, options, value, onchange) {
  return h("label", { class: "filter" }, label,
    h("select", { id, onchange: (e) => onchange(e.target.value) },
      h("option", { value: "" }, "any"),
      options.map((o) => h("option", { value: o, selected: o === value }, o))));
}

export function jobRow(j) {
  const dur = j.started_at ? ms(between(j.started_at, j.finished_at)) : "—";
  const p = j.progress;
  const prog = p && p.total ? `${p.current}/${p.total}` : "";
  const href = j.type === "agent.run" && j.payload && j.payload.run_id ? `#/runs/${j.payload.run_id}` : `#/jobs/${j.id}`;
  return h("tr", { dataset: { id: j.id, status: j.status, type: j.type } },
    h("td", {}, statusBadge(j.status)),
    h("td", {}, h("a", { href: `#/jobs/${j.id}`, class: "mono", title: j.id }, shortId(j.id))),
    h("td", {}, j.type === "agent.run" ? h("a", { href }, j.type) : j.type),
    h("td", { class: "num" }, prog),
    h("td", { class: "num" }, `${j.attempts}/${j.max_attempts}`),
    h("td", {}, time(j.created_at)),
    h("td", { class: "num" }, dur),
    h("td", { class: "err-cell" }, j.error ? `${j.error.code}: ${j.error.message}` : ""));
}

export function jobsTable(items, id = "jobs-table") {
  return h("table", { class: "table", id },
    h("thead", {}, h("tr", {}, ["Status", "Job", "Type", "Progress", "Attempts", "Created", "Duration", "Error"]
      .map((c) => h("th", {}, c)))),
    h("tbody", {}, items.map(jobRow)));
}

// Newest first: created_at, then id (ids are time-ordered UUIDs).
function newerFirst(a, b) {
  if (a.created_at !== b.created_at) return a.created_at < b.created_at ? 1 : -1;
  return a.id < b.id ? 1 : a.id > b.id ? -1 : 0;
}

export function jobsPage(view, params, query) {
  const status = query.status || "";
  const type = query.type || "";
  const setFilter = (k, v) => {
    const q = { status, type, [k]: v };
    location.hash = "#/jobs" + api.query(q);
  };
  const filters = h("div", { class: "filters" },
    select("filter-status", "Status", STATUSES, status, (v) => setFilter("status", v)));
  const live = h("span", { class: "live-dot", title: "refreshing every 2 s" }, "live");
  const list = h("div", { id: "jobs-list" }, loading("jobs"));
  const more = h("button", { type: "button", class: "btn", id: "jobs-more", hidden: true }, "More");
  view.append(
    h("div", { class: "page-head" }, h("h1", {}, "Jobs"), live,
      h("a", { href: "#/runs/new", class: "btn primary" }, "New agent run")),
    filters, list, h("div", { class: "row center" }, more));

  jobTypes().then((types) => {
    if (type && !types.includes(type)) types = [...types, type];
    filters.append(select("filter-type", "Type", types, type, (v) => setFilter("type", v)));
  });

  // The first page is reloaded every 2 s (a job that left the filter
  // leaves the list); pages behind it ("More") are kept as loaded.
  let first = [];
  let older = [];
  let cursor = null;
  let loaded = false;
  let stopped = false;
  let timer = null;
  const base = { status, type, limit: 50 };

  const draw = () => {
    const seen = new Set(first.map((j) => j.id));
    const rows = first.concat(older.filter((j) => !seen.has(j.id))).sort(newerFirst);
    if (!rows.length) {
      fill(list, empty(status || type ? "No jobs match these filters" : "No jobs yet",
        status || type ? "Clear a filter to see more." : "Submit one with POST /v1/jobs, or start an agent run."));
    } else {
      fill(list, jobsTable(rows));
    }
    more.hidden = !cursor;
  };

  const firstPage = async () => {
    try {
      const page = await api.get("/v1/jobs" + api.query(base));
      if (stopped) return;
      first = page.items;
      if (!older.length) cursor = page.next_cursor;
      loaded = true;
      draw();
      live.classList.remove("off");
    } catch (e) {
      if (stopped) return;
      live.classList.add("off");
      if (!loaded) fill(list, errorState(e, "jobs"));
      else toast(`Refresh failed: ${e.detail || e.message}`, "error");
      if (e.status >= 400 && e.status < 500) return;   // asking again would not help
    }
    // A hidden tab is not refreshed until it is shown again.
    const next = () => {
      if (stopped) return;
      if (document.hidden) timer = setTimeout(next, POLL_MS);
      else firstPage();
    };
    if (!stopped) timer = setTimeout(next, POLL_MS);
  };

  more.addEventListener("click", async () => {
    more.disabled = true;
    try {
      const page = await api.get("/v1/jobs" + api.query({ ...base, cursor }));
      older = older.concat(page.items);
      cursor = page.next_cursor;
      draw();
    } catch (e) {
      toast(`Could not load more: ${e.detail || e.message}`, "error");
    } finally {
      more.disabled = false;
    }
  });

  firstPage();
  return () => { stopped = true; clearTimeout(timer); };
}

// --- one job ---------------------------------------------------------------

function eventSummary(type, d) {
  if (!d) return "";
  switch (type) {
    case "job.queued": return `type ${d.type}, priority ${d.priority}`;
    case "job.started": return `attempt ${d.attempt} on ${d.worker_id}`;
    case "job.progress": return d.total !== undefined ? `${d.current}/${d.total} ${d.message || ""}` : JSON.stringify(d);
    case "job.retrying": return `attempt ${d.attempt} ended (${d.reason}); next in ${ms(d.delay_ms)}${d.error ? ": " + d.error.message : ""}`;
    case "job.succeeded": return "result " + JSON.stringify(d.result).slice(0, 200);
    case "job.failed": return `${d.error.code}: ${d.error.message}`;
    case "job.cancelled": return d.reason || "";
    case "step.started": return `#${d.index} ${d.action}`;
    case "step.completed": return `#${d.index} ${d.action} ${d.status} in ${ms(d.latency_ms)}`;
    case "llm.delta": return JSON.stringify(d.delta);
    case "tool.called": return `${d.tool} ${d.status} ${ms(d.latency_ms)}`;
    case "log": return `[${d.level}] ${d.message}`;
    case "approval.requested": return `${d.tool} waits for approval (${d.tool_call_id})`;
    case "approval.resolved": return `${d.tool_call_id} ${d.decision}${d.note ? ": " + d.note : ""}`;
    default: return JSON.stringify(d).slice(0, 200);
  }
}

export function eventRow(type, env) {
  return h("li", { class: "event ev-" + type.replace(".", "-"), dataset: { id: String(env.id), type } },
    h("span", { class: "ev-id mono" }, String(env.id)),
    h("span", { class: "ev-time", title: env.ts }, env.ts ? env.ts.slice(11, 23) : ""),
    h("span", { class: "ev-type" }, type),
    h("span", { class: "ev-data" }, eventSummary(type, env.data)));
}

export function streamState(el, state) {
  const text = { live: "live", reconnecting: "reconnecting…", ended: "ended", closed: "stopped" }[state] || state;
  el.textContent = text;
  el.dataset.state = state;
}

// The cancel and retry buttons of a job (or of an agent run's job).
export function actions(job, { onChanged, onRetried, cancelPath }) {
  const box = h("div", { class: "actions" });
  const canCancel = ["queued", "running", "waiting"].includes(job.status);
  const canRetry = job.status === "failed" || job.status === "cancelled";
  box.append(
    h("button", {
      type: "button", class: "btn danger", id: "cancel", disabled: !canCancel,
      title: canCancel ? "Cancel this job" : "Only a queued, running or waiting job can be cancelled",
      onclick: async (e) => {
        e.target.disabled = true;
        try {
          await api.del(cancelPath || `/v1/jobs/${job.id}`);
          toast("Cancellation requested", "ok");
          onChanged();
        } catch (err) {
          toast(`Cancel failed: ${err.detail || err.message}`, "error");
          e.target.disabled = false;
        }
      },
    }, job.status === "cancelling" ? "Cancelling…" : "Cancel"),
    h("button", {
      type: "button", class: "btn", id: "retry", disabled: !canRetry,
      title: canRetry ? "Run it again as a new job" : "Only a failed or cancelled job can be retried",
      onclick: async (e) => {
        e.target.disabled = true;
        try {
          const nj = await api.post(`/v1/jobs/${job.id}/retry`);
          toast(`Retried as ${shortId(nj.id)}`, "ok");
          onRetried(nj);
        } catch (err) {
          toast(`Retry failed: ${err.detail || err.message}`, "error");
          e.target.disabled = false;
        }
      },
    }, "Retry"));
  return box;
}

export function jobPage(view, params) {
  const id = params.id;
  const head = h("div", { class: "page-head" }, h("h1", {}, "Job ", h("span", { class: "mono" }, shortId(id))));
  const body = h("div", { id: "job" }, loading("job"));
  view.append(head, body);
  let es = null;
  let stopped = false;
  let job = null;
  let refreshTimer = null;

  const eventsList = h("ol", { class: "events", id: "events" });
  const streamEl = h("span", { class: "stream-state", id: "stream-state" }, "connecting…");
  const panel = h("div", {});

  const draw = () => {
    const isRun = job.type === "agent.run" && job.payload && job.payload.run_id;
    fill(panel,
      h("div", { class: "card summary" },
        h("div", { class: "summary-top" }, statusBadge(job.status),
          h("span", { class: "type" }, job.type),
          isRun ? h("a", { href: `#/runs/${job.payload.run_id}`, class: "btn ghost" }, "Open agent run →") : null,
          actions(job, {
            onChanged: refresh,
            onRetried: (nj) => { location.hash = nj.run_id ? `#/runs/${nj.run_id}` : `#/jobs/${nj.id}`; },
          })),
        progressBar(job.progress, job.status),
        job.error ? h("div", { class: "error-box", id: "job-error" },
          h("strong", {}, job.error.code), " ", job.error.message) : null,
        job.status === "succeeded" ? h("div", { class: "result", id: "job-result" }, h("h3", {}, "Result"), json(job.result)) : null),
      h("div", { class: "grid2" },
        h("div", { class: "card" }, h("h3", {}, "Details"), fields([
          ["Id", h("span", { class: "mono", id: "job-id" }, job.id)],
          ["Status", h("span", { id: "job-status" }, job.status)],
          ["Type", job.type],
          ["Attempts", `${job.attempts} of ${job.max_attempts}`],
          ["Priority", String(job.priority)],
          ["Timeout", `${job.timeout_s} s per attempt`],
          ["Created", time(job.created_at)],
          ["Started", time(job.started_at)],
          ["Finished", time(job.finished_at)],
          ["Duration", job.started_at ? ms(between(job.started_at, job.finished_at)) : "—"],
          ["Run at", job.run_at ? time(job.run_at) : "now"],
          ["Worker", job.worker_id ? h("span", { class: "mono" }, job.worker_id) : "—"],
          job.retry_of ? ["Retry of", idLink(`#/jobs/${job.retry_of}`, job.retry_of)] : null,
          ["Events", String(job.last_event_id)],
        ])),
        h("div", { class: "card" }, h("h3", {}, "Payload"), json(job.payload))),
      h("div", { class: "card" },
        h("div", { class: "card-head" }, h("h3", {}, "Events"), streamEl),
        eventsList));
  };

  const refresh = async () => {
    try {
      job = await api.get(`/v1/jobs/${id}`);
      if (stopped) return;
      if (body.firstChild !== panel) fill(body, panel);
      draw();
    } catch (e) {
      if (!stopped) fill(body, errorState(e, "job"));
      return false;
    }
    return true;
  };

  // A running job's fields (attempts, heartbeat) move without events of
  // their own; a slow poll keeps them honest while the stream runs.
  const schedule = () => {
    clearTimeout(refreshTimer);
    if (!stopped && job && !isTerminal(job.status)) refreshTimer = setTimeout(() => refresh().then(schedule), 3000);
  };

  refresh().then((ok) => {
    if (!ok || stopped) return;
    es = api.stream(`/v1/jobs/${id}/events`, (type, env) => {
      eventsList.append(eventRow(type, env));
      if (type === "job.progress" && env.data && env.data.total !== undefined) {
        job.progress = env.data;
        const bar = panel.querySelector(".progress");
        if (bar) bar.replaceWith(progressBar(job.progress, job.status));
      }
      if (type === "job.started" || type === "job.retrying" || api.TERMINAL_EVENTS.includes(type)) refresh();
    }, (state) => streamState(streamEl, state));
    schedule();
  });

  return () => { stopped = true; clearTimeout(refreshTimer); if (es) es.close(); };
}
