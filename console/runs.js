// runs.js - agent runs: the list, the form that starts one, and a run's
// page (prompt, TODOs, the steps as a timeline with latencies, the
// model's text streaming in from llm.delta events, the output, metrics,
// and the tool call a waiting run asks approval for, with approve/deny).

import * as api from "./api.js";
import {
  h, fill, statusBadge, time, ms, between, json, loading, empty, errorState, toast, fields,
  isTerminal, shortId,
} from "./ui.js";
import { actions, eventRow, streamState } from "./jobs.js";

const STATUSES = ["queued", "running", "waiting", "succeeded", "failed", "cancelled"];

// --- the list ----------------------------------------------------------------

export function runsPage(view, params, query) {
  const status = query.status || "";
  const list = h("div", { id: "runs-list" }, loading("agent runs"));
  const more = h("button", { type: "button", class: "btn", id: "runs-more", hidden: true }, "More");
  view.append(
    h("div", { class: "page-head" }, h("h1", {}, "Agent runs"),
      h("a", { href: "#/runs/new", class: "btn primary" }, "New agent run")),
    h("div", { class: "filters" }, h("label", { class: "filter" }, "Status",
      h("select", { id: "filter-run-status", onchange: (e) => { location.hash = "#/runs" + api.query({ status: e.target.value }); } },
        h("option", { value: "" }, "any"), STATUSES.map((s) => h("option", { value: s, selected: s === status }, s))))),
    list, h("div", { class: "row center" }, more));
  // The first page is reloaded every 3 s; pages behind it ("More") are
  // kept as they were loaded.
  let first = [];
  let older = [];
  let items = [];
  let cursor = null;
  let stopped = false;
  let timer = null;
  const merge = () => {
    const seen = new Set(first.map((r) => r.id));
    items = first.concat(older.filter((r) => !seen.has(r.id)));
  };
  const draw = () => {
    if (!items.length) {
      fill(list, empty(status ? "No agent runs with this status" : "No agent runs yet",
        h("a", { href: "#/runs/new" }, "Start one")));
    } else {
      fill(list, h("table", { class: "table", id: "runs-table" },
        h("thead", {}, h("tr", {}, ["Status", "Run", "Prompt", "Model", "Created", "Duration"].map((c) => h("th", {}, c)))),
        h("tbody", {}, items.map((r) => h("tr", { dataset: { id: r.id, status: r.status } },
          h("td", {}, statusBadge(r.status)),
          h("td", {}, h("a", { href: `#/runs/${r.id}`, class: "mono", title: r.id }, shortId(r.id))),
          h("td", { class: "prompt-cell" }, h("a", { href: `#/runs/${r.id}` }, (r.prompt || "").slice(0, 140))),
          h("td", {}, r.model || "default"),
          h("td", {}, time(r.created_at)),
          h("td", { class: "num" }, r.started_at ? ms(between(r.started_at, r.finished_at)) : "—"))))));
    }
    more.hidden = !cursor;
  };
  const load = async (append) => {
    try {
      const page = await api.get("/v1/agent-runs" + api.query({ status, limit: 50, cursor: append ? cursor : "" }));
      if (stopped) return;
      if (append) {
        older = older.concat(page.items);
        cursor = page.next_cursor;
      } else {
        if (!older.length) cursor = page.next_cursor;
        first = page.items;
      }
      merge();
      draw();
    } catch (e) {
      if (!stopped && !items.length) fill(list, errorState(e, "agent runs"));
      else if (!stopped) toast(`Refresh failed: ${e.detail || e.message}`, "error");
      if (e.status >= 400 && e.status < 500) return;   // asking again would not help
    }
    if (!append && !stopped) timer = setTimeout(() => load(false), 3000);
  };
  more.addEventListener("click", () => load(true));
  load(false);
  return () => { stopped = true; clearTimeout(timer); };
}

// --- the form ----------------------------------------------------------------

