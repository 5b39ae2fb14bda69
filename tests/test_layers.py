"""The tree keeps its shape: SQL lives in repositories, imports point one way (docs/decisions/0004).

Layers, lowest first:
- base: ``hutch.core``, ``hutch.db``, ``hutch.settings`` — import no domain (``db.models_registry`` aside,
  which gathers every domain's tables for Alembic);
- domains: every other package; their own modules (models, repository, service, gateways, …) form a graph
  without cycles and never import the edge. Imports of another domain's ``models`` are free (the model
  registry's exception): tables may be read across domains, by repositories;
- entry points, a domain's adapters to the outside: ``router.py``, ``*_router.py``, ``*_pages.py``,
  ``dependencies.py``, ``jobs.py``, ``server.py``, ``worker.py``, ``__main__.py`` — they may use any domain
  and the edge;
- the edge: ``hutch.http`` (authentication, authz, dependencies, middleware), ``hutch.web``,
  ``hutch.resources``, ``hutch.worker``, ``hutch.app``, ``hutch.cli`` and the other top-level modules.

Only imports that run count: ``if TYPE_CHECKING:`` blocks name types, not dependencies.
"""

from __future__ import annotations

import ast
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from itertools import pairwise
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "hutch"
BASE = {"core", "db", "settings", "hutch"}  # "hutch": the package itself, for its version
EDGE = {
    "http",
    "web",
    "resources",
    "worker",
    "worker_process",
    "app",
    "cli",
    "bootstrap",
    "health",
    "__main__",
}
ENTRY_NAMES = {"router.py", "dependencies.py", "jobs.py", "server.py", "worker.py", "__main__.py"}
ENTRY_SUFFIXES = ("_router.py", "_pages.py")
QUERY_NAMES = {"repository.py", "queries.py"}
QUERY_SUFFIXES = ("_repository.py", "_queries.py")
SQL_CALLS = {"select", "insert", "update", "delete", "text"}
SQL_SHARE_TARGET = 0.9
# Built one way: ``X.of(uow, resources)`` (or a route's ``XServiceDep``); gateways once, on the resources.
# The composition roots build from settings: the process's resources, and the CLI's one-off commands.
COMPOSITION_ROOTS = {"resources.py", "cli.py"}
BUILT_ONE_WAY = {
    "AgentService": "agents/service.py",
    "BillingService": "billing/service.py",
    "KnowledgeService": "knowledge/service.py",
    "Subscriptions": "billing/subscriptions.py",
    "TelegramChannels": "channels/telegram/service.py",
    "RuntimeService": "runtimes/service.py",
    "TelegramGateway": "resources.py",
    "WhatsAppGateway": "resources.py",
    "LiveKitRooms": "resources.py",
}


@dataclass(frozen=True)
class Module:
    path: Path

    @property
    def relative(self) -> str:
        return self.path.relative_to(SRC).as_posix()

    @property
    def unit(self) -> str:
        """The layer or domain: the first package under ``hutch`` (a top-level module names itself)."""
        parts = self.path.relative_to(SRC).with_suffix("").parts
        return parts[0] if parts[0] != "__init__" else "hutch"

    @property
    def is_entry_point(self) -> bool:
        return self.path.name in ENTRY_NAMES or self.path.name.endswith(ENTRY_SUFFIXES)

    @property
    def holds_queries(self) -> bool:
        return (
            self.unit == "db"
            or self.path.name in QUERY_NAMES
            or self.path.name.endswith(QUERY_SUFFIXES)
            or self.path.name == "models.py"  # column defaults (``text("now()")``), not statements
        )


def unit_of(dotted: str) -> str:
    parts = dotted.split(".")
    return parts[1] if len(parts) > 1 else "hutch"


@cache
def modules() -> tuple[Module, ...]:
    paths = sorted(SRC.rglob("*.py"))
    return tuple(Module(path) for path in paths if "alembic" not in path.parts and path.stat().st_size)


@cache
def tree_of(module: Module) -> ast.Module:
    return ast.parse(module.path.read_text(), filename=str(module.path))


def runtime_nodes(tree: ast.Module) -> Iterator[ast.AST]:
    """Every node outside ``if TYPE_CHECKING:`` blocks."""
    type_only: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            type_only.update(id(child) for stmt in node.body for child in ast.walk(stmt))
    return (node for node in ast.walk(tree) if id(node) not in type_only)


def imports(module: Module) -> set[str]:
    found: set[str] = set()
    for node in runtime_nodes(tree_of(module)):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {name for name in found if name == "hutch" or name.startswith("hutch.")}


