"""The client CLI, agentgate, run as a person and as a script would run it,
against the session stack: `run --follow` in a pseudo-terminal (the
progress line, the model's tokens as they arrive, the output, exit 0) and
on a pipe (plain lines), the exit statuses (failed, cancelled by Ctrl-C
with --cancel-on-interrupt, interrupted without it, usage, connection and
HTTP errors), and the jobs, events, queues, workers, schedules, approve
and deny commands, batches and webhook deliveries.

Ctrl-C is typed as a person types it: a ^C byte written to the terminal,
which the terminal driver turns into SIGINT for the foreground process.
The terminal capture of `agentgate run --follow` is kept in
AGENTGATE_CLI_CAPTURE_DIR (default build/cli-capture/, which CI keeps):
run-follow.raw is every byte the program wrote, escape sequences
included; run-follow.txt is what the screen shows at the end."""

import json
import os
import pty
import random
import re
import select
import signal
import socket
import subprocess
import threading
import time
import uuid

import pytest

from agentgate_test.paths import REPO, bin_path
from agentgate_test.ports import HTTP_PORT, port_free
from agentgate_test.waiting import TIMEOUT

CLI = bin_path("agentgate")

# The exit statuses `agentgate --help` documents.
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_CANCELLED = 0, 1, 2, 3
EXIT_CONNECT, EXIT_HTTP, EXIT_INTERRUPTED = 4, 5, 130

ANSI = re.compile(rb"\x1b\[[0-9;]*[A-Za-z]")
UUID_RE = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


def unused_port():
    """A port below 32768 (outside the kernel's ephemeral range) that no
    one listens on."""
    for _ in range(200):
        port = random.randrange(20000, 32768)
        if port_free(port):
            return port
    raise AssertionError("no free port in 20000-32767")


class CuttingRelay:
    """A TCP relay to the gateway that cuts the first event stream through
    it in the middle of a frame, after `frames` whole frames (the stream's
    "retry:" counts as one) and the next frame's "id:" line, as a dropped
    connection would; every other connection is relayed as it is. Keeps
    each request head it saw."""

    def __init__(self, frames):
        self.frames = frames
        self.heads = []
        self.cut_done = False
        self.lock = threading.Lock()
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.port = unused_port()
        self.sock.bind(("127.0.0.1", self.port))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.stopping = False
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while not self.stopping:
            try:
                c, _ = self.sock.accept()
            except socket.timeout:
                continue
            threading.Thread(target=self._relay, args=(c,), daemon=True).start()

    def _relay(self, client):
        up = socket.create_connection(("127.0.0.1", HTTP_PORT))
        head = b""
        cut = False
        try:
            while b"\r\n\r\n" not in head:
                data = client.recv(65536)
                if not data:
                    return
                head += data
            with self.lock:
                self.heads.append(head.split(b"\r\n\r\n")[0].decode())
                if b"/events" in head.split(b"\r\n")[0] and not self.cut_done:
                    self.cut_done = cut = True
            up.sendall(head)
            relayed, sent, cut_at = b"", 0, None
            while True:
                r, _, _ = select.select([client, up], [], [], 30)
                if not r:
                    return
                if client in r:
                    data = client.recv(65536)
                    if not data:
                        return
                    up.sendall(data)
                if up in r:
                    data = up.recv(65536)
                    if not data:
                        return
                    if not cut:
                        client.sendall(data)
                        continue
                    # Relay up to the end of the frames and into the next
                    # one past its id line, then drop the connection.
                    relayed += data
                    if cut_at is None:
                        pos = relayed.find(b"\r\n\r\n") + 4
                        for _ in range(self.frames):
                            pos = relayed.find(b"\n\n", pos)
                            if pos < 0:
                                break
                            pos += 2
                        else:
                            mid = relayed.find(b"\nevent: ", pos)
                            cut_at = mid + 4 if mid >= 0 else None
                    end = len(relayed) if cut_at is None else min(cut_at, len(relayed))
                    client.sendall(relayed[sent:end])
                    sent = end
                    if cut_at is not None and sent >= cut_at:
                        return
        finally:
            client.close()
            up.close()

    def stop(self):
        self.stopping = True
        self.thread.join()
        self.sock.close()


def cli_env(tenant, **extra):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("AGENTGATE_") and k != "NO_COLOR"}
    env["AGENTGATE_URL"] = f"http://127.0.0.1:{HTTP_PORT}"
    env["AGENTGATE_TOKEN"] = tenant.token
    env["TERM"] = "xterm-256color"
    env.update(extra)
    return env


def cli(tenant, *args, timeout=TIMEOUT, env=None):
    """Runs the CLI with pipes (not a terminal); returns the CompletedProcess."""
    return subprocess.run([CLI, *args], env=env or cli_env(tenant),
                          stdin=subprocess.DEVNULL, capture_output=True,
                          text=True, timeout=timeout)


def one_line_error(r, prefix="agentgate: "):
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(prefix), (
        f"expected one error line on stderr, got {r.stderr!r} (stdout {r.stdout!r})")
    return lines[0]


