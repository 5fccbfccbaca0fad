"""The systemd units in deploy/systemd: they pass `systemd-analyze verify`
(with ExecStart pointed at the binaries under test, so the commands exist);
the migration unit is restarted when it fails, without a start limit, and
the gateway and the workers start after it and require it; the gateway
and the workers are Type=notify with a watchdog, and every unit is
started and stopped with agentgate.target; no unit is
restarted after exit status 2, and each daemon does exit 2 on a
configuration error (a bad option, a setting that does not load, a
connection string libpq cannot parse), so an operator's mistake stops the
unit instead of restarting it forever. No stack needed."""

import os
import shutil
import subprocess
import tempfile

import pytest

from agentgate_test.paths import REPO, bin_dir, bin_path

UNIT_DIR = os.path.join(REPO, "deploy", "systemd")
UNITS = ("agentgate-migrate.service", "agentgate-gateway.service",
         "agentgate-worker@.service")
TARGET = "agentgate.target"
DAEMONS = {"agentgate-migrate.service": "agentgate-migrate",
           "agentgate-gateway.service": "agentgate-gateway",
           "agentgate-worker@.service": "agentgate-worker"}


def parse_unit(path):
    """{section: {key: [values in order]}}; comments and blank lines skipped,
    a key may repeat (EnvironmentFile=, After=)."""
    sections, cur = {}, None
    with open(path, encoding="utf-8") as f:
        for n, raw in enumerate(f, 1):
            line = raw.strip()
            if not line or line[0] in "#;":
                continue
            if line.startswith("[") and line.endswith("]"):
                cur = sections.setdefault(line[1:-1], {})
                continue
            assert cur is not None and "=" in line, f"{path}:{n}: {raw!r}"
            key, _, value = line.partition("=")
            cur.setdefault(key.strip(), []).append(value.strip())
    return sections


def one(unit, section, key):
    vals = unit.get(section, {}).get(key)
    assert vals and len(vals) == 1, f"[{section}] {key}= is {vals!r}, wanted one value"
    return vals[0]


def words(unit, section, key):
    return [w for v in unit.get(section, {}).get(key, []) for w in v.split()]


@pytest.fixture(scope="module")
def units():
    return {u: parse_unit(os.path.join(UNIT_DIR, u)) for u in UNITS}


def test_every_unit_restarts_on_failure_but_not_on_exit_2(units):
    for name, u in units.items():
        assert one(u, "Service", "Restart") == "on-failure", name
        assert one(u, "Service", "RestartSec"), name
        assert "2" in words(u, "Service", "RestartPreventExitStatus"), (
            f"{name}: RestartPreventExitStatus lacks 2")


def test_migrate_unit_retries_without_a_start_limit(units):
    u = units["agentgate-migrate.service"]
    assert one(u, "Service", "Type") == "oneshot"
    assert one(u, "Service", "RemainAfterExit") == "yes"
    # Restarts must not run into the default start limit (5 in 10 s).
    assert one(u, "Unit", "StartLimitIntervalSec") == "0"
    assert "postgresql.service" in words(u, "Unit", "After")


@pytest.mark.parametrize("name", ["agentgate-gateway.service", "agentgate-worker@.service"])
def test_services_order_after_and_require_migrate(units, name):
    u = units[name]
    assert "agentgate-migrate.service" in words(u, "Unit", "After"), name
    assert "agentgate-migrate.service" in words(u, "Unit", "Requires"), name


@pytest.mark.parametrize("name", ["agentgate-gateway.service", "agentgate-worker@.service"])
def test_daemons_notify_systemd_and_keep_a_watchdog(units, name):
    u = units[name]
    assert one(u, "Service", "Type") == "notify", name
    assert one(u, "Service", "NotifyAccess") == "main", name
    # Long enough that a loop busy with one slow callback is not taken for
    # a hung one; a watchdog timeout counts as a failure, so it restarts.
    wd = one(u, "Service", "WatchdogSec")
    assert wd.endswith("s") and int(wd[:-1]) >= 10, f"{name}: WatchdogSec={wd}"
    assert one(u, "Service", "Restart") == "on-failure"


def test_the_target_starts_and_stops_the_fleet(units):
    target = parse_unit(os.path.join(UNIT_DIR, TARGET))
    assert "multi-user.target" in words(target, "Install", "WantedBy")
    for name, u in units.items():
        assert TARGET in words(u, "Unit", "PartOf"), f"{name}: not PartOf={TARGET}"
        assert words(u, "Install", "WantedBy") == [TARGET], (
            f"{name}: WantedBy={words(u, 'Install', 'WantedBy')}, wanted only {TARGET}")


def test_units_show_secrets_as_credentials():
    """Each unit shows (commented out) how its secrets come as systemd
    credentials, named as the settings they fill."""
    for name in UNITS:
        with open(os.path.join(UNIT_DIR, name), encoding="utf-8") as f:
            creds = [ln for ln in f if ln.startswith("#LoadCredential=AGENTGATE_")]
        assert creds, f"{name} shows no LoadCredential= example"


def test_systemd_analyze_verify():
    tool = shutil.which("systemd-analyze")
    assert tool, "systemd-analyze is not installed (deploy/local/install-deps installs systemd)"
    d = tempfile.mkdtemp(prefix="agentgate-units-")
    try:
        paths = []
        for u in UNITS + (TARGET,):
            with open(os.path.join(UNIT_DIR, u), encoding="utf-8") as f:
                text = f.read()
            # The units name the installed binaries; point them at the ones
            # under test so that verify's "is it executable" check passes.
            text = text.replace("/usr/local/bin/", bin_dir() + "/")
            p = os.path.join(d, u)
            with open(p, "w", encoding="utf-8") as f:
                f.write(text)
            paths.append(p)
        r = subprocess.run([tool, "verify", "--man=no"] + paths,
                           capture_output=True, text=True, timeout=60)
        out = (r.stdout + r.stderr).strip()
        assert r.returncode == 0 and out == "", (
            f"systemd-analyze verify exited {r.returncode}:\n{out}")
    finally:
        shutil.rmtree(d, ignore_errors=True)


def _clean_env(**settings):
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGENTGATE_")}
    env.update(settings)
    return env


@pytest.mark.parametrize("daemon", sorted(set(DAEMONS.values())))
@pytest.mark.parametrize("case", ["unknown-option", "stray-argument", "bad-setting",
                                  "missing-config-file", "bad-connection-string"])
def test_daemons_exit_2_on_a_configuration_error(daemon, case):
    argv, env = [bin_path(daemon)], _clean_env(AGENTGATE_JWT_SECRET="x" * 32)
    if case == "unknown-option":
        argv.append("--no-such-option")
    elif case == "stray-argument":
        argv.append("stray")
    elif case == "bad-setting":
        env["AGENTGATE_LOG_LEVEL"] = "loud"
    elif case == "missing-config-file":
        argv += ["--config", "/nonexistent/agentgate.env"]
    else:
        env["AGENTGATE_DATABASE_URL"] = "host=127.0.0.1 port"
    r = subprocess.run(argv, env=env, stdin=subprocess.DEVNULL, capture_output=True,
                       text=True, timeout=20)
    assert r.returncode == 2, f"{daemon} {case}: exit {r.returncode}\n{r.stderr}"
    first = r.stderr.splitlines()[0] if r.stderr else ""
    assert first.startswith(daemon + ": "), f"{daemon} {case}: {r.stderr!r}"
