"""agentgate-migrate and a PostgreSQL that is not up yet: it waits with a
growing pause, one line per try, and applies the migrations once a server
starts on the port; it gives up with exit 1 when the wait runs out; a
configuration error (bad option, bad connection string) exits 2 at once,
and a server that answers and refuses is not waited for. Each test runs
agentgate-migrate itself, against a PostgreSQL of its own (initdb'd here)
or against nothing; none needs the session stack."""

import glob
import os
import random
import shutil
import subprocess
import tempfile
import time

import pytest

from agentgate_test.paths import REPO, bin_path
from agentgate_test.ports import port_free

MIGRATIONS = os.path.join(REPO, "sql", "migrations")
WAITING = "PostgreSQL is not accepting connections yet"


def _port():
    """A port under 32768 that nothing listens on."""
    for _ in range(200):
        p = random.randint(20000, 32000)
        if port_free(p):
            return p
    raise AssertionError("no free port under 32768")


def _pg_bindir():
    dirs = sorted(glob.glob("/usr/lib/postgresql/*/bin"),
                  key=lambda d: int(d.split("/")[-2]))
    if not dirs or not os.path.exists(os.path.join(dirs[-1], "pg_ctl")):
        pytest.skip("PostgreSQL server binaries not found under /usr/lib/postgresql/*/bin")
    return dirs[-1]


def _as_pg(argv):
    """argv as user postgres when root (PostgreSQL refuses to run as root)."""
    return (["runuser", "-u", "postgres", "--"] + argv) if os.geteuid() == 0 else argv


def _migrate(args, url, wait_s=None, **kw):
    env = dict(os.environ)
    for k in list(env):
        if k.startswith("AGENTGATE_"):
            del env[k]
    env["AGENTGATE_DATABASE_URL"] = url
    if wait_s is not None:
        env["AGENTGATE_MIGRATE_WAIT_S"] = str(wait_s)
    return subprocess.Popen([bin_path("agentgate-migrate"), "--dir", MIGRATIONS] + args,
                            env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kw)


def _run(args, url, wait_s=None, timeout=30):
    p = _migrate(args, url, wait_s)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
        raise AssertionError(f"agentgate-migrate {args} still running after {timeout} s; "
                             f"stderr:\n{err}") from None
    return p.returncode, out, err


class OwnPostgres:
    """A throwaway PostgreSQL cluster (superuser agentgate, trust auth),
    initdb'd at once, started only when start() is called."""

    def __init__(self, d, port):
        self.bindir = _pg_bindir()
        self.dir = d
        self.data = os.path.join(d, "pg")
        self.log = os.path.join(d, "postgresql.log")
        self.port = port
        os.makedirs(self.data)
        run = os.path.join(d, "run")
        os.makedirs(run)
        open(self.log, "w").close()
        if os.geteuid() == 0:
            for p in (self.data, run, self.log):
                shutil.chown(p, "postgres", "postgres")
            os.chmod(self.data, 0o700)
        subprocess.run(_as_pg([os.path.join(self.bindir, "initdb"), "-D", self.data,
                               "--auth=trust", "-U", "agentgate", "-E", "UTF8",
                               "--no-locale"]),
                       check=True, capture_output=True, timeout=120)
        with open(os.path.join(self.data, "postgresql.conf"), "a") as f:
            f.write(f"\nport = {port}\nlisten_addresses = '127.0.0.1'\n"
                    f"unix_socket_directories = '{run}'\nfsync = off\n")

    def url(self, db="postgres"):
        return f"postgresql://agentgate@127.0.0.1:{self.port}/{db}"

    def start(self):
        # No -w: agentgate-migrate is the one waiting for it.
        subprocess.run(_as_pg([os.path.join(self.bindir, "pg_ctl"), "-D", self.data,
                               "-l", self.log, "start"]),
                       check=True, capture_output=True, timeout=60)

    def stop(self):
        subprocess.run(_as_pg([os.path.join(self.bindir, "pg_ctl"), "-D", self.data,
                               "-m", "immediate", "-w", "stop"]),
                       capture_output=True, timeout=60)


@pytest.fixture
def own_pg():
    d = tempfile.mkdtemp(prefix="agentgate-migrate-wait-")
    os.chmod(d, 0o755)      # PostgreSQL runs as postgres and needs to enter it
    pg = OwnPostgres(d, _port())
    try:
        yield pg
    finally:
        pg.stop()
        shutil.rmtree(d, ignore_errors=True)