class Terminal:
    """The CLI in a pseudo-terminal of its own (pty.fork: a new session with
    the pty as its controlling terminal, as a shell would start it)."""

    def __init__(self, args, env):
        self.pid, self.fd = pty.fork()
        if self.pid == 0:                          # the child
            try:
                os.execve(CLI, [CLI, *args], env)
            finally:
                os._exit(127)
        self.out = b""
        self.status = None

    def _read(self, timeout):
        r, _, _ = select.select([self.fd], [], [], timeout)
        if not r:
            return False
        try:
            data = os.read(self.fd, 65536)
        except OSError:                            # EIO: the child closed the pty
            data = b""
        if not data:
            return None
        self.out += data
        return True

    def read_until(self, pattern, timeout=TIMEOUT):
        """Reads until the output (escape sequences removed) matches the
        regular expression pattern (bytes); returns the match."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            m = re.search(pattern, ANSI.sub(b"", self.out))
            if m:
                return m
            if self._read(0.1) is None:
                break
        raise AssertionError(f"{pattern!r} not seen on the terminal within {timeout} s; "
                             f"it shows: {self.out[-600:]!r}")

    def type(self, data):
        os.write(self.fd, data)

    def wait(self, timeout=TIMEOUT):
        """Reads to the end and returns the exit status."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._read(0.1) is None:
                break
        while time.monotonic() < deadline:
            pid, st = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                os.close(self.fd)
                self.status = (os.WEXITSTATUS(st) if os.WIFEXITED(st)
                               else 128 + os.WTERMSIG(st))
                return self.status
            time.sleep(0.05)
        os.kill(self.pid, signal.SIGKILL)
        os.waitpid(self.pid, 0)
        os.close(self.fd)
        raise AssertionError(f"agentgate did not exit within {timeout} s; "
                             f"the terminal shows: {self.out[-3000:]!r}")

    def text(self):
        """What was written, line ends as the program wrote them (the pty
        turns "\\n" into "\\r\\n")."""
        return self.out.replace(b"\r\n", b"\n").decode("utf-8", "replace")


def run_events(tenant, run_id):
    run = tenant.request("GET", f"/v1/agent-runs/{run_id}").expect_json(200)
    return run, tenant.events(run["job_id"])


def deltas_by_step(events):
    """The llm.delta text of each step, in order."""
    steps = {}
    for e in events:
        if e.event == "llm.delta":
            steps.setdefault(e.body["data"]["step_id"], []).append(e.body["data"]["delta"])
    return ["".join(parts) for parts in steps.values()]


def screen_of(raw):
    """What a terminal shows at the end for output that redraws its
    progress line with "\\r ESC[2K": each line's last drawing, without
    colours."""
    lines = raw.replace(b"\r\n", b"\n").split(b"\n")
    shown = [ANSI.sub(b"", ln.split(b"\r\x1b[2K")[-1]).replace(b"\r", b"") for ln in lines]
    return b"\n".join(shown)


def keep_capture(raw):
    d = os.path.abspath(os.environ.get("AGENTGATE_CLI_CAPTURE_DIR")
                        or os.path.join(REPO, "build", "cli-capture"))
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "run-follow.raw"), "wb") as f:
        f.write(raw)
    with open(os.path.join(d, "run-follow.txt"), "wb") as f:
        f.write(screen_of(raw))


# --------------------------------------------------------------------------
# agentgate run
# --------------------------------------------------------------------------

def test_run_follow_in_a_terminal_shows_progress_tokens_and_output(tenant):
    t = Terminal(["run", "What time is it in UTC?", "--follow"], cli_env(tenant))
    status = t.wait(timeout=60)
    keep_capture(t.out)
    shown = t.text()
    assert status == EXIT_OK, f"exit {status}; the terminal shows:\n{shown}"

    run_id = re.search(UUID_RE, ANSI.sub(b"", t.out).decode()).group(0)
    run, events = run_events(tenant, run_id)
    assert run["status"] == "succeeded", run

    # The progress line: drawn in place (erase the line, then the text)
    # naming the current step.
    assert re.search(r"\r\x1b\[2K(\x1b\[[0-9;]*m)?\u2026 step \d+ \S+", shown), (
        f"no progress line naming a step:\n{shown!r}")
    # The model's tokens as they came, each model call's text unbroken
    # (its lines behind a gutter).
    texts = [s for s in deltas_by_step(events) if s.strip()]
    assert texts, "the run streamed no llm.delta (the built-in provider streams)"
    plain = ANSI.sub(b"", t.out.replace(b"\r\n", b"\n")).decode("utf-8", "replace")
    plain = re.sub(r"(?m)^(\r\x1b?\[?2?K?)*\u2502 ", "", plain)
    for text in texts:
        assert text in plain, f"model text {text[:200]!r} not shown as streamed:\n{plain}"
    # The steps as permanent lines, the end, then the output.
    assert "\u2713 step 0 intent:classify completed" in plain, plain
    assert "\u2713 succeeded" in plain, plain
    assert plain.rstrip().endswith(run["output"].rstrip()), (
        f"the output is not printed last:\n{plain}")


