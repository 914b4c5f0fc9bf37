#!/usr/bin/env python3
"""Module cycles inside each crate (issue 12 item 2): an edge a -> b for
every `crate::b…` path written in module a (a `use` line, a grouped
`use crate::{b::X, …}` or an inline path), between a crate's top-level
modules (`src/a.rs`, `src/a/…`); test code (`#[cfg(test)] mod …` to the end
of the file, `tests.rs`, `*_tests.rs`, `tests/` modules) and comments are
left out. Prints every strongly connected component of more than one
module with the file:line of each edge in it; exits 1 when there is one.

    python3 .ci/module-cycles.py [workspace-root]
"""
import collections
import os
import re
import sys

root = sys.argv[1] if len(sys.argv) > 1 else "."
crate_dirs = [root] + sorted(
    os.path.join(root, "crates", c) for c in os.listdir(os.path.join(root, "crates"))
)


def without_tests(text):
    m = re.search(r"#\[cfg\(test\)\]\s*\n\s*(pub(\(\w+\))?\s+)?mod\s+\w+\s*\{", text)
    return text[: m.start()] if m else text


def top_module(src, path):
    parts = os.path.relpath(path, src)[:-3].split(os.sep)
    if parts[0] in ("lib", "main", "bin"):
        return None
    if any(p == "tests" or p.endswith("_tests") for p in parts):
        return None
    return parts[0]


def edges_of(src):
    edges = collections.defaultdict(set)
    for dirpath, _, files in os.walk(src):
        for name in files:
            if not name.endswith(".rs"):
                continue
            path = os.path.join(dirpath, name)
            me = top_module(src, path)
            if me is None:
                continue
            text = without_tests(open(path, encoding="utf-8").read())
            where = os.path.relpath(path, root)
            for m in re.finditer(r"\bcrate::\{(.*?)\};", text, re.S):
                line = text.count("\n", 0, m.start()) + 1
                depth, head, heads = 0, "", []
                for ch in m.group(1):
                    if ch == "{":
                        depth += 1
                    elif ch == "}":
                        depth -= 1
                    elif ch == "," and depth == 0:
                        heads.append(head)
                        head = ""
                        continue
                    head += ch
                heads.append(head)
                for h in heads:
                    t = re.match(r"\s*(\w+)", h)
                    if t and t.group(1) not in (me, "self"):
                        edges[(me, t.group(1))].add(f"{where}:{line}")
            for number, line in enumerate(text.split("\n"), 1):
                if line.strip().startswith("//"):
                    continue
                for m in re.finditer(r"\bcrate::(\w+)", line):
                    if m.group(1) != me:
                        edges[(me, m.group(1))].add(f"{where}:{number}")
    return edges


def cycles(edges):
    graph = collections.defaultdict(set)
    for a, b in edges:
        graph[a].add(b)
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(set(graph) | {b for _, b in edges}):
        if v not in index:
            visit(v)
    return found


count = 0
for crate in crate_dirs:
    src = os.path.join(crate, "src")
    if not os.path.isdir(src):
        continue
    edges = edges_of(src)
    for component in cycles(edges):
        count += 1
        name = os.path.basename(os.path.abspath(crate))
        print(f"{name}: cycle among {', '.join(component)}")
        for (a, b), places in sorted(edges.items()):
            if a in component and b in component:
                shown = sorted(places)
                more = f" (+{len(shown) - 3} more)" if len(shown) > 3 else ""
                print(f"    {a} -> {b}: {', '.join(shown[:3])}{more}")
sys.exit(1 if count else 0)