def _read_waiting_lines(proc, n, timeout):
    """Reads proc's stderr until n lines saying it waits have come."""
    lines = []
    deadline = time.monotonic() + timeout
    while sum(WAITING in ln for ln in lines) < n:
        assert time.monotonic() < deadline, f"not waiting for PostgreSQL: {lines}"
        ln = proc.stderr.readline()
        assert ln, (f"agentgate-migrate exited {proc.wait()} before waiting "
                    f"{n} times: {lines}")
        lines.append(ln)
    return lines


def test_waits_for_postgresql_to_start_then_migrates(own_pg):
    t0 = time.monotonic()
    proc = _migrate(["--wait", "60"], own_pg.url())
    try:
        lines = _read_waiting_lines(proc, 3, timeout=20)
        # 100, 200, 400 ms: three tries within about a second, not at once.
        assert time.monotonic() - t0 >= 0.25, lines
        for ln in lines:
            assert ln.startswith("agentgate-migrate: ") and ln.endswith("\n"), ln
            assert ln.count("\n") == 1, ln
        assert "trying again in 100 ms" in lines[0], lines
        assert "trying again in 200 ms" in lines[1], lines
        own_pg.start()
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, f"exit {proc.returncode}\nstdout:\n{out}\nstderr:\n{''.join(lines)}{err}"
    assert "schema at version" in out, out
    assert "applied 001_" in out, out
    # Every line it wrote while waiting is one attempt's.
    for ln in lines + err.splitlines():
        assert WAITING in ln, ln

    # Up now: nothing to do, no waiting.
    rc, out, err = _run([], own_pg.url())
    assert rc == 0 and "nothing to apply" in out and WAITING not in err, (rc, out, err)

    # A server that answers and refuses (no such database) is not waited for.
    t1 = time.monotonic()
    rc, out, err = _run(["--wait", "30"], own_pg.url("no_such_db"))
    assert rc == 1, (rc, out, err)
    assert WAITING not in err and "no_such_db" in err, err
    assert time.monotonic() - t1 < 10


def test_gives_up_with_exit_1_after_the_wait():
    url = f"postgresql://agentgate@127.0.0.1:{_port()}/postgres"
    t0 = time.monotonic()
    rc, out, err = _run(["--wait", "1"], url, timeout=15)
    took = time.monotonic() - t0
    assert rc == 1, (rc, out, err)
    assert 0.9 <= took < 5, f"took {took:.2f} s"
    lines = err.splitlines()
    assert sum(WAITING in ln for ln in lines) >= 2, err
    assert "giving up" in lines[-1], err

    # The setting does the same as --wait; 0 is a single try.
    rc, out, err = _run([], url, wait_s=0, timeout=15)
    assert rc == 1 and WAITING not in err and "giving up" in err, (rc, err)


@pytest.mark.parametrize("args,url,says", [
    (["--bogus"], None, "unknown option '--bogus'"),
    (["--wait"], None, "'--wait' needs a value"),
    (["--wait", "soon"], None, "'--wait' needs whole seconds"),
    (["--wait", "-1"], None, "'--wait' needs whole seconds"),
    (["--wait", "86401"], None, "'--wait' needs whole seconds"),
    ([], "postgresql://agentgate@127.0.0.1:{port}/postgres?nope=1", "not a valid connection string"),
    ([], "host=127.0.0.1 port", "not a valid connection string"),
], ids=["unknown-option", "wait-without-value", "wait-not-a-number", "wait-negative",
        "wait-too-long", "bad-uri-parameter", "bad-keyword-syntax"])
def test_configuration_error_exits_2_at_once(args, url, says):
    port = _port()
    url = (url or "postgresql://agentgate@127.0.0.1:{port}/postgres").format(port=port)
    t0 = time.monotonic()
    # A bad connection string is refused even when told to wait.
    rc, out, err = _run(args or ["--wait", "30"], url, timeout=10)
    assert rc == 2, (rc, out, err)
    assert says in err, err
    assert WAITING not in err, err
    assert len(err.splitlines()) == 1, err
    assert time.monotonic() - t0 < 3


def test_bad_wait_setting_exits_2():
    url = f"postgresql://agentgate@127.0.0.1:{_port()}/postgres"
    rc, out, err = _run([], url, wait_s="a while", timeout=10)
    assert rc == 2 and "AGENTGATE_MIGRATE_WAIT_S" in err, (rc, err)
