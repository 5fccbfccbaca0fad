"""systemd's notify protocol, seen from systemd's side: the test binds its
own NOTIFY_SOCKET (an AF_UNIX datagram socket, as systemd does for a
Type=notify unit) and runs a gateway and a worker of its own with it and
WATCHDOG_USEC set. Each sends READY=1 once its listener and stores are up
(the gateway: not while Redis is unreachable), WATCHDOG=1 while every loop
turns, and STOPPING=1 on SIGTERM. The pings end when a loop stalls: with
AGENTGATE_TEST_HOOKS=1 in its environment (never set in production, and
unreachable by a tenant) SIGUSR2 stalls gateway loop thread 0 or the
worker's supervisor.

Ports: the processes of this file use 20410-20419."""

import os
import signal
import socket
import subprocess
import tempfile
import threading
import time

import pytest

from agentgate_test.paths import bin_path
from agentgate_test.services import own_process, stack_env

WATCHDOG_USEC = 600000               # pings every 300 ms
PING_S = WATCHDOG_USEC / 2 / 1e6
GATEWAY_PORT = 20410
DOWN_REDIS_PORT = 20415
WAIT_S = 30


class NotifySocket:
    """What systemd would receive: every datagram on a fresh socket, in
    order, with the monotonic time it arrived."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="agentgate-notify-")
        self.path = os.path.join(self.dir, "notify.sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.settimeout(0.1)
        self.messages = []                # (t, [lines])
        self.lock = threading.Lock()
        self.stop = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stop:
            try:
                data = self.sock.recv(4096)
            except socket.timeout:
                continue
            with self.lock:
                self.messages.append((time.monotonic(), data.decode().split("\n")))

    def close(self):
        self.stop = True
        self.thread.join()
        self.sock.close()
        os.unlink(self.path)
        os.rmdir(self.dir)

    def seen(self):
        with self.lock:
            return list(self.messages)

    def mark(self, text):
        """Notes what the test did, in the summary's order ("[SIGTERM]")."""
        with self.lock:
            self.messages.append((time.monotonic(), [f"[{text}]"]))

    def count(self, line):
        return sum(1 for _, lines in self.seen() if line in lines)

    def wait(self, line, n=1, proc=None, log=None, timeout=WAIT_S):
        """Waits until line has arrived n times in all; returns the list."""
        deadline = time.monotonic() + timeout
        while self.count(line) < n:
            if proc is not None and proc.poll() is not None:
                pytest.fail(f"process exited {proc.returncode} before {line!r} x{n}:\n"
                            + read(log))
            if time.monotonic() > deadline:
                pytest.fail(f"{line!r} x{n} not received; got {self.summary()}\n" + read(log))
            time.sleep(0.02)
        return self.seen()

    def summary(self):
        """The messages in order, runs of WATCHDOG=1 folded."""
        out = []
        for _, lines in self.seen():
            text = " ".join(lines)
            if out and out[-1][0] == text:
                out[-1][1] += 1
            else:
                out.append([text, 1])
        return ", ".join(t if n == 1 else f"{t} (x{n})" for t, n in out)


def read(path):
    if path is None:
        return ""
    with open(path, encoding="utf-8", errors="replace") as f:
        return f.read()


def wait_log(path, text, proc, timeout=WAIT_S):
    deadline = time.monotonic() + timeout
    while text not in read(path):
        assert proc.poll() is None, f"exited before logging {text!r}:\n" + read(path)
        assert time.monotonic() < deadline, f"{text!r} not logged:\n" + read(path)
        time.sleep(0.05)


@pytest.fixture
def notify():
    n = NotifySocket()
    yield n
    n.close()


def notify_env(stack, notify, **settings):
    env = stack_env(stack)
    env.update({"NOTIFY_SOCKET": notify.path, "WATCHDOG_USEC": str(WATCHDOG_USEC),
                "AGENTGATE_TEST_HOOKS": "1"})
    env.pop("WATCHDOG_PID", None)
    env.update(settings)
    return env


def pings_end_on_stall(notify, proc, log, loop_name):
    """SIGUSR2 stalls one loop: the watchdog names it, and no WATCHDOG=1
    follows for many ping intervals; the process still runs."""
    notify.mark(f"SIGUSR2: {loop_name} stalls")
    proc.send_signal(signal.SIGUSR2)
    wait_log(log, f"watchdog: {loop_name} has not turned", proc)
    # A ping sent just before the stall may still be in the socket buffer.
    time.sleep(PING_S)
    before = notify.count("WATCHDOG=1")
    time.sleep(8 * PING_S)
    assert notify.count("WATCHDOG=1") == before, (
        f"WATCHDOG=1 went on while {loop_name} stalled: {notify.summary()}")
    assert proc.poll() is None


def stops_with_stopping(notify, proc, log):
    notify.mark("SIGTERM")
    proc.send_signal(signal.SIGTERM)
    notify.wait("STOPPING=1", proc=None, log=log)
    assert proc.wait(timeout=WAIT_S) == 0, read(log)
    ready_at = [i for i, (_, l) in enumerate(notify.seen()) if "READY=1" in l]
    stop_at = [i for i, (_, l) in enumerate(notify.seen()) if "STOPPING=1" in l]
    assert len(ready_at) == 1 and len(stop_at) == 1 and ready_at[0] < stop_at[0], notify.summary()


