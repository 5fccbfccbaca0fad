"""Redis with a password, an ACL user and TLS, as managed Redis services
run it: a gateway and a worker of the test's own (on a database of their
own, so the session's workers never see their jobs) run jobs against
Debian's redis-server with requirepass and an ACL user (credentials in the
URL, or the password from a file), re-authenticate after the server drops
every connection, and never log the password; against redis-server
listening with TLS only, through a stunnel4 client configured as
deploy/stunnel/agentgate-redis-tunnel.conf (its accept, connect and CA
lines pointed at the test's); and PostgreSQL multi-host URLs with
target_session_attrs=read-write keep working when the first host is
down."""

import os
import re
import shutil
import subprocess
import urllib.parse

import pytest

from agentgate_test.paths import REPO
from agentgate_test.redis_setups import (RedisProc, cli, make_test_ca, mini_stack, ports,
                                         stunnel, stunnel_client_conf, url_with,
                                         wait_until)

APP_USER = "agentgate-app"
# Characters a URL must escape, so the percent-decoding is exercised.
APP_PASSWORD = "s3cr@t:p/w%-" + os.urandom(4).hex()
DEFAULT_PASSWORD = "default-" + os.urandom(4).hex()
# What the service user may do: everything but the dangerous commands
# (KEYS, FLUSHALL, CONFIG, ...), as a platform team would grant it.
APP_ACL = f"{APP_USER} on >{APP_PASSWORD} ~* &* +@all -@dangerous"

TUNNEL_CONF = os.path.join(REPO, "deploy", "stunnel", "agentgate-redis-tunnel.conf")

# Port blocks of this file (redis_setups.ports offsets).
P_AUTH, P_TLS, P_PG = 0, 10, 20


def quote(s):
    return urllib.parse.quote(s, safe="")


def secured_redis(d, port, extra=()):
    """redis-server on port with a default-user password and the ACL user."""
    return RedisProc(d, f"redis-{port}", port,
                     ["--requirepass", DEFAULT_PASSWORD, "--user", *APP_ACL.split(), *extra],
                     password=DEFAULT_PASSWORD)


def app_clients(r):
    """How many connections the ACL user has open on r."""
    code, out = r.cli("CLIENT", "LIST")
    assert code == 0, out
    return sum(1 for line in out.splitlines() if f" user={APP_USER} " in line)


def run_one_job(m):
    status, job = m.submit("demo", {"events": 2, "duration_ms": 0})
    assert status == 202, f"submit: {status} {job}\n{m.logs()}"
    done = m.wait_job(job["id"])
    assert done["status"] == "succeeded", f"{done}\n{m.logs()}"
    return done


def assert_no_secret_in_logs(m, *secrets):
    for name in m.procs:
        text = m.log_of(name)
        for s in secrets:
            for form in {s, quote(s)}:
                assert form not in text, f"{name}'s log shows a password"


@pytest.fixture
def workdir(tmp_path):
    os.chmod(tmp_path, 0o755)
    return str(tmp_path)


def test_acl_user_in_url_runs_jobs_and_authenticates_again(stack, workdir):
    rport, gport = ports(P_AUTH, 2)
    r = secured_redis(workdir, rport).wait_up()
    try:
        url = f"redis://{quote(APP_USER)}:{quote(APP_PASSWORD)}@127.0.0.1:{rport}/2"
        with mini_stack(stack, workdir, gport, {"AGENTGATE_REDIS_URL": url}) as m:
            run_one_job(m)
            # Every connection of the gateway and the worker logged in as
            # the ACL user, on database 2.
            assert app_clients(r) >= 3, r.cli("CLIENT", "LIST")[1]
            code, out = r.cli("CLIENT", "LIST")
            assert all(" db=2 " in line for line in out.splitlines()
                       if f" user={APP_USER} " in line), out

            # The server drops every connection of the user: the reconnects
            # must log in again (without AUTH, every command is refused).
            code, killed = r.cli("CLIENT", "KILL", "USER", APP_USER)
            assert code == 0 and int(killed) >= 3, killed
            wait_until(lambda: app_clients(r) >= 3, "the connections to come back")
            wait_until(m.ready, "the gateway to be ready again")
            run_one_job(m)
            code, out = r.cli("ACL", "LOG")
            assert "auth" not in out.split(), f"a failed AUTH was logged by Redis: {out}"
            assert_no_secret_in_logs(m, APP_PASSWORD, DEFAULT_PASSWORD)
    finally:
        r.stop()


def test_password_from_a_file_and_refusals(stack, workdir):
    rport, gport, gport2 = ports(P_AUTH + 2, 3)
    r = secured_redis(workdir, rport).wait_up()
    secret_file = os.path.join(workdir, "redis-password")
    with open(secret_file, "w", encoding="utf-8") as f:
        f.write(APP_PASSWORD + "\n")
    os.chmod(secret_file, 0o600)
    try:
        settings = {"AGENTGATE_REDIS_URL": f"redis://127.0.0.1:{rport}/0",
                    "AGENTGATE_REDIS_USERNAME": APP_USER,
                    "AGENTGATE_REDIS_PASSWORD_FILE": secret_file}
        with mini_stack(stack, workdir, gport, settings) as m:
            run_one_job(m)
            assert app_clients(r) >= 3

        # A wrong password: never ready, the refusal logged, the password not.
        wrong = "wrong-" + os.urandom(4).hex()
        settings = {"AGENTGATE_REDIS_URL": f"redis://{APP_USER}:{wrong}@127.0.0.1:{rport}/0"}
        os.makedirs(os.path.join(workdir, "wrong"))
        with mini_stack(stack, os.path.join(workdir, "wrong"), gport2, settings,
                        check_ready=False) as m:
            wait_until(lambda: "WRONGPASS" in m.log_of("gateway")
                       and "WRONGPASS" in m.log_of("worker-1"),
                       "the gateway and the worker to log Redis's refusal")
            assert not m.ready()
            assert_no_secret_in_logs(m, wrong)
    finally:
        r.stop()


