"""
Fixtures for the integration tests: one real agentgate stack (PostgreSQL,
Redis, migrations, gateway, two workers) per test session, started and
stopped with deploy/local/agentgate-stack, and the OpenAI stand-in. The
helpers they and the tests use (HTTP/SSE client, tokens, stack control,
services of a test's own) are the library in tests/lib/agentgate_test.

Environment:
  AGENTGATE_BIN              directory with agentgate-gateway, -worker, ...
                             (default: <repo>/build/bin)
  AGENTGATE_TEST_HTTP_PORT   gateway port      (default 18085)
  AGENTGATE_TEST_PG_PORT     PostgreSQL port   (default 55435)
  AGENTGATE_TEST_REDIS_PORT  Redis port        (default 56382)
                             (a default already in use, e.g. by another test
                             run, is replaced by a free port)
  AGENTGATE_TEST_KEEP_DIR    set to 1 to keep the stack directory afterwards

Every test gets its own tenant (uuid-suffixed), so tests do not see each
other's jobs and can run in any order.
"""

import os
import shutil
import subprocess
import sys
import tempfile

import pytest

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "lib")))

from agentgate_test import stack as stack_lib  # noqa: E402
from agentgate_test.paths import bin_dir  # noqa: E402
from agentgate_test.services import LlmStandin, StandinError  # noqa: E402

_REPORTS = []


def pytest_terminal_summary(terminalreporter):
    for text in _REPORTS:
        terminalreporter.section("agentgate stack", sep="-")
        for line in text.splitlines():
            terminalreporter.write_line(line)


@pytest.fixture(scope="session")
def stack(request):
    bindir = bin_dir()
    missing = stack_lib.missing_binaries(bindir)
    if missing:
        pytest.fail(missing, pytrace=False)

    d = tempfile.mkdtemp(prefix="agentgate-it-")
    os.chmod(d, 0o755)      # PostgreSQL runs as postgres and needs to enter it

    def report(text):
        # Shown at the end of the run, outside pytest's output capture.
        _REPORTS.append(text)

    up_failure, up_output, secret = stack_lib.up(d, bindir)
    if up_failure is not None:
        report(f"{up_failure}\n{up_output}\n{stack_lib.log_tails(d)}")
        stack_lib.down(d)
        pytest.fail(f"{up_failure} (stack dir {d}); output:\n{up_output}",
                    pytrace=False)

    s = stack_lib.Stack(d, secret)
    try:
        yield s
    finally:
        failed = request.session.testsfailed > 0
        if failed:
            report(f"integration tests failed; stack dir {d}\n{stack_lib.log_tails(d)}")
        try:
            down = stack_lib.down(d)
            if down.returncode != 0:
                report(f"agentgate-stack down exited {down.returncode}:\n"
                       + down.stdout)
        except subprocess.TimeoutExpired:
            report("agentgate-stack down timed out")
        # Under ASan/UBSan a server's report (a leak is only reported when
        # it exits, at `down`) must fail the run, not just sit in its log.
        findings = "\n\n".join(stack_lib.sanitizer_reports(d))
        if findings:
            report(f"sanitizer reports in the service logs; stack dir {d}\n{findings}")
            pytest.fail("sanitizer reports in the service logs:\n" + findings,
                        pytrace=False)
        if not failed and os.environ.get("AGENTGATE_TEST_KEEP_DIR") != "1":
            shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def tenant(stack):
    """A fresh tenant (and user) for this test alone."""
    return stack.tenant()


@pytest.fixture
def other_tenant(stack):
    """A second fresh tenant, for isolation checks."""
    return stack.tenant("it-b")


@pytest.fixture(scope="session")
def llm_standin():
    """One stand-in OpenAI server for the session, on a free port."""
    try:
        standin = LlmStandin.start()
    except StandinError as e:
        pytest.fail(str(e), pytrace=False)
    try:
        yield standin
    finally:
        standin.stop()