def test_ctrl_c_cancels_a_run_while_its_model_streams(stack, tenant, llm_standin):
    # A model (the OpenAI stand-in) that answers the run's first call (the
    # intent, when the model is asked) at once, then streams a word every
    # 200 ms, far longer than the test waits: the tokens arrive one by one,
    # then ^C.
    model = llm_standin.unique_name("m")
    llm_standin.register_model(stack, tenant.tenant_id, model, "/cli")
    words = [f"word{i} " for i in range(200)]
    llm_standin.script("/cli", model, [{"chunks": ["chat"]}]
                       + [{"chunks": words, "chunk_delay_ms": 200}] * 4)
    t = Terminal(["run", "Tell me a long story", "--model", model, "--planning", "none",
                  "--response-mode", "llm-required", "--follow", "--cancel-on-interrupt"],
                 cli_env(tenant))
    run_id = t.read_until(rb"run (" + UUID_RE.encode() + rb")").group(1).decode()
    t.read_until(rb"word0 word1 word2 ")
    t.type(b"\x03")
    status = t.wait()
    shown = t.text()
    assert status == EXIT_CANCELLED, f"exit {status}:\n{shown}"
    assert f"cancel requested, {run_id} is cancelling" in shown, shown
    run = tenant.wait_run(run_id)
    assert run["status"] == "cancelled", run
    assert "word199" not in shown, "the whole answer streamed before the cancel"


def test_run_follow_on_a_pipe_prints_plain_lines(tenant):
    r = cli(tenant, "run", "What time is it in UTC?", "--follow",
            "--planning", "none", timeout=60)
    assert r.returncode == EXIT_OK, r
    assert "\x1b" not in r.stdout, f"escape sequences on a pipe: {r.stdout!r}"
    assert r.stderr == "", r.stderr
    lines = r.stdout.splitlines()
    m = re.fullmatch(rf"run ({UUID_RE}) job ({UUID_RE})", lines[0])
    assert m, lines[0]
    run, events = run_events(tenant, m.group(1))
    # One line per event except the model's text, gathered into lines.
    event_lines = [ln for ln in lines[1:] if re.match(r"\d+ +[a-z]+\.?[a-z]* ", ln)]
    ids = [int(ln.split()[0]) for ln in event_lines if ln.split()[1] != "llm.delta"]
    want = [e.id for e in events if e.event != "llm.delta"]
    assert ids == want, f"event lines {ids} != the run's events {want}:\n{r.stdout}"
    assert event_lines[-1].split()[1] == "job.succeeded", r.stdout
    assert r.stdout.rstrip().endswith(run["output"].rstrip()), r.stdout
    assert run["planning_mode"] == "none", run


def test_run_without_follow_prints_its_ids(tenant):
    r = cli(tenant, "run", "hello", "--response-mode", "fallback-only")
    assert r.returncode == EXIT_OK, r
    m = re.match(rf"run ({UUID_RE}) started \(job ({UUID_RE})\)", r.stdout)
    assert m, r.stdout
    run = tenant.wait_run(m.group(1))
    assert run["response_mode"] == "fallback-only" and run["job_id"] == m.group(2), run
    j = cli(tenant, "run", "hello", "--json")
    assert j.returncode == EXIT_OK, j
    body = json.loads(j.stdout)
    assert body["links"]["self"] == f"/v1/agent-runs/{body['id']}", body
    tenant.wait_run(body["id"])


# --------------------------------------------------------------------------
# Exit statuses
# --------------------------------------------------------------------------

def test_a_failing_job_exits_with_the_failed_status(tenant):
    r = cli(tenant, "jobs", "submit", "test",
            '{"outcome":"fail","error":{"code":"boom","message":"it broke"}}', "--follow")
    assert r.returncode == EXIT_FAILED, r
    last = [ln for ln in r.stdout.splitlines() if re.match(r"\d+ ", ln)][-1]
    assert "job.failed" in last and "boom: it broke" in last, r.stdout
    ok = cli(tenant, "jobs", "submit", "test", '{"outcome":"succeed","result":{"x":1}}',
             "--follow")
    assert ok.returncode == EXIT_OK, ok
    assert ok.stdout.rstrip().endswith('{"x":1}'), ok.stdout


def test_ctrl_c_with_cancel_on_interrupt_cancels_the_job(tenant):
    t = Terminal(["jobs", "submit", "demo", '{"events":200,"duration_ms":60000}',
                  "--follow", "--cancel-on-interrupt"], cli_env(tenant))
    job_id = t.read_until(rb"job (" + UUID_RE.encode() + rb")").group(1).decode()
    t.read_until(rb"\d+/200 event \d+ of 200")
    t.type(b"\x03")                                # Ctrl-C, as typed
    status = t.wait()
    shown = t.text()
    assert status == EXIT_CANCELLED, f"exit {status}:\n{shown}"
    assert "cancel requested" in shown, shown
    job = tenant.wait_job(job_id)
    assert job["status"] == "cancelled", job
    assert job["error"]["code"] == "cancelled", job


