"""The layout's rules (docs/architecture.md): one direction of imports, no cycle in kedacore.

    pages → console → kedacore        gateway → kedacore's protocol primitives
                    ↘ gateway (the sandbox only)

Read from the source with ``ast`` (every ``import``, also those inside functions), so a
lazy import cannot hide a cycle or a wrong direction; and checked once for real, in a fresh
interpreter, for what ``import kedacore`` loads.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import REPO_ROOT

PACKAGES = ("kedacore", "console", "gateway")
# What the gateway may use of kedacore: the protocol, nothing of the client or the console's
# ledger (the gateway is the other side of the wire).
GATEWAY_MAY_USE = {
    "kedacore.envelope",
    "kedacore.money",
    "kedacore.phones",
    "kedacore.private",  # files only their owner can read (not protocol, but shared)
    "kedacore.segments",
    "kedacore.senders",  # the sender-id rule: the console's form and the gateway's check
    "kedacore.signing",
    "kedacore.wiretime",
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO_ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def python_files(top: str) -> Iterator[Path]:
    root = REPO_ROOT / top
    if root.is_file():
        yield root
        return
    yield from sorted(p for p in root.rglob("*.py") if "__pycache__" not in p.parts)


PROJECT_MODULES = {module_name(p) for pkg in PACKAGES for p in python_files(pkg)}


def imports_of(path: Path) -> set[str]:
    """Every module ``path`` imports, by absolute name.

    ``from X import y`` gives ``X.y`` when that is a module of the project (``from kedacore
    import money``), else ``X``: a package's ``__init__`` is not a dependency of its own
    submodules just because Python runs it first.
    """
    module = module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module or ""
            names = {f"{prefix}.{alias.name}" for alias in node.names}
            submodules = names & PROJECT_MODULES
            found |= submodules
            if submodules != names:
                found.add(prefix)
    return found


def graph(top: str) -> dict[str, set[str]]:
    """Module → the modules of the project it imports (only names that are real modules)."""
    files = {module_name(p): p for pkg in PACKAGES for p in python_files(pkg)}
    return {
        module_name(p): {name for name in imports_of(p) if name in files} for p in python_files(top)
    }


def first_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """A cycle as a list of modules (first == last), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[node] = 2
        return None

    for start in sorted(edges):
        if start not in state and (found := visit(start)):
            return found
    return None


def test_no_import_cycle_inside_kedacore() -> None:
    edges = {
        m: {n for n in targets if n.startswith("kedacore")}
        for m, targets in graph("kedacore").items()
    }
    assert first_cycle(edges) is None, " → ".join(first_cycle(edges) or [])


def test_the_cycle_finder_finds_a_cycle() -> None:
    """The check above can fail: a three-module loop and a self-import are found."""
    assert first_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert first_cycle({"a": {"a"}}) == ["a", "a"]
    assert first_cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None


def test_no_import_cycle_inside_console_or_gateway() -> None:
    for top in ("console", "gateway"):
        edges = {m: {n for n in t if n.startswith(top)} for m, t in graph(top).items()}
        assert first_cycle(edges) is None, " → ".join(first_cycle(edges) or [])


def outside_imports(top: str) -> dict[str, set[str]]:
    """Module → every import (project or not) of the files under ``top``."""
    return {module_name(p): imports_of(p) for p in python_files(top)}


def roots(names: set[str]) -> set[str]:
    return {name.split(".")[0] for name in names}


def test_kedacore_imports_neither_streamlit_nor_console_nor_gateway() -> None:
    wrong = {
        module: sorted(roots(names) & {"streamlit", "console", "gateway", "pages", "app"})
        for module, names in outside_imports("kedacore").items()
    }
    assert {m: w for m, w in wrong.items() if w} == {}


def test_gateway_uses_only_the_protocol_primitives_of_kedacore() -> None:
    wrong = {}
    for module, names in outside_imports("gateway").items():
        bad = {n for n in names if n.split(".")[0] in {"streamlit", "console", "pages", "app"}}
        bad |= {
            n
            for n in names
            if n.startswith("kedacore")
            and n != "kedacore"
            and not any(n == ok or n.startswith(ok + ".") for ok in GATEWAY_MAY_USE)
            and f"kedacore.{n.rsplit('.', 1)[-1]}"
            not in GATEWAY_MAY_USE  # from kedacore import money
        }
        if bad:
            wrong[module] = sorted(bad)
    assert wrong == {}


def test_console_reaches_the_gateway_only_from_its_runtime() -> None:
    """The sandbox is started in one place; pages never import the gateway or each other."""
    users = {
        module for module, names in outside_imports("console").items() if "gateway" in roots(names)
    }
    assert users <= {"console.runtime"}
    for page in python_files("pages"):
        names = roots(imports_of(page))
        assert not names & {"gateway", "pages"}, page.name


def test_pages_are_thin_scripts() -> None:
    """Layout and calls: no page is longer than 250 lines; helpers live in console/."""
    pages = list(python_files("pages"))
    assert pages, "no page scripts found"
    for page in pages:
        assert not page.name.startswith("_"), f"{page.name}: a helper belongs in console/"
        lines = len(page.read_text().splitlines())
        assert lines <= 250, f"{page.name} has {lines} lines"


SNIPPET = """
import json, sys
import kedacore
banned = {'streamlit', 'gateway', 'console', 'pages'}
print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in banned)))
"""


@pytest.mark.parametrize(
    "statement",
    [
        "import kedacore",
        # every module of the library, as a program that uses all of it would
        "import pkgutil, kedacore\n"
        "for m in pkgutil.walk_packages(kedacore.__path__, 'kedacore.'):\n"
        "    if not m.name.endswith('__main__'): __import__(m.name)",
    ],
)
def test_importing_kedacore_loads_no_streamlit_and_no_gateway(statement: str) -> None:
    code = SNIPPET.replace("import kedacore\n", statement + "\n", 1)
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    )
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []
