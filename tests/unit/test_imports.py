"""The package's import graph: no cycles, and library code imports damso_ops modules at the top
(a function-level import of one is how a cycle hides). The CLI may import lazily for start-up speed."""

from __future__ import annotations

import ast
from pathlib import Path

import damso_ops

ROOT = Path(damso_ops.__file__).parent


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in ROOT.rglob("*.py")}


def _targets(node: ast.AST) -> list[str]:
    """The damso_ops modules an import statement loads."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names if a.name.startswith("damso_ops")]
    if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("damso_ops") and not node.level:
        found = []
        for alias in node.names:
            sub = f"{node.module}.{alias.name}"
            found.append(sub if sub in MODULES else node.module)
        return found
    return []


def _graph() -> dict[str, set[str]]:
    graph = {}
    for name, path in MODULES.items():
        tree = ast.parse(path.read_text())
        graph[name] = {t for node in ast.walk(tree) for t in _targets(node) if t in MODULES and t != name}
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_no_import_cycle():
    assert _cycle(_graph()) is None, " -> ".join(_cycle(_graph()))


def test_the_cycle_finder_finds_one():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]


def test_library_modules_import_damso_ops_at_the_top():
    lazy = []
    for name, path in MODULES.items():
        if name.startswith("damso_ops.cli"):
            continue
        for fn in ast.walk(ast.parse(path.read_text())):
            if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lazy += [f"{name}.{fn.name}" for node in ast.walk(fn) if _targets(node)]
    assert not lazy, f"function-level imports of damso_ops modules: {lazy}"


def test_every_package_folder_is_a_package():
    for folder in [p for p in ROOT.iterdir() if p.is_dir() and p.name not in ("__pycache__", "_data")]:
        assert (folder / "__init__.py").is_file(), folder


# ---- Terraform in one place (deploy/planning.py) --------------------------------------

TERRAFORM_INTERNALS = {"damso_ops.deploy.stackops", "damso_ops.deploy.terraform", "damso_ops.deploy.workspace"}
# who may import each: the orchestration, and the internals among themselves
MAY_IMPORT = {
    "damso_ops.deploy.stackops": {"damso_ops.deploy.planning"},
    "damso_ops.deploy.workspace": {"damso_ops.deploy.planning", "damso_ops.deploy.stackops"},
    "damso_ops.deploy.terraform": {"damso_ops.deploy.planning", "damso_ops.deploy.stackops", "damso_ops.deploy.workspace"},
}


def test_only_the_orchestration_reaches_terraform():
    """deploy, plan, destroy, livekit up/down and dev gpu start plan and apply only through
    deploy/planning.py: no other module imports stackops, workspace or terraform."""
    graph = _graph()
    found = {f"{importer} imports {module}" for importer, imported in graph.items() for module in imported & TERRAFORM_INTERNALS
             if importer not in MAY_IMPORT[module]}  # fmt: skip
    assert not found, sorted(found)


def test_the_commands_that_change_stacks_go_through_the_orchestration():
    graph = _graph()

    def reaches(start: str, goal: str, seen: set[str] | None = None) -> bool:
        seen = seen if seen is not None else set()
        if start == goal:
            return True
        seen.add(start)
        return any(reaches(n, goal, seen) for n in graph[start] - seen)

    for module in ("damso_ops.deploy.pipeline", "damso_ops.deploy.destroy", "damso_ops.hosts.devbox",
                   "damso_ops.operate.rollback"):  # fmt: skip
        assert "damso_ops.deploy.planning" in graph[module], module
    for cli in ("damso_ops.cli.deploy", "damso_ops.cli.livekit", "damso_ops.cli.dev"):
        assert reaches(cli, "damso_ops.deploy.planning"), cli


def _calls(path: Path, owner: str, names: set[str]) -> list[str]:
    """`owner.name(...)` calls in a module, e.g. lock.held."""
    return [f"{owner}.{node.func.attr}" for node in ast.walk(ast.parse(path.read_text()))
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in names
            and isinstance(node.func.value, ast.Name) and node.func.value.id == owner]  # fmt: skip


def test_the_environment_lock_is_taken_in_one_place():
    takers = {name for name, path in MODULES.items() if _calls(path, "lock", {"held", "acquire"})}
    assert takers == {"damso_ops.deploy.planning"}
    cli_lock = {name for name, path in MODULES.items() if name.startswith("damso_ops.cli") and _calls(path, "planning", {"locked"})}
    assert not cli_lock, f"CLI modules take the lock themselves: {sorted(cli_lock)}"