def sql_statements(module: Module) -> int:
    count = 0
    for node in ast.walk(tree_of(module)):
        if isinstance(node, ast.Call):
            called = node.func
            if (isinstance(called, ast.Name) and called.id in SQL_CALLS) or (
                isinstance(called, ast.Attribute) and called.attr == "execute"
            ):
                count += 1
    return count


def domain_edges(*, entry_points: bool) -> dict[str, dict[str, set[str]]]:
    """Domain → domains its modules import (its entry points' imports too, or not), with the evidence."""
    edges: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for module in modules():
        if module.unit in BASE | EDGE or (module.is_entry_point and not entry_points):
            continue
        for name in imports(module):
            target = unit_of(name)
            if target != module.unit and target not in BASE and not name.endswith(".models"):
                edges[module.unit][target].add(f"{module.relative} imports {name}")
    return edges


def test_the_base_layer_imports_no_domain() -> None:
    upward = [
        f"{module.relative} imports {name}"
        for module in modules()
        if module.unit in BASE and module.relative != "db/models_registry.py"
        for name in imports(module)
        if unit_of(name) not in BASE
    ]
    assert not upward, "\n".join(upward)


def test_domains_do_not_import_the_edge_except_from_their_entry_points() -> None:
    upward = [
        f"{module.relative} imports {name}"
        for module in modules()
        if module.unit not in BASE | EDGE and not module.is_entry_point
        for name in imports(module)
        if unit_of(name) in EDGE
    ]
    assert not upward, "\n".join(upward)


def test_no_domain_imports_the_dashboard() -> None:
    """The dashboard (``hutch.web``) is built on the domains; the widget and the APIs never need it."""
    found = [
        f"{module.relative} imports {name}"
        for module in modules()
        if module.unit not in EDGE and module.relative != "db/models_registry.py"
        for name in imports(module)
        if unit_of(name) == "web"
    ]
    assert not found, "\n".join(found)


def test_only_the_app_imports_routers() -> None:
    """A router is a leaf: what a page or another route shares with it lives in the domain's modules."""
    found = [
        f"{module.relative} imports {name}"
        for module in modules()
        if module.relative != "app.py"
        for name in imports(module)
        if name.rsplit(".", 1)[-1] == "router" or name.endswith("_router")
    ]
    assert not found, "\n".join(found)


def test_services_and_gateways_are_built_one_way() -> None:
    found = [
        f"{module.relative}:{node.lineno} builds {node.func.id}"
        for module in modules()
        for node in ast.walk(tree_of(module))
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id in BUILT_ONE_WAY
        and module.relative not in {BUILT_ONE_WAY[node.func.id], *COMPOSITION_ROOTS}
    ]
    assert not found, "\n".join(found)


def cycles_in(edges: dict[str, dict[str, set[str]]]) -> list[str]:
    state: dict[str, str] = {}
    path: list[str] = []
    cycles: list[str] = []

    def visit(domain: str) -> None:
        state[domain] = "open"
        path.append(domain)
        for target in sorted(edges.get(domain, {})):
            if state.get(target) == "open":
                loop = [*path[path.index(target) :], target]
                evidence = [sorted(edges[a][b])[0] for a, b in pairwise(loop)]
                cycles.append(" → ".join(loop) + "\n    " + "\n    ".join(evidence))
            elif target not in state:
                visit(target)
        path.pop()
        state[domain] = "done"

    for domain in sorted(edges):
        if domain not in state:
            visit(domain)
    return cycles


def test_domains_import_each_other_without_cycles() -> None:
    cycles = cycles_in(domain_edges(entry_points=False))
    assert not cycles, "\n".join(cycles)


def test_entry_points_add_no_cycle_between_domains() -> None:
    """A route or a job may use a domain above its own only if that domain never uses its own back."""
    cycles = cycles_in(domain_edges(entry_points=True))
    assert not cycles, "\n".join(cycles)


def test_sql_lives_in_repositories_and_query_modules() -> None:
    counts = Counter({module.relative: sql_statements(module) for module in modules()})
    total = sum(counts.values())
    outside = {path: n for path, n in counts.items() if n and not Module(SRC / path).holds_queries}
    share = 1 - sum(outside.values()) / total
    listing = "\n".join(f"  {n:3d} {path}" for path, n in sorted(outside.items(), key=lambda kv: -kv[1]))
    assert share >= SQL_SHARE_TARGET, (
        f"{share:.0%} of {total} SQL statements are in repositories or query modules (at least "
        f"{SQL_SHARE_TARGET:.0%} must be); outside them:\n{listing}"
    )