export function newRunPage(view) {
  const prompt = h("textarea", { id: "run-prompt", rows: 5, required: true, maxlength: 32000,
    placeholder: "What should the agent do? e.g. What time is it in UTC?" });
  const planning = h("select", { id: "run-planning" },
    [["optional", "optional — answer directly, plan if needed"], ["full", "full — plan TODOs and steps"], ["none", "none — deterministic plan"]]
      .map(([v, l]) => h("option", { value: v }, l)));
  const response = h("select", { id: "run-response" },
    [["llm-best-effort", "llm-best-effort — the model, else a template"], ["llm-required", "llm-required — fail without a model"], ["fallback-only", "fallback-only — template, no model"]]
      .map(([v, l]) => h("option", { value: v }, l)));
  const model = h("select", { id: "run-model" }, h("option", { value: "" }, "tenant default"));
  const session = h("select", { id: "run-session" }, h("option", { value: "" }, "none (a one-off run)"),
    h("option", { value: "__new" }, "+ a new session"));
  const tools = h("div", { id: "run-tools", class: "tools" }, loading("tools"));
  const maxIter = h("input", { id: "run-max-iterations", type: "number", min: 1, max: 64, placeholder: "8" });
  const timeout = h("input", { id: "run-timeout", type: "number", min: 1, max: 86400, placeholder: "120" });
  const msg = h("div", { id: "run-msg" });
  const submit = h("button", { type: "submit", class: "btn primary", id: "run-submit" }, "Start run");

  const field = (label, input, hint) => h("div", { class: "field" }, h("label", { for: input.id }, label), input,
    hint ? h("div", { class: "hint" }, hint) : null);

  const form = h("form", { class: "card form", id: "new-run" },
    field("Prompt", prompt),
    h("div", { class: "grid2" },
      field("Planning mode", planning), field("Response mode", response),
      field("Model", model, "GET /v1/models: the tenant's own rows, then global ones"),
      field("Session", session, "earlier runs of the session become context")),
    h("div", { class: "field" }, h("label", {}, "Tools"), tools,
      h("div", { class: "hint" }, "None ticked: every tool the tenant sees.")),
    h("details", {}, h("summary", {}, "Limits"),
      h("div", { class: "grid2" }, field("Max iterations", maxIter), field("Timeout (s)", timeout))),
    msg, h("div", { class: "row" }, submit));
  view.append(h("div", { class: "page-head" }, h("h1", {}, "New agent run")), form);

  api.get("/v1/models").then((m) => {
    for (const row of m.items || []) {
      model.append(h("option", { value: row.model },
        `${row.model} (${row.provider}, ${row.scope}${row.is_default ? ", default" : ""})`));
    }
  }).catch((e) => model.after(h("div", { class: "hint error-text" }, `models: ${e.detail || e.message}`)));
  api.get("/v1/sessions?limit=50").then((s) => {
    for (const row of s.items || []) {
      session.insertBefore(h("option", { value: row.id }, row.title ? `${row.title} (${shortId(row.id)})` : shortId(row.id)),
        session.lastChild);
    }
  }).catch(() => {});
  api.get("/v1/tools").then((t) => {
    const items = t.items || [];
    if (!items.length) { fill(tools, h("span", { class: "muted" }, "no tools")); return; }
    fill(tools, items.map((tool) => h("label", { class: "tool", title: tool.description || "" },
      h("input", { type: "checkbox", value: tool.name, name: "tool" }), " ", tool.name)));
  }).catch((e) => fill(tools, h("span", { class: "error-text" }, `tools: ${e.detail || e.message}`)));

  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    fill(msg);
    const body = { prompt: prompt.value, planning_mode: planning.value, response_mode: response.value };
    if (model.value) body.model = model.value;
    const picked = [...tools.querySelectorAll("input[name=tool]:checked")].map((i) => i.value);
    if (picked.length) body.tools = picked;
    if (maxIter.value) body.max_iterations = Number(maxIter.value);
    if (timeout.value) body.timeout_s = Number(timeout.value);
    submit.disabled = true;
    try {
      if (session.value === "__new") {
        const s = await api.post("/v1/sessions", { title: prompt.value.slice(0, 60) });
        body.session_id = s.id;
      } else if (session.value) {
        body.session_id = session.value;
      }
      const run = await api.post("/v1/agent-runs", body);
      location.hash = `#/runs/${run.id}`;
    } catch (err) {
      fill(msg, h("div", { class: "error-box", role: "alert" },
        err.pointer ? h("strong", {}, err.pointer + ": ") : null, err.detail || err.message));
      submit.disabled = false;
    }
  });
  prompt.focus();
}

// --- one run -----------------------------------------------------------------

const TODO_MARK = { done: "✓", failed: "✗", skipped: "–", pending: "○" };

function todoList(todos) {
  if (!todos || !todos.length) return empty("No TODOs yet");
  return h("ol", { class: "todos", id: "todos" }, todos.map((t) =>
    h("li", { class: "todo todo-" + t.status, dataset: { status: t.status } },
      h("span", { class: "mark" }, TODO_MARK[t.status] || "○"), t.title)));
}

