"""Where things are: the repository, the stack script, the OpenAI
stand-in, and the agentgate binaries under test."""

import os

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
STACK_SCRIPT = os.path.join(REPO, "deploy", "local", "agentgate-stack")
STANDIN_SCRIPT = os.path.join(REPO, "tests", "fakes", "openai_standin.py")


def bin_dir():
    """The directory of the binaries under test: AGENTGATE_BIN, else the
    repository's build/bin."""
    return os.path.abspath(os.environ.get("AGENTGATE_BIN",
                                          os.path.join(REPO, "build", "bin")))


def bin_path(name):
    """The path of one of agentgate's binaries under test (AGENTGATE_BIN,
    else the repository's build/bin)."""
    return os.path.join(bin_dir(), name)
