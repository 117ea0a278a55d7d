"""The layout rules (README "How it is built"), held by reading the source (ast) so they survive
every change: actors hold addresses and never import each other, store/ and messages/ import nothing above
them, bot/ never touches actors/ or asyncpg, only store/ talks SQL, only kie/ (and the fake KIE)
knows KIE's wire format, no import cycles, and nothing loose at the root."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest

from tests.procs import ROOT

pytestmark = pytest.mark.timeout(60)

ROOT_MODULES = {"run", "config", "supervisor"}  # the design card's top level; everything else lives in a folder
NOT_PROGRAM = {"tests", "bench"}
# what every actor may import: the actor, its address, backoff, and roles (with the leader's chore)
ACTOR_KIT = {"actors.actor", "actors.mailbox", "actors.backoff", "actors.roles"}
SQL = re.compile(r"\b(SELECT\s+[\w*(]|INSERT\s+INTO|UPDATE\s+\w+\s+SET|DELETE\s+FROM|CREATE\s+(TABLE|INDEX)|"
                 r"ALTER\s+TABLE|DROP\s+TABLE|SHOW\s+\w+|pg_\w+\()")
KIE_WIRE = re.compile(r"/api/v1/|recordInfo|createTask|callBackUrl")


def program_packages() -> list[str]:
    """Top-level folders that are Python packages and ship (tests and benchmarks do not)."""
    return sorted(p.parent.name for p in ROOT.glob("*/__init__.py") if p.parent.name not in NOT_PROGRAM)


def program_files() -> list[Path]:
    files = [ROOT / f"{name}.py" for name in sorted(ROOT_MODULES)]
    for package in program_packages():
        files += sorted((ROOT / package).rglob("*.py"))
    return files


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


@cache
def modules() -> dict[str, ast.Module]:
    return {module_name(p): ast.parse(p.read_text(), str(p)) for p in program_files()}


def imports_of(name: str) -> Iterator[tuple[str, int]]:
    """Every module `name` imports (at any depth, inside functions too), as the most precise
    module name that exists: `from store import inbox` is store.inbox, `from store.fence import
    Fenced` is store.fence; a third-party import is its top-level name."""
    known = modules()
    package = name if (ROOT / name.replace(".", "/") / "__init__.py").exists() else name.rpartition(".")[0]
    for node in ast.walk(known[name]):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield _resolve(alias.name, known), node.lineno
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                full = f"{base}.{alias.name}"
                yield (full if full in known else _resolve(base, known)), node.lineno


def _resolve(dotted: str, known: dict[str, ast.Module]) -> str:
    parts = dotted.split(".")
    for end in range(len(parts), 0, -1):
        if ".".join(parts[:end]) in known:
            return ".".join(parts[:end])
    return parts[0]


def under(module: str, *prefixes: str) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def violations(rule: str, allowed: set[str] | None = None, forbidden: set[str] | None = None,
               of: tuple[str, ...] = ()) -> list[str]:
    found = []
    for name in modules():
        if not under(name, *of):
            continue
        for target, line in imports_of(name):
            own = target in modules()
            if allowed is not None and own and not under(target, *allowed):
                found.append(f"{name}:{line} imports {target} ({rule})")
            if forbidden is not None and under(target, *forbidden):
                found.append(f"{name}:{line} imports {target} ({rule})")
    return found


def test_the_root_holds_only_the_design_cards_modules() -> None:
    loose = {p.stem for p in ROOT.glob("*.py")}
    assert loose == ROOT_MODULES, f"give these a folder that says what they are for: {sorted(loose - ROOT_MODULES)}"


def test_no_actor_imports_another_actor() -> None:
    actor_modules = [m for m in modules() if m.startswith("actors.") and m not in ACTOR_KIT]
    assert actor_modules, "no actor modules found: the rule would hold vacuously"
    found = []
    for name in actor_modules:
        for target, line in imports_of(name):
            if target.startswith("actors.") and target not in ACTOR_KIT and target != name:
                found.append(f"{name}:{line} imports {target}: hold its mailbox instead")
    assert not found, "\n".join(found)


def test_the_actor_kit_imports_no_actor() -> None:
    found = violations("the kit is below every actor", of=tuple(ACTOR_KIT),
                       forbidden={m for m in modules() if m.startswith("actors.")} - ACTOR_KIT)
    assert not found, "\n".join(found)


def test_store_imports_only_store_and_logs_and_no_telegram_library() -> None:
    found = violations("store/ is the bottom layer", of=("store",), allowed={"store", "telemetry.logs"},
                       forbidden={"aiogram", "aiohttp"})
    assert not found, "\n".join(found)


def test_messages_import_nothing_of_the_program() -> None:
    found = violations("messages/ are plain data", of=("messages",), allowed={"messages"})
    assert not found, "\n".join(found)


def test_bot_never_touches_actors_or_asyncpg() -> None:
    found = violations("bot/ is the conversation only", of=("bot",),
                       forbidden={"actors", "asyncpg", "supervisor", "commands"})
    assert not found, "\n".join(found)


def test_telegram_library_stays_on_the_telegram_side() -> None:
    """aiogram is the conversation's and the ingest path's; the foundation never needs it."""
    found = violations("aiogram belongs to bot/ and ingest/", of=("store", "messages", "telemetry", "supervisor",
                                                                  "config", "kie", "catalog"),
                       forbidden={"aiogram"})
    assert not found, "\n".join(found)


def test_no_import_cycles() -> None:
    graph = {name: {t for t, _ in imports_of(name) if t in modules() and t != name} for name in modules()}
    cycles = [sorted(c) for c in _strongly_connected(graph) if len(c) > 1]
    assert not cycles, f"import cycles: {cycles}"


def _strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    result: list[list[str]] = []
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                result.append(component)
    return result


def _strings(tree: ast.Module) -> Iterator[tuple[str, int]]:
    """String literals that are values (docstrings and other bare strings are prose)."""
    prose = {id(n.value) for n in ast.walk(tree) if isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in prose:
            yield node.value, node.lineno


def test_only_store_talks_sql() -> None:
    found = [f"{name}:{line}: {text.strip()[:60]!r}" for name, tree in modules().items() if not under(name, "store")
             for text, line in _strings(tree) if SQL.search(text)]
    assert not found, "SQL outside store/:\n" + "\n".join(found)


def test_only_kie_knows_kies_wire_format() -> None:
    found = [f"{name}:{line}: {text.strip()[:60]!r}" for name, tree in modules().items()
             if not under(name, "kie", "fakes") for text, line in _strings(tree) if KIE_WIRE.search(text)]
    assert not found, "KIE's wire format outside kie/:\n" + "\n".join(found)


@pytest.mark.parametrize(("source", "expected"), [
    ("SELECT 1 FROM leader WHERE epoch = $1", True),
    ("SHOW server_version", True),
    ("SELECT pg_try_advisory_lock($1, $2)", True),
    ("Select a model", False),
    ("DELETE", False),
])
def test_the_sql_rule_sees_sql_and_not_prose(source: str, expected: bool) -> None:
    assert bool(SQL.search(source)) is expected


def test_the_import_reader_resolves_what_a_rule_needs() -> None:
    """The rules above are only as good as this: a cycle and a cross-actor import must be seen."""
    assert {"actors.dispatcher", "actors.lock_keeper", "store.database"} <= {t for t, _ in imports_of("commands.tree")}
    assert {"aiogram", "bot.routers", "bot.middlewares"} <= {t for t, _ in imports_of("bot.conversation")}
    assert "bot.routers.menu" in {t for t, _ in imports_of("bot.routers")}
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert sorted(map(sorted, _strongly_connected(graph))) == [["a", "b", "c"], ["d"]]