// One step of the timeline: its action, status, latency (a bar scaled to
// the slowest step) and, opened, its input and output.
function stepRow(s, scale) {
  const bar = h("div", { class: "lat-fill st-" + (s.status || "running") });
  bar.style.width = s.latency_ms != null && scale > 0 ? Math.max(1, (100 * s.latency_ms) / scale) + "%" : "0";
  return h("li", { class: "step step-" + (s.status || "running"), dataset: { index: String(s.index), status: s.status || "running" } },
    h("details", {},
      h("summary", {},
        h("span", { class: "step-index" }, String(s.index)),
        h("span", { class: "step-action" }, s.action),
        h("span", { class: "step-status" }, s.status || "running"),
        h("span", { class: "lat" }, h("span", { class: "lat-bar" }, bar),
          h("span", { class: "lat-text" }, s.latency_ms != null ? ms(s.latency_ms) : "…"))),
      h("div", { class: "step-io" },
        s.input !== undefined ? [h("h4", {}, "Input"), json(s.input)] : null,
        s.output !== undefined && s.output !== null ? [h("h4", {}, "Output"), json(s.output)] : null)));
}

function timeline(steps) {
  if (!steps.length) return empty("No steps yet");
  const scale = Math.max(0, ...steps.map((s) => s.latency_ms || 0));
  return h("ol", { class: "steps", id: "steps" }, steps.map((s) => stepRow(s, scale)));
}

function metricsGrid(m) {
  if (!m || !Object.keys(m).length) return empty("No metrics yet", "They are written when the run ends.");
  const cells = [
    ["Overall", ms(m.overall_ms)], ["LLM calls", m.llm_calls], ["Tool calls", m.tool_calls],
    ["Tokens in", m.tokens_in], ["Tokens out", m.tokens_out],
    ["Iterations", m.max_iterations ? `${m.iterations} / ${m.max_iterations}` : m.iterations],
    ["PII redacted", m.pii_redacted], ["Guard findings", m.guard_findings],
  ];
  return h("div", { class: "metrics", id: "metrics" }, cells.map(([k, v]) =>
    h("div", { class: "metric" }, h("div", { class: "metric-v" }, v ?? "—"), h("div", { class: "metric-k" }, k))));
}

// A waiting run's pending tool call: the tool, its arguments, a note and
// the two decisions (POST /v1/agent-runs/{id}/approvals).
function approvalPanel(run, onDecided) {
  const a = run.pending_approval;
  if (run.status !== "waiting" || !a) return null;
  const note = h("input", { type: "text", id: "approval-note", placeholder: "Note (the model reads it on deny)", maxlength: "2000" });
  const decide = (decision) => async (e) => {
    e.target.disabled = true;
    try {
      const body = { tool_call_id: a.tool_call_id, decision };
      if (note.value) body.note = note.value;
      await api.post(`/v1/agent-runs/${run.id}/approvals`, body);
      toast(decision === "approve" ? "Approved" : "Denied", "ok");
      onDecided();
    } catch (err) {
      toast(`Decision failed: ${err.detail || err.message}`, "error");
      e.target.disabled = false;
    }
  };
  return h("div", { class: "error-box", id: "approval" },
    h("strong", {}, "Waiting for approval: "), h("span", { class: "mono" }, a.tool),
    json(a.arguments), fields([["Expires", time(a.expires_at)]]), note,
    h("button", { type: "button", class: "btn", id: "approve", onclick: decide("approve") }, "Approve"),
    h("button", { type: "button", class: "btn danger", id: "deny", onclick: decide("deny") }, "Deny"));
}