def test_ctrl_c_without_the_flag_leaves_the_job_running(tenant):
    job = tenant.submit("demo", {"events": 200, "duration_ms": 60000})
    t = Terminal(["events", job["id"]], cli_env(tenant))
    try:
        t.read_until(rb"\d+/200 event \d+ of 200")
        t.type(b"\x03")
        status = t.wait()
        assert status == EXIT_INTERRUPTED, f"exit {status}:\n{t.text()}"
        assert "still running" in t.text(), t.text()
        assert tenant.get_job(job["id"])["status"] == "running"
    finally:
        tenant.request("DELETE", f"/v1/jobs/{job['id']}")


def test_sigint_on_a_pipe_with_cancel_on_interrupt(tenant):
    p = subprocess.Popen([CLI, "jobs", "submit", "demo", '{"events":200,"duration_ms":60000}',
                          "--follow", "--cancel-on-interrupt"], env=cli_env(tenant),
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    try:
        first = p.stdout.readline()
        job_id = re.fullmatch(rf"job ({UUID_RE})\n", first).group(1)
        while "job.progress" not in p.stdout.readline():
            pass
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=TIMEOUT)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == EXIT_CANCELLED, (p.returncode, out, err)
    assert tenant.wait_job(job_id)["status"] == "cancelled"


def test_usage_errors_exit_2_with_one_line(tenant):
    for args, says in [
        ([], "no command given"),
        (["run"], "'run' needs one PROMPT"),
        (["run", "x", "--planning", "maybe"], "--planning takes full, optional or none"),
        (["run", "x", "--cancel-on-interrupt"], "goes with --follow"),
        (["run", "x", "--multitask", "later"], "--multitask takes reject, enqueue"),
        (["run", "x", "--multitask", "enqueue"], "--multitask goes with --session"),
        (["jobs", "list", "--limit", "0"], "--limit takes a whole number"),
        (["jobs", "list", "--follow"], "does not apply to 'jobs list'"),
        (["jobs", "get", "not-an-id"], "is not a job id"),
        (["jobs", "submit", "demo", "{nope"], "the payload is not JSON"),
        (["events", str(uuid.uuid4()), "--after", "x"], "--after takes a whole number"),
        (["frobnicate"], "unknown command 'frobnicate'"),
        (["--nope", "queues"], "unknown option '--nope'"),
        (["run", "x", "--model"], "option '--model' needs a value"),
    ]:
        r = cli(tenant, *args)
        assert r.returncode == EXIT_USAGE, (args, r)
        assert says in one_line_error(r), (args, r.stderr)
        assert r.stdout == "", (args, r.stdout)
    h = cli(tenant, "--help")
    assert h.returncode == 0 and "Exit status:" in h.stdout, h
    for code in ("0 ", "1 ", "2 ", "3 ", "4 ", "5 ", "130 "):
        assert f"\n  {code}" in h.stdout, (code, h.stdout)


def test_no_gateway_exits_with_the_connection_status(tenant):
    env = cli_env(tenant, AGENTGATE_URL=f"http://127.0.0.1:{unused_port()}")
    for args in (["queues"], ["run", "hi", "--follow"], ["events", str(uuid.uuid4())]):
        r = cli(tenant, *args, env=env)
        assert r.returncode == EXIT_CONNECT, (args, r)
        assert "no answer from http://127.0.0.1:" in one_line_error(r), r.stderr
    # --url wins over the environment.
    r = cli(tenant, "--url", f"http://127.0.0.1:{HTTP_PORT}", "jobs", "list", env=env)
    assert r.returncode == EXIT_OK, r


def test_http_errors_print_the_problem_on_one_line(tenant):
    r = cli(tenant, "jobs", "get", str(uuid.uuid4()))
    assert r.returncode == EXIT_HTTP, r
    assert one_line_error(r) == "agentgate: HTTP 404 Not Found: no job with this id", r.stderr
    bad = cli(tenant, "jobs", "list", env=cli_env(tenant, AGENTGATE_TOKEN="not-a-token"))
    assert bad.returncode == EXIT_HTTP, bad
    assert one_line_error(bad).startswith("agentgate: HTTP 401 Unauthorized"), bad.stderr
    bad = cli(tenant, "jobs", "submit", "demo", '{"events":-1}')
    assert bad.returncode == EXIT_HTTP, bad
    assert one_line_error(bad).startswith("agentgate: HTTP 422 Unprocessable Content: "), bad.stderr


# --------------------------------------------------------------------------
# jobs, events
# --------------------------------------------------------------------------

