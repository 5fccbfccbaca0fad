// ops.js - the operator's pages: queue depths per job type, the live
// workers, and the dead letters (failed jobs not yet retried or
// discarded) with retry and discard, one and all.

import * as api from "./api.js";
import {
  h, fill, time, ms, ago, loading, empty, errorState, toast, confirmButton, shortId, idLink,
} from "./ui.js";
import { jobTypes } from "./jobs.js";

// Loads with fetcher and draws with render every periodMs while the page
// is shown; the first failure with nothing drawn yet shows the error.
function polled(box, what, fetcher, render, periodMs = 3000) {
  let stopped = false;
  let timer = null;
  let drawn = false;
  const tick = async () => {
    try {
      const data = await fetcher();
      if (stopped) return;
      render(data);
      drawn = true;
    } catch (e) {
      if (stopped) return;
      if (!drawn || e.status === 401 || e.status === 403 || e.status === 404) {
        fill(box, errorState(e, what));
        drawn = false;
        if (e.status) return;   // the same answer again would not help
      } else {
        toast(`Refresh failed: ${e.detail || e.message}`, "error");
      }
    }
    if (!stopped) timer = setTimeout(tick, periodMs);
  };
  tick();
  return () => { stopped = true; clearTimeout(timer); };
}

export function queuesPage(view) {
  const box = h("div", { id: "queues" }, loading("queues"));
  view.append(h("div", { class: "page-head" }, h("h1", {}, "Queues"),
    h("span", { class: "live-dot", title: "refreshing every 3 s" }, "live")), box);
  return polled(box, "queues", () => api.get("/v1/queues"), (q) => {
    const items = q.items || [];
    if (!items.length) { fill(box, empty("No job types are registered")); return; }
    const num = (n, href, cls = "") => h("td", { class: "num " + (n ? cls : "zero") }, href && n ? h("a", { href }, String(n)) : String(n));
    fill(box, h("table", { class: "table", id: "queues-table" },
      h("thead", {}, h("tr", {}, ["Type", "Queued", "Delayed", "Running", "Dead", "Oldest queued"].map((c) => h("th", {}, c)))),
      h("tbody", {}, items.map((i) => h("tr", { dataset: { type: i.type } },
        h("td", {}, h("a", { href: "#/jobs" + api.query({ type: i.type }) }, i.type)),
        num(i.queued, "#/jobs" + api.query({ type: i.type, status: "queued" })),
        num(i.delayed),
        num(i.running, "#/jobs" + api.query({ type: i.type, status: "running" }), "running"),
        num(i.dead, "#/dead-letters" + api.query({ type: i.type }), "dead"),
        h("td", { class: "num" + (i.oldest_queued_age_ms > 60000 ? " warn" : "") },
          i.oldest_queued_age_ms == null ? "—" : ms(i.oldest_queued_age_ms)))))));
  });
}

export function workersPage(view) {
  const box = h("div", { id: "workers" }, loading("workers"));
  view.append(h("div", { class: "page-head" }, h("h1", {}, "Workers"),
    h("span", { class: "live-dot", title: "refreshing every 3 s" }, "live")), box);
  return polled(box, "workers", () => api.get("/v1/workers"), (w) => {
    const items = w.items || [];
    if (!items.length) {
      fill(box, empty("No live workers", "Jobs stay queued until a worker takes them. Start one: deploy/local/agentgate-stack worker start N, or systemctl start agentgate-worker@N."));
      return;
    }
    fill(box, h("table", { class: "table", id: "workers-table" },
      h("thead", {}, h("tr", {}, ["Worker", "Host", "PID", "Started", "Heartbeat", "Queues", "Busy", "Your jobs there"].map((c) => h("th", {}, c)))),
      h("tbody", {}, items.map((x) => {
        const fillEl = h("div", { class: "bar-fill st-running" });
        fillEl.style.width = (x.concurrency ? Math.min(100, (100 * x.running) / x.concurrency) : 0) + "%";
        return h("tr", { dataset: { id: x.id } },
          h("td", { class: "mono" }, x.id),
          h("td", {}, x.host),
          h("td", { class: "num" }, String(x.pid)),
          h("td", {}, time(x.started_at)),
          h("td", {}, h("time", { datetime: x.heartbeat_at, title: x.heartbeat_at }, ago(x.heartbeat_at))),
          h("td", { class: "queues-cell" }, (x.queues || []).map((q) => h("span", { class: "chip" }, q))),
          h("td", {}, h("div", { class: "progress small" }, h("div", { class: "bar" }, fillEl),
            h("div", { class: "bar-label" }, `${x.running} / ${x.concurrency}`))),
          h("td", {}, (x.jobs || []).length ? (x.jobs || []).map((id) => idLink(`#/jobs/${id}`, id)) : "—"));
      }))));
  });
}