export function runPage(view, params) {
  const id = params.id;
  const body = h("div", { id: "run" }, loading("agent run"));
  view.append(h("div", { class: "page-head" }, h("h1", {}, "Agent run ", h("span", { class: "mono" }, shortId(id)))), body);

  let run = null;
  let es = null;
  let stopped = false;
  const steps = new Map();           // index -> step, from the run and its events
  let deltas = 0;
  const streamEl = h("span", { class: "stream-state", id: "stream-state" }, "connecting…");
  const tokensEl = h("div", { class: "tokens", id: "tokens", dataset: { deltas: "0" } });
  const caret = h("span", { class: "caret" });
  const eventsList = h("ol", { class: "events compact", id: "events" });
  const summary = h("div", {});
  const todosBox = h("div", {});
  const stepsBox = h("div", {});
  const outputBox = h("div", { id: "output-box" });
  const metricsBox = h("div", {});

  const drawSteps = () => fill(stepsBox, timeline([...steps.values()].sort((a, b) => a.index - b.index)));

  const drawRun = () => {
    const job = { id: run.job_id, status: run.status };
    fill(summary,
      h("div", { class: "summary-top" }, statusBadge(run.status),
        run.intent ? h("span", { class: "chip", title: "intent" }, run.intent) : null,
        h("span", { class: "chip", title: "model" }, run.model || "default model"),
        h("span", { class: "chip", title: "planning mode" }, "planning: " + run.planning_mode),
        h("span", { class: "chip", title: "response mode" }, "response: " + run.response_mode),
        h("a", { href: `#/jobs/${run.job_id}`, class: "btn ghost" }, "Job →"),
        actions(job, {
          cancelPath: `/v1/agent-runs/${run.id}`,
          onChanged: refresh,
          onRetried: (nj) => { location.hash = nj.run_id ? `#/runs/${nj.run_id}` : `#/jobs/${nj.id}`; },
        })),
      h("div", { class: "prompt", id: "prompt" }, run.prompt),
      approvalPanel(run, refresh),
      run.error ? h("div", { class: "error-box", id: "run-error" }, h("strong", {}, run.error.code), " ", run.error.message) : null,
      fields([
        ["Created", time(run.created_at)], ["Started", time(run.started_at)], ["Finished", time(run.finished_at)],
        ["Duration", run.started_at ? ms(between(run.started_at, run.finished_at)) : "—"],
        run.session_id ? ["Session", h("span", { class: "mono" }, run.session_id)] : null,
        run.tools ? ["Tools", run.tools.join(", ")] : null,
      ]));
    fill(todosBox, todoList(run.todos));
    for (const s of run.steps || []) {
      // A row read while its step.completed was on the way must not undo it.
      const known = steps.get(s.index);
      if (known && known.status !== "running" && s.status === "running") continue;
      steps.set(s.index, { ...known, ...s });
    }
    drawSteps();
    caret.hidden = isTerminal(run.status);
    if (run.output) {
      fill(outputBox, h("div", { class: "output", id: "output" }, run.output));
    } else {
      fill(outputBox, isTerminal(run.status) ? empty("No output") : empty("The answer appears here when the run ends"));
    }
    fill(metricsBox, metricsGrid(run.metrics));
  };

  const layout = h("div", {},
    h("div", { class: "card summary" }, summary),
    h("div", { class: "grid2 wide-left" },
      h("div", {},
        h("div", { class: "card" }, h("div", { class: "card-head" }, h("h3", {}, "Model output, live"), streamEl),
          h("div", { class: "tokens-wrap" }, tokensEl, caret)),
        h("div", { class: "card" }, h("h3", {}, "Output"), outputBox),
        h("div", { class: "card" }, h("h3", {}, "Steps"), stepsBox)),
      h("div", {},
        h("div", { class: "card" }, h("h3", {}, "TODOs"), todosBox),
        h("div", { class: "card" }, h("h3", {}, "Metrics"), metricsBox),
        h("div", { class: "card" }, h("h3", {}, "Events"), eventsList))));

  const refresh = async () => {
    try {
      run = await api.get(`/v1/agent-runs/${id}`);
      if (stopped) return false;
      if (body.firstChild !== layout) fill(body, layout);
      drawRun();
      return true;
    } catch (e) {
      if (!stopped) fill(body, errorState(e, "agent run"));
      return false;
    }
  };

  const onEvent = (type, env) => {
    const d = env.data || {};
    if (type !== "llm.delta") eventsList.append(eventRow(type, env));
    if (type === "llm.delta") {
      deltas++;
      tokensEl.dataset.deltas = String(deltas);
      let seg = tokensEl.querySelector(`[data-step="${CSS.escape(String(d.step_id))}"]`);
      if (!seg) {
        seg = h("div", { class: "token-seg", dataset: { step: String(d.step_id) } },
          h("span", { class: "seg-label" }, `step ${d.index}`));
        tokensEl.append(seg);
      }
      seg.append(d.delta || "");
    } else if (type === "step.started") {
      steps.set(d.index, { index: d.index, action: d.action, status: "running", input: d.input });
      drawSteps();
    } else if (type === "step.completed") {
      steps.set(d.index, { ...steps.get(d.index), index: d.index, action: d.action, status: d.status,
        output: d.output, latency_ms: d.latency_ms });
      drawSteps();
      if (String(d.action).startsWith("plan:")) refresh();   // the TODO list was written
    } else if (type === "job.started" || type === "job.progress" || type.startsWith("approval.") ||
               api.TERMINAL_EVENTS.includes(type)) {
      refresh();
    }
  };

  refresh().then((ok) => {
    if (!ok || stopped) return;
    es = api.stream(`/v1/agent-runs/${id}/events`, onEvent, (state) => {
      streamState(streamEl, state);
      if (state === "ended") caret.hidden = true;
    });
  });
  return () => { stopped = true; if (es) es.close(); };
}