def test_jobs_list_get_cancel(tenant):
    a = tenant.submit("demo", {"events": 1, "duration_ms": 0})
    b = tenant.submit("demo", {"events": 1, "duration_ms": 0})
    tenant.wait_job(a["id"])
    tenant.wait_job(b["id"])

    r = cli(tenant, "jobs", "list", "--json")
    assert r.returncode == EXIT_OK, r
    ids = [j["id"] for j in json.loads(r.stdout)["items"]]
    assert ids[:2] == [b["id"], a["id"]], ids

    r = cli(tenant, "jobs", "list", "--type", "demo", "--limit", "1")
    assert r.returncode == EXIT_OK, r
    lines = r.stdout.splitlines()
    assert lines[0].split() == ["ID", "TYPE", "STATUS", "ATTEMPTS", "PROGRESS", "CREATED"], lines
    assert lines[1].split()[:4] == [b["id"], "demo", "succeeded", "1/3"], lines
    cursor = re.fullmatch(r"next cursor: (\S+)", lines[-1]).group(1)
    r = cli(tenant, "jobs", "list", "--type", "demo", "--limit", "1", "--cursor", cursor)
    assert r.returncode == EXIT_OK and a["id"] in r.stdout, r
    r = cli(tenant, "jobs", "list", "--status", "failed")
    assert r.returncode == EXIT_OK and r.stdout == "no jobs\n", r

    r = cli(tenant, "jobs", "get", a["id"])
    assert r.returncode == EXIT_OK, r
    assert re.search(r"^status\s+succeeded$", r.stdout, re.M), r.stdout
    assert re.search(r'^result\s+\{"events":1\}$', r.stdout, re.M), r.stdout
    j = cli(tenant, "jobs", "get", a["id"], "--json")
    assert json.loads(j.stdout)["id"] == a["id"], j

    long = tenant.submit("demo", {"events": 100, "duration_ms": 60000})
    r = cli(tenant, "jobs", "cancel", long["id"])
    assert r.returncode == EXIT_OK, r
    assert re.search(r"^status\s+(cancelled|cancelling)$", r.stdout, re.M), r.stdout
    assert tenant.wait_job(long["id"])["status"] == "cancelled"
    again = cli(tenant, "jobs", "cancel", a["id"])        # succeeded: 409
    assert again.returncode == EXIT_HTTP, again
    assert one_line_error(again).startswith("agentgate: HTTP 409 Conflict"), again.stderr


def test_events_after_and_past_the_end(tenant):
    job = tenant.submit("demo", {"events": 3, "duration_ms": 300})
    done = tenant.wait_job(job["id"])
    r = cli(tenant, "events", job["id"], "--after", "2")
    assert r.returncode == EXIT_OK, r
    ids = [int(ln.split()[0]) for ln in r.stdout.splitlines()]
    assert ids == list(range(3, done["last_event_id"] + 1)), r.stdout
    assert r.stdout.splitlines()[-1].split()[1] == "job.succeeded", r.stdout

    # At the end already: nothing to print, and no endless reconnecting.
    t0 = time.monotonic()
    r = cli(tenant, "events", job["id"], "--after", str(done["last_event_id"]))
    assert r.returncode == EXIT_OK and r.stdout == "", r
    assert time.monotonic() - t0 < 5

    r = cli(tenant, "events", job["id"], "--json")
    frames = [json.loads(ln) for ln in r.stdout.splitlines()]
    assert [f["id"] for f in frames] == list(range(1, done["last_event_id"] + 1)), r.stdout
    assert all(f["job_id"] == job["id"] for f in frames)

    failed = tenant.submit("test", {"outcome": "fail"})
    tenant.wait_job(failed["id"])
    assert cli(tenant, "events", failed["id"]).returncode == EXIT_FAILED


def test_events_resume_with_last_event_id_after_a_cut(tenant):
    job = tenant.submit("demo", {"events": 6, "duration_ms": 1500})
    relay = CuttingRelay(frames=4)              # retry:, then events 1, 2, 3
    try:
        r = cli(tenant, "events", job["id"],
                env=cli_env(tenant, AGENTGATE_URL=f"http://127.0.0.1:{relay.port}"))
    finally:
        relay.stop()
    assert r.returncode == EXIT_OK, r
    done = tenant.get_job(job["id"])
    ids = [int(ln.split()[0]) for ln in r.stdout.splitlines()]
    assert ids == list(range(1, done["last_event_id"] + 1)), (
        f"each event once, in order, across the cut: {r.stdout}")
    streams = [h for h in relay.heads if "/events" in h.split("\r\n")[0]]
    assert len(streams) == 2, relay.heads
    assert "last-event-id" not in streams[0].lower(), streams[0]
    assert "\r\nLast-Event-ID: 3" in streams[1], streams[1]


def test_jobs_submit_follow_json_is_one_event_per_line(tenant):
    r = cli(tenant, "--json", "jobs", "submit", "demo", '{"events":2,"duration_ms":100}',
            "--follow")
    assert r.returncode == EXIT_OK, r
    lines = [json.loads(ln) for ln in r.stdout.splitlines()]
    events, final = lines[:-1], lines[-1]
    assert [e["type"] for e in events] == ["job.queued", "job.started", "job.progress",
                                           "job.progress", "job.succeeded"], events
    assert final["status"] == "succeeded" and final["result"] == {"events": 2}, final