def test_gateway_ready_watchdog_stopping(stack, notify):
    env = notify_env(stack, notify, AGENTGATE_LISTEN=f"127.0.0.1:{GATEWAY_PORT}",
                     AGENTGATE_GATEWAY_THREADS="2")
    log = os.path.join(stack.dir, "logs", "gateway-sd-notify.log")
    with own_process([bin_path("agentgate-gateway")], env, log) as proc:
        msgs = notify.wait("READY=1", proc=proc, log=log)
        ready = next(lines for _, lines in msgs if "READY=1" in lines)
        assert f"STATUS=listening on 127.0.0.1:{GATEWAY_PORT} with 2 loop threads" in ready
        # Ready means it serves: the listener and both stores are up.
        out = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
                              f"http://127.0.0.1:{GATEWAY_PORT}/v1/health/ready"],
                             capture_output=True, text=True, timeout=10)
        assert out.stdout == "200"
        notify.wait("WATCHDOG=1", n=notify.count("WATCHDOG=1") + 3, proc=proc, log=log)
        pings_end_on_stall(notify, proc, log, "gateway loop thread 0")
        stops_with_stopping(notify, proc, log)
    print("\ngateway notify messages: " + notify.summary())


def test_gateway_not_ready_until_redis_is_up(stack, notify, tmp_path):
    """Loops turn (pings flow) while Redis is down, but READY=1 waits for
    it; it comes once a Redis appears on the configured port."""
    env = notify_env(stack, notify, AGENTGATE_LISTEN=f"127.0.0.1:{GATEWAY_PORT + 1}",
                     AGENTGATE_GATEWAY_THREADS="1",
                     AGENTGATE_REDIS_URL=f"redis://127.0.0.1:{DOWN_REDIS_PORT}/0")
    log = os.path.join(stack.dir, "logs", "gateway-sd-notify-noredis.log")
    with own_process([bin_path("agentgate-gateway")], env, log) as proc:
        notify.wait("WATCHDOG=1", n=5, proc=proc, log=log)
        assert notify.count("READY=1") == 0, notify.summary()
        redis = subprocess.Popen(["redis-server", "--port", str(DOWN_REDIS_PORT),
                                  "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                                  "--dir", str(tmp_path)],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            notify.wait("READY=1", proc=proc, log=log)
        finally:
            redis.terminate()
            redis.wait(timeout=10)
    print("\ngateway (Redis late) notify messages: " + notify.summary())


def test_worker_ready_watchdog_stopping(stack, notify):
    env = notify_env(stack, notify, AGENTGATE_WORKER_ID="it-sd-notify",
                     AGENTGATE_WORKER_CONCURRENCY="1")
    log = os.path.join(stack.dir, "logs", "worker-sd-notify.log")
    with own_process([bin_path("agentgate-worker")], env, log) as proc:
        msgs = notify.wait("READY=1", proc=proc, log=log)
        assert any("STATUS=taking jobs" in lines for _, lines in msgs), notify.summary()
        notify.wait("WATCHDOG=1", n=notify.count("WATCHDOG=1") + 3, proc=proc, log=log)
        pings_end_on_stall(notify, proc, log, "worker supervisor")
        stops_with_stopping(notify, proc, log)
    print("\nworker notify messages: " + notify.summary())


def test_worker_with_a_long_poll_interval_still_pings(stack, notify):
    """A supervisor that waits 20 s between rounds (a long
    AGENTGATE_CANCEL_POLL_MS) is idle, not hung: it ticks while it waits."""
    env = notify_env(stack, notify, AGENTGATE_WORKER_ID="it-sd-notify-slow",
                     AGENTGATE_CANCEL_POLL_MS="20000", AGENTGATE_HEARTBEAT_MS="10000",
                     AGENTGATE_LEASE_MS="60000")
    log = os.path.join(stack.dir, "logs", "worker-sd-notify-slow.log")
    with own_process([bin_path("agentgate-worker")], env, log) as proc:
        notify.wait("READY=1", proc=proc, log=log)
        start = notify.count("WATCHDOG=1")
        # 8 pings span 2.4 s of a 20 s wait between rounds.
        notify.wait("WATCHDOG=1", n=start + 8, proc=proc, log=log, timeout=15)
        assert "has not turned" not in read(log)


def test_without_test_hooks_sigusr2_is_not_a_stall(stack, notify):
    """The stall exists only with AGENTGATE_TEST_HOOKS=1: without it the
    worker does not take SIGUSR2 as a hook (its default action ends the
    process instead), so no one can stall a production loop by signal."""
    env = notify_env(stack, notify, AGENTGATE_WORKER_ID="it-sd-notify-nohooks")
    env.pop("AGENTGATE_TEST_HOOKS")
    log = os.path.join(stack.dir, "logs", "worker-sd-notify-nohooks.log")
    with own_process([bin_path("agentgate-worker")], env, log) as proc:
        notify.wait("READY=1", proc=proc, log=log)
        proc.send_signal(signal.SIGUSR2)
        assert proc.wait(timeout=WAIT_S) == -signal.SIGUSR2
        assert "test hook" not in read(log)