def tunnel_conf_for_test(path, accept_port, tls_port, ca):
    """deploy/stunnel/agentgate-redis-tunnel.conf with its accept, connect
    and CAfile lines pointed at the test's, everything else as shipped
    (and in the foreground, without a pid file, for the test to stop)."""
    with open(TUNNEL_CONF, encoding="utf-8") as f:
        text = f.read()
    subs = {"accept": f"127.0.0.1:{accept_port}", "connect": f"127.0.0.1:{tls_port}",
            "CAfile": ca, "checkHost": "localhost"}
    for key, value in subs.items():
        text, n = re.subn(rf"(?m)^{key}\s*=.*$", f"{key} = {value}", text)
        assert n == 1, f"{TUNNEL_CONF} has no single {key} line"
    text = re.sub(r"(?m)^(setuid|setgid|output|pid)\s*=.*$", "", text)
    with open(path, "w", encoding="utf-8") as f:
        f.write("foreground = yes\npid =\n" + text)
    return path


def test_tls_redis_through_the_stunnel_client(stack, workdir):
    tls_port, accept_port, gport = ports(P_TLS, 3)
    certs = make_test_ca(workdir)
    # TLS only: no plain port; clients need no certificate of their own.
    r = RedisProc(workdir, "redis-tls", tls_port,
                  ["--port", "0", "--tls-port", str(tls_port), "--tls-cert-file", certs["cert"],
                   "--tls-key-file", certs["key"], "--tls-ca-cert-file", certs["ca"],
                   "--tls-auth-clients", "no", "--requirepass", DEFAULT_PASSWORD,
                   "--user", *APP_ACL.split()], password=DEFAULT_PASSWORD)
    conf = tunnel_conf_for_test(os.path.join(workdir, "tunnel.conf"), accept_port, tls_port,
                                certs["ca"])
    try:
        with stunnel(workdir, conf):
            # Redis answers through the tunnel only: plain text to its port
            # gets nothing.
            r.wait_up(port=accept_port)
            code, out = cli(tls_port, "PING", password=DEFAULT_PASSWORD, timeout=5)
            assert out != "PONG", "the TLS port answered plain text"

            url = f"redis://{quote(APP_USER)}:{quote(APP_PASSWORD)}@127.0.0.1:{accept_port}/0"
            with mini_stack(stack, workdir, gport, {"AGENTGATE_REDIS_URL": url}) as m:
                done = run_one_job(m)
                events = m.events(done["id"])
                assert [e for _, e in events][-1] == "job.succeeded", events
                code, out = cli(accept_port, "CLIENT", "LIST", password=DEFAULT_PASSWORD)
                assert sum(f" user={APP_USER} " in line for line in out.splitlines()) >= 3, out
                assert_no_secret_in_logs(m, APP_PASSWORD)
    finally:
        r.stop()


def test_postgresql_multi_host_url_skips_a_host_that_is_down(stack, workdir):
    rport, gport, dead = ports(P_PG, 3)
    r = RedisProc(workdir, "redis-pg", rport, []).wait_up()

    def through_a_dead_host(app_url):
        # The same database, reached through a first host that is down and
        # then the real one; read-write asks libpq to skip a standby too.
        user, _, hostport = urllib.parse.urlsplit(app_url).netloc.rpartition("@")
        return url_with(app_url, netloc=f"{user}@127.0.0.1:{dead},{hostport}",
                        query="target_session_attrs=read-write&connect_timeout=5")
    try:
        with mini_stack(stack, workdir, gport,
                        {"AGENTGATE_REDIS_URL": f"redis://127.0.0.1:{rport}/0"},
                        app_url_of=through_a_dead_host) as m:
            assert f"127.0.0.1:{dead}," in m.env["AGENTGATE_DATABASE_URL"]
            run_one_job(m)
            m.request("GET", "/v1/jobs")
    finally:
        r.stop()


def test_tunnel_unit_passes_systemd_analyze_verify(tmp_path):
    """deploy/systemd/agentgate-redis-tunnel.service runs stunnel4 on the
    configuration deploy/stunnel ships, in the fleet's target."""
    tool = shutil.which("systemd-analyze")
    assert tool, "systemd-analyze is not installed (deploy/local/install-deps installs systemd)"
    units = ("agentgate-redis-tunnel.service", "agentgate.target")
    for u in units:
        shutil.copy(os.path.join(REPO, "deploy", "systemd", u), tmp_path / u)
    r = subprocess.run([tool, "verify", "--man=no", *(str(tmp_path / u) for u in units)],
                       capture_output=True, text=True, timeout=60)
    out = (r.stdout + r.stderr).strip()
    assert r.returncode == 0 and out == "", out
    with open(tmp_path / units[0], encoding="utf-8") as f:
        text = f.read()
    exec_start = re.search(r"(?m)^ExecStart=(\S+) (\S+)$", text)
    assert exec_start and exec_start.group(1) == "/usr/bin/stunnel4", text
    assert exec_start.group(2) == "/etc/stunnel/" + os.path.basename(TUNNEL_CONF)
    assert re.search(r"(?m)^PartOf=agentgate\.target$", text)
    assert re.search(r"(?m)^WantedBy=agentgate\.target$", text)
