"""The house's rules, read from the source: stage packages without import circles, small
modules and functions, one reader of the environment, no SQL in assets, no Dagster in lib."""

from __future__ import annotations

import ast
import re
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "personahub_assets"
MAX_MODULE_LINES = 500
MAX_FUNCTION_LINES = 80
#: The one place besides settings.py that touches the environment: a fresh worker process
#: sets polars' thread count before polars is imported.
ENV_EXCEPTIONS = {"lib/ingest/cleaning.py"}


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """Modules of the package that ``name`` imports, at any level of its code."""
    found = set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[:len(package.split(".")) - node.level + 1]
                                + ([base] if base else []))
            targets = [base] + [f"{base}.{a.name}" for a in node.names]
        else:
            continue
        found |= {t for t in targets if t in known and t != name}
    return found


def test_no_module_imports_a_module_that_imports_it():
    modules = _modules()
    graph = {name: _imports(name, path, set(modules)) for name, path in modules.items()}
    # a package's __init__ importing nothing is the norm here: an edge into a package is an
    # edge into its __init__ only
    circles = []
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                circles.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name)
    assert circles == []


def test_lib_is_plain_python():
    offenders = [str(p.relative_to(PACKAGE)) for p in (PACKAGE / "lib").rglob("*.py")
                 if re.search(r"^\s*(from|import) dagster", p.read_text(), re.M)]
    assert offenders == []


def test_modules_and_functions_stay_small():
    big_modules, long_functions = [], []
    for path in sorted(PACKAGE.rglob("*.py")):
        text = path.read_text()
        rel = str(path.relative_to(PACKAGE))
        if len(text.splitlines()) > MAX_MODULE_LINES:
            big_modules.append(rel)
        for node in ast.walk(ast.parse(text)):
            if (isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
                    and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES):
                long_functions.append(f"{rel}:{node.name}")
    assert (big_modules, long_functions) == ([], [])


def test_only_settings_reads_the_environment():
    offenders = [str(p.relative_to(PACKAGE)) for p in sorted(PACKAGE.rglob("*.py"))
                 if re.search(r"os\.environ|getenv\(", p.read_text())]
    assert sorted(set(offenders) - ENV_EXCEPTIONS) == ["settings.py"]


def test_assets_hold_no_sql():
    pattern = re.compile(r"[\"'](SELECT|INSERT|DELETE|UPDATE|CREATE|WITH) |\bFROM [a-z_]+ WHERE")
    offenders = [f"{p.name}:{n}" for p in sorted((PACKAGE / "assets").glob("*.py"))
                 for n, line in enumerate(p.read_text().splitlines(), 1) if pattern.search(line)]
    assert offenders == []


def test_private_names_stay_in_their_module():
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
                    "personahub_assets")):
                offenders += [f"{path.relative_to(PACKAGE)}: {node.module}.{a.name}"
                              for a in node.names if a.name.startswith("_")]
    assert offenders == []
