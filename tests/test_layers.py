"""The house rules of the source tree, read from the code itself: data flows one way between the
layers (world → dit / gaussians → samplers → pipelines → apps), no two modules import each other
(directly or round a loop), `pipelines.core` imports no modality, and imports sit at the top of
their module unless they are optional dependencies. Shown failing on a small synthetic tree first."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# rank of each top-level package: a module may import its own package or one of lower rank. The
# world (data, captions, readers) is the floor: the 3D/4D representation renders world objects
LAYERS = {"world": 0, "dit": 1, "gaussians": 1, "samplers": 2, "pipelines": 3, "apps": 4}
# sub-packages that must not import their siblings (the machinery every modality shares)
SHARED = {"pipelines.core": "pipelines"}
# may be absent, so they are imported where they are used
OPTIONAL = {"xformers", "cache_dit", "gsplat", "bpy", "playwright"}  # playwright: the test extra, for apps.screenshot
# command-line entry points (`python -m ...`) that live in a lower package but are the top of the
# stack: they may use any layer (pipelines' atomic writes, batches), and nothing may import them
ENTRY_POINTS = {"gaussians.fit", "gaussians.write_world_clip"}


def module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def scan(root: Path, packages) -> dict[str, Path]:
    """module name → file, for every module of `packages` under `root`."""
    return {module_name(root, f): f for pkg in packages for f in sorted((root / pkg).rglob("*.py"))}


def imports_of(name: str, path: Path, modules: dict[str, Path]) -> list[tuple[str, int, bool]]:
    """(imported module, line, inside a function) for each import of a scanned module. `from a
    import b` counts as importing a.b when that is a module, else a; relative imports resolved."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []

    def visit(node, in_function: bool):
        for child in ast.iter_child_nodes(node):
            nested = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            if isinstance(child, ast.Import):
                found.extend((a.name, child.lineno, in_function) for a in child.names)
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    anchor = package.split(".")[: len(package.split(".")) - child.level + 1]
                    base = ".".join(anchor + ([base] if base else []))
                for a in child.names:
                    target = f"{base}.{a.name}"
                    found.append((target if target in modules else base, child.lineno, in_function))
            visit(child, nested)

    visit(tree, False)
    return found


def check_tree(root: Path, layers: dict[str, int], shared: dict[str, str], optional=frozenset(),
               entry_points=frozenset()) -> list[str]:
    """Every breach of the rules in the tree under `root`, one line each (empty: none)."""
    modules = scan(root, layers)
    problems, graph = [], {m: set() for m in modules}
    for name, path in modules.items():
        here = name.split(".")[0]
        for target, line, in_function in imports_of(name, path, modules):
            top = target.split(".")[0]
            where = f"{path.relative_to(root)}:{line}"
            if in_function and top not in optional:
                problems.append(f"{where}: import of {target} inside a function")
            if top not in layers:
                continue
            if target in entry_points:
                problems.append(f"{where}: imports the entry point {target}")
            if top != here and layers[top] >= layers[here] and name not in entry_points:
                problems.append(f"{where}: {here} (layer {layers[here]}) imports {top} (layer {layers[top]})")
            for sub, parent in shared.items():
                if (name == sub or name.startswith(sub + ".")) and target.startswith(parent + ".") \
                        and not (target == sub or target.startswith(sub + ".")):
                    problems.append(f"{where}: {sub} imports {target}, a modality it must not know")
            if target in graph and target != name:
                graph[name].add(target)
    problems += [f"import cycle: {' -> '.join(c)}" for c in cycles(graph)]
    return problems


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One loop (a → … → a) per strongly connected group of two or more modules (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def connect(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                found.append(loop_in(sorted(group), graph))

    for v in sorted(graph):
        if v not in index:
            connect(v)
    return found


def loop_in(group: list[str], graph) -> list[str]:
    """A path from the group's first module back to itself, staying in the group (breadth first)."""
    start, members = group[0], set(group)
    paths = [[start]]
    while paths:
        path = paths.pop(0)
        for w in sorted(graph[path[-1]] & members):
            if w == start:
                return path + [start]
            if w not in path:
                paths.append(path + [w])
    return group


# ---------------------------------------------------------------- the checker, on a synthetic tree

def write_tree(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)


def test_the_checker_finds_each_kind_of_breach(tmp_path):
    write_tree(tmp_path, {
        "low/__init__.py": "",
        "low/a.py": "from . import b\n",
        "low/b.py": "from .c import thing\n",
        "low/c.py": "from low import a\nthing = 1\n",        # a -> b -> c -> a
        "low/d.py": "import high.x\n",                         # a lower layer importing a higher one
        "high/__init__.py": "",
        "high/x.py": "def f():\n    import low.d\n    import xformers\n",  # inside a function; optional is fine
        "high/core/__init__.py": "",
        "high/core/s.py": "from ..x import f\n",               # shared machinery importing a modality
        "low/run.py": "import high.x\n",                       # an entry point may use any layer …
        "low/e.py": "from . import run\n",                     # … but nothing may import it
    })
    problems = check_tree(tmp_path, {"low": 0, "high": 1}, {"high.core": "high"}, {"xformers"}, {"low.run"})
    text = "\n".join(problems)
    assert "import cycle: low.a -> low.b -> low.c -> low.a" in text
    assert "low/d.py:1: low (layer 0) imports high (layer 1)" in text
    assert "high/x.py:2: import of low.d inside a function" in text and "xformers" not in text
    assert "high/core/s.py:1: high.core imports high.x, a modality it must not know" in text
    assert "import cycle: high.x -> low.d -> high.x" in text  # a function-level import closes a loop too
    assert "low/e.py:1: imports the entry point low.run" in text and "low/run.py" not in text
    assert len(problems) == 6, problems


def test_the_checker_passes_a_clean_tree(tmp_path):
    write_tree(tmp_path, {"low/__init__.py": "from .a import x\n", "low/a.py": "x = 1\n",
                          "high/__init__.py": "", "high/y.py": "from low import x\nfrom . import z\n",
                          "high/z.py": "import os\n"})
    assert check_tree(tmp_path, {"low": 0, "high": 1}, {}) == []


# ---------------------------------------------------------------- the real tree

@pytest.mark.parametrize("package", sorted(LAYERS))
def test_package_exists(package):
    assert (REPO / package / "__init__.py").is_file()


def test_the_source_tree_keeps_its_layers():
    problems = check_tree(REPO, LAYERS, SHARED, OPTIONAL, ENTRY_POINTS)
    assert problems == [], "\n".join(problems)
