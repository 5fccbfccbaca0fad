"""Prometheus text exposition (format 0.0.4) for tests: a strict parser of
what /metrics answers, and Debian's `promtool check metrics` run on it.

The parser is strict on purpose: a line it cannot read fails the test
rather than being skipped, so a malformed exposition cannot pass
unnoticed. It reads what the format allows agentgate to write (no
timestamps, no exemplars)."""

import re
import shutil
import subprocess

PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"

_NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
_SAMPLE = re.compile(rf"^({_NAME})(?:\{{(.*)\}})? (\S+)$")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(,|$)')
_UNESCAPE = {"\\\\": "\\", '\\"': '"', "\\n": "\n"}


def _labels(text):
    out, pos = {}, 0
    while pos < len(text):
        m = _LABEL.match(text, pos)
        assert m, f"bad labels at {text[pos:]!r}"
        value = re.sub(r'\\[\\"n]', lambda e: _UNESCAPE[e.group(0)], m.group(2))
        assert m.group(1) not in out, f"label {m.group(1)} repeated in {text!r}"
        out[m.group(1)] = value
        pos = m.end()
    return out


class Exposition:
    """A parsed scrape: samples[(name, frozenset(labels.items()))] = value,
    and each family's type and help."""

    def __init__(self, text):
        self.text = text
        self.samples = {}
        self.types = {}
        self.helps = {}
        for line in text.splitlines():
            if not line:
                continue
            if line.startswith("# HELP "):
                name, _, help_ = line[7:].partition(" ")
                self.helps[name] = help_
                continue
            if line.startswith("# TYPE "):
                name, _, type_ = line[7:].partition(" ")
                self.types[name] = type_
                continue
            assert not line.startswith("#"), f"unexpected comment: {line!r}"
            m = _SAMPLE.match(line)
            assert m, f"unreadable sample line: {line!r}"
            key = (m.group(1), frozenset(_labels(m.group(2) or "").items()))
            assert key not in self.samples, f"sample repeated: {line!r}"
            self.samples[key] = float(m.group(3))

    def value(self, name, default=None, **labels):
        """The value of the sample name{labels} (exactly those labels), or
        default when there is none."""
        return self.samples.get((name, frozenset(labels.items())), default)

    def series(self, name):
        """[(labels dict, value)] of every sample called name."""
        return [(dict(k[1]), v) for k, v in self.samples.items() if k[0] == name]


def promtool_check(text):
    """Runs `promtool check metrics` on text; returns (exit status, what it
    printed). Status 0 with nothing printed means no error and no lint
    warning."""
    r = subprocess.run([PROMTOOL, "check", "metrics"], input=text.encode(),
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30)
    return r.returncode, r.stdout.decode(errors="replace")
