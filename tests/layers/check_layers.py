#!/usr/bin/env python3
"""check_layers.py - the layer rules of the source tree, checked as text.

The Makefile gives each program's folders lowest first (LAYERS_GATEWAY,
LAYERS_WORKER, LAYERS_CLIENT) and compiles a folder with the include
paths of itself and the folders below it only, so an upward #include
already fails the build.
This check says so in words before the compiler does, and checks what the
compiler cannot see:

  - every quoted #include resolves, as the compiler resolves it (the
    including file's own folder first, then the layer's folders), to a
    file the layer may use; one found only in a higher or unrelated
    folder is reported as reaching up;
  - no circle among modules (x.c and x.h are one module; an #include is
    an edge from the including module to the included one): a circle
    means two parts each need the other, so neither is below the other;
  - every folder holding sources belongs to a layer line or is a tool
    folder with the layer it sits on;
  - docs/architecture.md shows the same layer lines.

Exit 0 when all hold; 1 with one line per violation otherwise; 2 on bad
arguments. --self-test builds a small tree with an upward include and a
circle in a temporary folder and checks that both are reported.
"""
import argparse
import os
import re
import sys
import tempfile

INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)
SOURCE_ROOTS = ("common", "gateway", "worker", "sql", "client")


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--root", default=".", help="the repository (default: .)")
    ap.add_argument("--gateway", help="the gateway's layer folders, lowest first")
    ap.add_argument("--worker", help="the worker's layer folders, lowest first")
    ap.add_argument("--client", help="the client CLI's layer folders, lowest first")
    ap.add_argument("--tool", action="append", default=[],
                    help="FOLDER=LAYER: a tool folder and the folder it sits on")
    ap.add_argument("--self-test", action="store_true",
                    help="check that a planted upward include and circle are caught")
    a = ap.parse_args(argv)
    if not a.self_test and not (a.gateway and a.worker):
        ap.error("--gateway and --worker are required")
    return a


def allowed_folders(lines, tools):
    """Maps each folder to the folders its files may include from."""
    allowed = {}
    for layers in lines.values():
        for i, folder in enumerate(layers):
            allowed.setdefault(folder, [])
            for f in layers[: i + 1]:
                if f not in allowed[folder]:
                    allowed[folder].append(f)
    for folder, base in tools.items():
        if base not in allowed:
            raise SystemExit(f"check_layers: tool folder {folder} sits on unknown folder {base}")
        allowed[folder] = [folder] + allowed[base]
    return allowed


def source_files(root):
    for top in SOURCE_ROOTS:
        for d, _, files in os.walk(os.path.join(root, top)):
            for name in sorted(files):
                if name.endswith((".c", ".h")):
                    yield os.path.relpath(os.path.join(d, name), root)


def module_of(path):
    return os.path.splitext(path)[0]


def check(root, lines, tools):
    problems = []
    allowed = allowed_folders(lines, tools)
    files = list(source_files(root))
    where = {}                       # header name -> folders that have it
    for f in files:
        if f.endswith(".h"):
            where.setdefault(os.path.basename(f), []).append(os.path.dirname(f))

    edges = {}
    for f in files:
        folder = os.path.dirname(f)
        if folder not in allowed:
            problems.append(f"{f}: folder {folder} is on no layer line of the Makefile")
            continue
        with open(os.path.join(root, f), encoding="utf-8", errors="replace") as fh:
            text = fh.read()
        for name in INCLUDE.findall(text):
            if "/" in name:
                problems.append(f"{f}: #include \"{name}\" names a path; include by file "
                                f"name so the layer's include paths decide")
                continue
            found = next((d for d in [folder] + allowed[folder]
                          if os.path.exists(os.path.join(root, d, name))), None)
            if found is None:
                if name in where:
                    problems.append(
                        f"{f}: #include \"{name}\" reaches up: {name} is in "
                        f"{', '.join(where[name])}, which {folder} may not use "
                        f"(it may use {', '.join(allowed[folder])})")
                continue             # a system header spelled with quotes
            target = module_of(os.path.join(found, name))
            if target != module_of(f):
                edges.setdefault(module_of(f), set()).add(target)

    for circle in circles(edges):
        problems.append("modules include each other in a circle: " + " -> ".join(circle + circle[:1]))

    problems += check_docs(root, lines)
    return problems


def circles(edges):
    """The strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def check_docs(root, lines):
    path = os.path.join(root, "docs", "architecture.md")
    if not os.path.exists(path):
        return []
    with open(path, encoding="utf-8") as fh:
        doc = " ".join(fh.read().split())
    problems = []
    for program, layers in lines.items():
        want = f"{program}: " + " → ".join(layers)
        if want not in doc:
            problems.append(f"docs/architecture.md does not show the {program} layers "
                            f"as the Makefile has them: \"{want}\"")
    return problems


def self_test():
    with tempfile.TemporaryDirectory() as root:
        def put(path, text):
            os.makedirs(os.path.join(root, os.path.dirname(path)), exist_ok=True)
            with open(os.path.join(root, path), "w") as fh:
                fh.write(text)
        put("common/base.h", "")
        put("gateway/low/a.h", '#include "base.h"\n#include "b.h"\n')
        put("gateway/low/b.c", '#include "a.h"\n')
        put("gateway/low/b.h", "")
        put("gateway/high/c.h", "")
        put("gateway/low/up.c", '#include "c.h"\n')
        lines = {"gateway": ["common", "gateway/low", "gateway/high"], "worker": ["common"]}
        found = check(root, lines, {})
    up = [p for p in found if "reaches up" in p and "up.c" in p]
    circle = [p for p in found if "circle" in p and "gateway/low/a" in p and "gateway/low/b" in p]
    if len(up) != 1 or len(circle) != 1 or len(found) != 2:
        print("check_layers: self-test failed; reported:\n  " + "\n  ".join(found))
        return 1
    return 0


def main(argv):
    a = parse_args(argv)
    if a.self_test:
        return self_test()
    tools = {}
    for t in a.tool:
        folder, _, base = t.partition("=")
        if not folder or not base:
            print(f"check_layers: --tool takes FOLDER=LAYER, not '{t}'", file=sys.stderr)
            return 2
        tools[folder] = base
    lines = {"gateway": a.gateway.split(), "worker": a.worker.split()}
    if a.client:
        lines["client"] = a.client.split()
    problems = check(a.root, lines, tools)
    for p in problems:
        print(p)
    if problems:
        print(f"layers: {len(problems)} problem(s)")
        return 1
    if self_test() != 0:
        return 1
    print("layers: every #include goes down a layer, no circles")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