# --------------------------------------------------------------------------
# retry, queues, workers (routes of the operator API)
# --------------------------------------------------------------------------

def skip_if_route_missing(r, route):
    if r.returncode == EXIT_HTTP and "HTTP 404" in r.stderr and "endpoint" in r.stderr:
        pytest.skip(f"{route} answers 404: the route is not in this gateway yet")


def test_jobs_retry(tenant):
    failed = tenant.submit("test", {"outcome": "fail"})
    tenant.wait_job(failed["id"])
    r = cli(tenant, "jobs", "retry", failed["id"], "--json")
    skip_if_route_missing(r, "POST /v1/jobs/{id}/retry")
    assert r.returncode == EXIT_OK, r
    new = json.loads(r.stdout)
    assert new["id"] != failed["id"] and new["retry_of"] == failed["id"], new
    tenant.wait_job(new["id"])

    r = cli(tenant, "jobs", "retry", new["id"], "--follow")
    assert r.returncode == EXIT_FAILED, r                 # it fails again, as told
    assert r.stdout.startswith(f"retried {new['id']} as a new job\njob "), r.stdout

    ok = tenant.submit("demo", {"events": 0, "duration_ms": 0})
    tenant.wait_job(ok["id"])
    r = cli(tenant, "jobs", "retry", ok["id"])
    assert r.returncode == EXIT_HTTP, r
    assert one_line_error(r).startswith("agentgate: HTTP 409 Conflict"), r.stderr


def test_queues(tenant):
    job = tenant.submit("demo", {"events": 0, "duration_ms": 0})
    tenant.wait_job(job["id"])
    r = cli(tenant, "queues", "--json")
    skip_if_route_missing(r, "GET /v1/queues")
    assert r.returncode == EXIT_OK, r
    items = {q["type"]: q for q in json.loads(r.stdout)["items"]}
    assert "demo" in items, items
    r = cli(tenant, "queues")
    lines = r.stdout.splitlines()
    assert lines[0].split()[:5] == ["TYPE", "QUEUED", "DELAYED", "RUNNING", "DEAD"], lines
    assert any(ln.split()[0] == "demo" for ln in lines[1:]), lines


def test_workers(tenant):
    r = cli(tenant, "workers", "--json")
    skip_if_route_missing(r, "GET /v1/workers")
    assert r.returncode == EXIT_OK, r
    items = json.loads(r.stdout)["items"]
    assert len(items) >= 1, items
    r = cli(tenant, "workers")
    lines = r.stdout.splitlines()
    assert lines[0].split()[:4] == ["ID", "HOST", "PID", "RUNNING"], lines
    assert len(lines) == 1 + len(items), lines


# --------------------------------------------------------------------------
# schedules, approvals, batches, webhook deliveries
# --------------------------------------------------------------------------

def test_new_commands_refuse_bad_usage_without_calling_the_gateway(tenant, tmp_path):
    # Nothing listens at the URL: a call would exit 4, not 2.
    env = cli_env(tenant, AGENTGATE_URL=f"http://127.0.0.1:{unused_port()}")
    not_json = tmp_path / "bad.json"
    not_json.write_text("{nope")
    no_jobs = tmp_path / "obj.json"
    no_jobs.write_text('{"items":[]}')
    rid, cid = str(uuid.uuid4()), str(uuid.uuid4())
    for args, says in [
        (["schedules"], "'schedules' needs list, get, create"),
        (["schedules", "frob"], "unknown command 'schedules frob'"),
        (["schedules", "create", "--job-type", "demo"], "needs --cron EXPR"),
        (["schedules", "create", "--cron", "* * * * *"], "needs one of --job-type and --prompt"),
        (["schedules", "create", "--cron", "* * * * *", "--job-type", "demo", "--prompt", "x"],
         "needs one of --job-type and --prompt"),
        (["schedules", "create", "--cron", "* * * * *", "--prompt", "x", "--priority", "1"],
         "--priority goes with --job-type"),
        (["schedules", "create", "--cron", "* * * * *", "--job-type", "demo",
          "--priority", "1001"], "--priority takes a whole number from -1000 to 1000"),
        (["schedules", "create", "--cron", "* * * * *", "--job-type", "demo",
          "--payload", "[1]"], "the payload must be a JSON object"),
        (["schedules", "pause", "nope"], "is not a schedule id"),
        (["schedules", "list", "--note", "x"], "does not apply to 'schedules list'"),
        (["approve", rid], "'approve' needs RUN_ID and TOOL_CALL_ID"),
        (["deny", "nope", cid], "'nope' is not a run id"),
        (["approve", rid, "nope"], "'nope' is not a tool call id"),
        (["deny", rid, cid, "--follow"], "does not apply to 'deny'"),
        (["jobs", "submit-batch"], "'jobs submit-batch' needs one FILE"),
        (["jobs", "submit-batch", str(tmp_path / "missing.json")], "cannot read"),
        (["jobs", "submit-batch", str(not_json)], "is not JSON"),
        (["jobs", "submit-batch", str(no_jobs)], "must hold a JSON array of jobs"),
        (["jobs", "deliveries", "nope"], "is not a job id"),
    ]:
        r = cli(tenant, *args, env=env)
        assert r.returncode == EXIT_USAGE, (args, r)
        assert says in one_line_error(r), (args, r.stderr)
        assert r.stdout == "", (args, r.stdout)
    h = cli(tenant, "--help")
    for usage in ("schedules create --cron EXPR", "approve RUN_ID TOOL_CALL_ID",
                  "deny RUN_ID TOOL_CALL_ID", "jobs submit-batch FILE|-", "jobs deliveries ID"):
        assert usage in h.stdout, (usage, h.stdout)


