"""Secrets read from files by the real processes: the gateway's JWT secret
from AGENTGATE_JWT_SECRET_FILE and, as systemd's LoadCredential= would
hand them over, the JWT secret and the database URL from
$CREDENTIALS_DIRECTORY; a worker whose database and Redis URLs (and a
database password) come from files reaches both stores; a secret given two ways stops the process with
exit 2 and one line that does not hold the secret. The unit tests
(tests/unit/common/test_config_secrets.c) cover the parsing rules.

Ports: the gateways of this file use 20430-20439."""

import json
import os
import subprocess
import time

from agentgate_test.paths import bin_path
from agentgate_test.services import OwnGateway, own_process, stack_env
from agentgate_test.tokens import mint_jwt
from agentgate_test.waiting import wait_for

FILE_PORT = 20430
CRED_PORT = 20431


def write_secret(path, value):
    with open(path, "w", encoding="utf-8") as f:
        f.write(value + "\n")
    os.chmod(path, 0o600)
    return path


def start(env, port, name, stack):
    log_path = os.path.join(stack.dir, "logs", f"gateway-{name}.log")
    env["AGENTGATE_LISTEN"] = f"127.0.0.1:{port}"
    return own_process([bin_path("agentgate-gateway")], env, log_path), log_path


def wait_up(g):
    deadline = time.monotonic() + 20
    while True:
        assert g.proc.poll() is None, "gateway exited:\n" + g.log()
        try:
            if g.request("GET", "/v1/health/ready", timeout=2)[0] == 200:
                return
        except OSError:
            pass
        assert time.monotonic() < deadline, "gateway not ready:\n" + g.log()
        time.sleep(0.1)


def jobs_status(g, token):
    return g.request("GET", "/v1/jobs", headers={"Authorization": "Bearer " + token})[0]


def test_gateway_jwt_secret_from_file(stack, tenant, tmp_path):
    env = stack_env(stack)
    secret = env.pop("AGENTGATE_JWT_SECRET")
    env["AGENTGATE_JWT_SECRET_FILE"] = write_secret(tmp_path / "jwt_secret", secret)
    cm, log = start(env, FILE_PORT, "secret-file", stack)
    with cm as proc:
        g = OwnGateway(FILE_PORT, log, proc)
        wait_up(g)
        assert jobs_status(g, tenant.token) == 200
        other = mint_jwt("not-the-secret-" + "x" * 32, tenant.claims())
        assert jobs_status(g, other) == 401
        assert secret not in g.log()


def test_gateway_secrets_from_systemd_credentials(stack, tenant, tmp_path):
    env = stack_env(stack)
    creds = tmp_path / "credentials"
    creds.mkdir()
    secret = env.pop("AGENTGATE_JWT_SECRET")
    write_secret(creds / "AGENTGATE_JWT_SECRET", secret)
    write_secret(creds / "AGENTGATE_DATABASE_URL", env.pop("AGENTGATE_DATABASE_URL"))
    env["CREDENTIALS_DIRECTORY"] = str(creds)
    cm, log = start(env, CRED_PORT, "credentials", stack)
    with cm as proc:
        g = OwnGateway(CRED_PORT, log, proc)
        wait_up(g)              # ready: PostgreSQL reached with the credential's URL
        assert jobs_status(g, tenant.token) == 200
        assert secret not in g.log()


def test_worker_store_urls_from_files(stack, tmp_path):
    env = stack_env(stack)
    env["AGENTGATE_DATABASE_URL_FILE"] = write_secret(tmp_path / "db_url",
                                                      env.pop("AGENTGATE_DATABASE_URL"))
    env["AGENTGATE_REDIS_URL_FILE"] = write_secret(tmp_path / "redis_url",
                                                   env.pop("AGENTGATE_REDIS_URL"))
    # The stack's PostgreSQL trusts 127.0.0.1, so the password is not
    # checked; what this shows is that the connection string rebuilt with it
    # (host list and options kept) reaches PostgreSQL from every thread.
    env["AGENTGATE_DATABASE_PASSWORD_FILE"] = write_secret(tmp_path / "db_password", "it's-a-secret")
    env["AGENTGATE_WORKER_ID"] = "it-secret-files"
    log = os.path.join(stack.dir, "logs", "worker-secret-files.log")
    with own_process([bin_path("agentgate-worker")], env, log) as proc:
        def ready():
            assert proc.poll() is None, open(log, encoding="utf-8").read()
            with open(log, encoding="utf-8") as f:
                return any(json.loads(ln).get("msg") == "ready: worker it-secret-files takes jobs"
                           for ln in f if ln.startswith("{"))
        wait_for(ready, what="the worker reaching PostgreSQL and Redis")


def run_config_error(env):
    r = subprocess.run([bin_path("agentgate-gateway")], env=env, capture_output=True,
                       text=True, timeout=30)
    return r.returncode, r.stderr


def test_a_secret_given_two_ways_is_refused(stack, tmp_path):
    env = stack_env(stack)
    secret = env["AGENTGATE_JWT_SECRET"]
    env["AGENTGATE_JWT_SECRET_FILE"] = write_secret(tmp_path / "jwt_secret", secret)
    rc, err = run_config_error(env)
    assert rc == 2
    assert err.count("\n") == 1 and "AGENTGATE_JWT_SECRET_FILE" in err, err
    assert secret not in err

    creds = tmp_path / "credentials"
    creds.mkdir()
    write_secret(creds / "AGENTGATE_JWT_SECRET", secret)
    del env["AGENTGATE_JWT_SECRET_FILE"]
    env["CREDENTIALS_DIRECTORY"] = str(creds)
    rc, err = run_config_error(env)
    assert rc == 2 and "credential AGENTGATE_JWT_SECRET" in err and secret not in err, err


def test_an_unreadable_secret_file_is_refused(stack, tmp_path):
    env = stack_env(stack)
    del env["AGENTGATE_JWT_SECRET"]
    env["AGENTGATE_JWT_SECRET_FILE"] = str(tmp_path / "missing")
    rc, err = run_config_error(env)
    assert rc == 2
    assert err == (f"agentgate-gateway: AGENTGATE_JWT_SECRET_FILE: {tmp_path}/missing: "
                   "No such file or directory\n"), err
