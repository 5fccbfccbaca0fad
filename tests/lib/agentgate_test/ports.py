"""Local TCP ports: free ones, and the session stack's (AGENTGATE_TEST_*_PORT,
else a default, else any free port)."""

import os
import socket


def port_free(port):
    """True when nothing listens on 127.0.0.1:port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def free_port():
    """A port no one listens on now (the kernel's pick)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pick_port(env, default):
    """The port env names; else default, or, when something already
    listens there (a second test run on the machine), a free one."""
    if os.environ.get(env):
        return int(os.environ[env])
    return default if port_free(default) else free_port()


# The session stack's ports (conftest's `stack` fixture starts it on them).
HTTP_PORT = pick_port("AGENTGATE_TEST_HTTP_PORT", 18085)
PG_PORT = pick_port("AGENTGATE_TEST_PG_PORT", 55435)
REDIS_PORT = pick_port("AGENTGATE_TEST_REDIS_PORT", 56382)