def test_schedules_create_pause_resume_list_delete(tenant):
    r = cli(tenant, "schedules", "create", "--cron", "0 3 1 1 *", "--timezone", "Europe/Berlin",
            "--job-type", "demo", "--payload", '{"events":1}', "--priority", "-5", "--json")
    skip_if_route_missing(r, "POST /v1/schedules")
    assert r.returncode == EXIT_OK, r
    sid = json.loads(r.stdout)["id"]
    s = tenant.request("GET", f"/v1/schedules/{sid}").expect_json(200)
    assert (s["cron"], s["timezone"], s["paused"]) == ("0 3 1 1 *", "Europe/Berlin", False), s
    assert s["job"]["type"] == "demo" and s["job"]["payload"] == {"events": 1}, s
    assert s["job"]["priority"] == -5 and s["next_run_at"] is not None, s

    r = cli(tenant, "schedules", "pause", sid)
    assert r.returncode == EXIT_OK, r
    assert re.search(r"^paused\s+true$", r.stdout, re.M), r.stdout
    s = tenant.request("GET", f"/v1/schedules/{sid}").expect_json(200)
    assert s["paused"] is True and s["next_run_at"] is None, s

    r = cli(tenant, "schedules", "list")
    assert r.returncode == EXIT_OK, r
    lines = r.stdout.splitlines()
    assert lines[0].split() == ["ID", "CRON", "TIMEZONE", "PAUSED", "NEXT", "RUN", "LAST",
                                "TICK"], lines
    row = next(ln for ln in lines[1:] if ln.startswith(sid))
    assert "0 3 1 1 *" in row and row.split()[6:8] == ["Europe/Berlin", "true"], row

    r = cli(tenant, "schedules", "resume", sid, "--json")
    assert r.returncode == EXIT_OK and json.loads(r.stdout)["paused"] is False, r
    assert tenant.request("GET", f"/v1/schedules/{sid}").expect_json(200)["paused"] is False

    r = cli(tenant, "schedules", "get", sid)
    assert r.returncode == EXIT_OK and re.search(r"^cron\s+0 3 1 1 \*$", r.stdout, re.M), r

    run = cli(tenant, "schedules", "create", "--cron", "@yearly", "--prompt", "hello", "--json")
    assert run.returncode == EXIT_OK, run
    rs = tenant.request("GET", f"/v1/schedules/{json.loads(run.stdout)['id']}").expect_json(200)
    assert rs["job"] is None and rs["agent_run"]["prompt"] == "hello", rs

    r = cli(tenant, "schedules", "delete", sid)
    assert r.returncode == EXIT_OK and r.stdout == f"schedule {sid} deleted\n", r
    tenant.request("GET", f"/v1/schedules/{sid}").expect_problem(404)
    again = cli(tenant, "schedules", "delete", sid)
    assert again.returncode == EXIT_HTTP, again
    assert one_line_error(again).startswith("agentgate: HTTP 404 Not Found"), again.stderr
    bad = cli(tenant, "schedules", "create", "--cron", "0 0 30 2 *", "--job-type", "demo")
    assert bad.returncode == EXIT_HTTP, bad
    assert one_line_error(bad).startswith("agentgate: HTTP 422"), bad.stderr


def test_approve_or_deny_a_run_that_is_not_waiting(tenant):
    r = cli(tenant, "run", "hello", "--response-mode", "fallback-only", "--json")
    assert r.returncode == EXIT_OK, r
    run_id = json.loads(r.stdout)["id"]
    tenant.wait_run(run_id)
    for cmd in ("approve", "deny"):
        r = cli(tenant, cmd, run_id, str(uuid.uuid4()), "--note", "looks \x1b[2Jfine")
        skip_if_route_missing(r, "POST /v1/agent-runs/{id}/approvals")
        assert r.returncode == EXIT_HTTP, (cmd, r)
        line = one_line_error(r)
        assert line.startswith("agentgate: HTTP 409 Conflict"), line
        assert "\x1b" not in r.stderr and r.stdout == "", r
    r = cli(tenant, "approve", str(uuid.uuid4()), str(uuid.uuid4()))
    assert r.returncode == EXIT_HTTP and "HTTP 404" in one_line_error(r), r