export function deadLettersPage(view, params, query) {
  const type = query.type || "";
  const box = h("div", { id: "dead-letters" }, loading("dead letters"));
  const more = h("button", { type: "button", class: "btn", id: "dead-more", hidden: true }, "More");
  const typeSel = h("select", { id: "filter-dead-type", onchange: (e) => { location.hash = "#/dead-letters" + api.query({ type: e.target.value }); } },
    h("option", { value: "" }, "any"));
  jobTypes().then((types) => {
    for (const t of types) typeSel.append(h("option", { value: t, selected: t === type }, t));
  });
  const scope = type ? ` of type ${type}` : "";
  const bulk = h("div", { class: "actions" },
    confirmButton("Retry all", `Retry every dead letter${scope}?`, async () => {
      try {
        const r = await api.post("/v1/dead-letters/retry" + api.query({ type }));
        toast(`Retried ${r.retried} job${r.retried === 1 ? "" : "s"}`, "ok");
      } catch (e) { toast(`Retry all failed: ${e.detail || e.message}`, "error"); }
      reload();
    }, "retry-all"),
    confirmButton("Discard all", `Discard every dead letter${scope}?`, async () => {
      try {
        const r = await api.call("DELETE", "/v1/dead-letters" + api.query({ type }));
        toast(`Discarded ${r.body ? r.body.discarded : 0}`, "ok");
      } catch (e) { toast(`Discard all failed: ${e.detail || e.message}`, "error"); }
      reload();
    }, "danger discard-all"));
  view.append(
    h("div", { class: "page-head" }, h("h1", {}, "Dead letters"), bulk),
    h("p", { class: "muted" }, "Failed jobs that were neither retried nor discarded. Retrying makes a new job; discarding keeps the failed job but takes it off this list."),
    h("div", { class: "filters" }, h("label", { class: "filter" }, "Type", typeSel)),
    box, h("div", { class: "row center" }, more));

  let items = [];
  let cursor = null;
  const draw = () => {
    if (!items.length) {
      fill(box, empty("No dead letters", type ? `No failed job of type ${type} is waiting.` : "Every failed job has been retried or discarded."));
      more.hidden = true;
      return;
    }
    fill(box, h("table", { class: "table", id: "dead-table" },
      h("thead", {}, h("tr", {}, ["Job", "Type", "Error", "Attempts", "Failed", ""].map((c) => h("th", {}, c)))),
      h("tbody", {}, items.map((j) => h("tr", { dataset: { id: j.id, type: j.type } },
        h("td", {}, idLink(`#/jobs/${j.id}`, j.id)),
        h("td", {}, j.type),
        h("td", { class: "err-cell" }, j.error ? h("span", {}, h("strong", {}, j.error.code), " ", j.error.message) : "—"),
        h("td", { class: "num" }, `${j.attempts}/${j.max_attempts}`),
        h("td", {}, time(j.finished_at)),
        h("td", { class: "row-actions" },
          h("button", { type: "button", class: "btn small dl-retry", onclick: () => one("POST", j, "retry") }, "Retry"),
          h("button", { type: "button", class: "btn small ghost dl-discard", onclick: () => one("DELETE", j, "") }, "Discard")))))));
    more.hidden = !cursor;
  };
  const one = async (method, j, tail) => {
    try {
      const r = await api.call(method, `/v1/dead-letters/${j.id}${tail ? "/" + tail : ""}`);
      toast(method === "POST" ? `Retried ${shortId(j.id)} as ${shortId(r.body && r.body.id)}` : `Discarded ${shortId(j.id)}`, "ok");
      items = items.filter((x) => x.id !== j.id);
      draw();
    } catch (e) {
      toast(`${method === "POST" ? "Retry" : "Discard"} failed: ${e.detail || e.message}`, "error");
    }
  };
  const reload = async () => {
    try {
      const page = await api.get("/v1/dead-letters" + api.query({ type, limit: 50 }));
      items = page.items || [];
      cursor = page.next_cursor;
      draw();
    } catch (e) {
      fill(box, errorState(e, "dead letters"));
    }
  };
  more.addEventListener("click", async () => {
    try {
      const page = await api.get("/v1/dead-letters" + api.query({ type, limit: 50, cursor }));
      items = items.concat(page.items || []);
      cursor = page.next_cursor;
      draw();
    } catch (e) { toast(`Could not load more: ${e.detail || e.message}`, "error"); }
  });
  reload();
}