def test_deny_a_waiting_tool_call_with_a_note(stack, tenant, llm_standin):
    # The run that waits for approval is made as test_approvals makes it.
    from test_approvals import _steps, _waiting_run
    run, _, req = _waiting_run(stack, tenant, llm_standin, final="Understood.")
    tenant.wait_run(run["id"], ("waiting",))
    r = cli(tenant, "deny", run["id"], req["tool_call_id"], "--note", "not on a Friday")
    assert r.returncode == EXIT_OK, r
    assert re.search(r"^decision\s+denied$", r.stdout, re.M), r.stdout
    assert re.search(r"^tool_call_id\s+" + req["tool_call_id"] + "$", r.stdout, re.M), r.stdout
    done = tenant.wait_run(run["id"])
    tool = _steps(done, "tool:invoke")[0]
    assert tool["output"]["status"] == "denied_by_approver", tool
    assert "not on a Friday" in tool["output"]["message"], tool
    again = cli(tenant, "approve", run["id"], req["tool_call_id"])
    assert again.returncode == EXIT_HTTP, again
    assert one_line_error(again).startswith("agentgate: HTTP 409 Conflict"), again.stderr


def test_jobs_submit_batch_from_a_file_and_stdin(tenant, tmp_path):
    f = tmp_path / "jobs.json"
    f.write_text(json.dumps([{"type": "demo", "payload": {"events": 0, "duration_ms": 0}},
                             {"type": "test", "payload": {"outcome": "succeed"},
                              "priority": 5}]))
    r = cli(tenant, "jobs", "submit-batch", str(f))
    skip_if_route_missing(r, "POST /v1/jobs/batch")
    assert r.returncode == EXIT_OK, r
    ids = r.stdout.splitlines()
    assert len(ids) == 2 and all(re.fullmatch(UUID_RE, i) for i in ids), r.stdout
    jobs = [tenant.get_job(i) for i in ids]
    assert [(j["type"], j["priority"]) for j in jobs] == [("demo", 0), ("test", 5)], jobs

    body = json.dumps({"jobs": [{"type": "demo", "payload": {"events": 0}}]})
    p = subprocess.run([CLI, "jobs", "submit-batch", "-", "--json"], env=cli_env(tenant),
                       input=body, capture_output=True, text=True, timeout=TIMEOUT)
    assert p.returncode == EXIT_OK, p
    one = json.loads(p.stdout)["jobs"]
    assert len(one) == 1 and tenant.get_job(one[0]["id"])["type"] == "demo", one

    f.write_text(json.dumps([{"type": "demo"}, {"type": "no-such-type"}]))
    before = tenant.request("GET", "/v1/jobs?limit=200").expect_json(200)["items"]
    r = cli(tenant, "jobs", "submit-batch", str(f))
    assert r.returncode == EXIT_HTTP, r
    assert one_line_error(r).startswith("agentgate: HTTP 422"), r.stderr
    after = tenant.request("GET", "/v1/jobs?limit=200").expect_json(200)["items"]
    assert len(after) == len(before), "a refused batch wrote jobs"


def test_jobs_deliveries(tenant):
    from agentgate_test.stack import WEBHOOK_PORT, WEBHOOK_URL
    import http.server

    class Ok(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def do_POST(self):
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

    server = http.server.ThreadingHTTPServer(("127.0.0.1", WEBHOOK_PORT), Ok)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        job = tenant.submit("test", {"outcome": "succeed"}, webhook=WEBHOOK_URL + "/cli")
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            r = cli(tenant, "jobs", "deliveries", job["id"], "--json")
            skip_if_route_missing(r, "GET /v1/jobs/{id}/webhook-deliveries")
            assert r.returncode == EXIT_OK, r
            items = json.loads(r.stdout)["items"]
            if items and items[0]["state"] == "delivered":
                break
            time.sleep(0.2)
        else:
            raise AssertionError(f"never delivered: {r.stdout}")
    finally:
        server.shutdown()
        server.server_close()
    r = cli(tenant, "jobs", "deliveries", job["id"])
    assert r.returncode == EXIT_OK, r
    assert re.search(r"^webhook\s+" + re.escape(WEBHOOK_URL + "/cli") + "$", r.stdout, re.M), r
    assert re.search(r"^delivery\s+\S+ job.succeeded delivered, 1 attempts, last status 200$",
                     r.stdout, re.M), r.stdout
    assert re.search(r"^  attempt 1 at \S+ by \S+: status 200, \d+ ms, error -$",
                     r.stdout, re.M), r.stdout

    plain = tenant.submit("demo", {"events": 0, "duration_ms": 0})
    tenant.wait_job(plain["id"])
    r = cli(tenant, "jobs", "deliveries", plain["id"])
    assert r.returncode == EXIT_OK and r.stdout.endswith("webhook       -\nno deliveries\n"), r
