"""The layout's promises, checked: small modules and functions, faces without SQL, a cache
library that imports no service (README, "Layout")."""

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "orderflow"
MAX_MODULE_LINES = 300
MAX_FUNCTION_LINES = 50


def modules() -> list[Path]:
    return [p for p in sorted(SRC.rglob("*.py")) if "versions" not in p.parts]


def imports_of(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


def test_no_module_is_over_300_lines() -> None:
    long = {
        str(p.relative_to(SRC)): n
        for p in modules()
        if (n := len(p.read_text().splitlines())) > MAX_MODULE_LINES
    }
    assert long == {}


def test_no_function_is_over_50_lines() -> None:
    long = {}
    for path in modules():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                assert node.end_lineno is not None
                if (n := node.end_lineno - node.lineno + 1) > MAX_FUNCTION_LINES:
                    long[f"{path.relative_to(SRC)}:{node.name}"] = n
    assert long == {}


@pytest.mark.parametrize(
    "face",
    sorted(p.name for p in (SRC / "apps").iterdir() if p.is_dir() and not p.name.startswith("_")),
)
def test_faces_hold_no_sql(face: str) -> None:
    """Routers and pages call domain services; SQL lives in the domains' repositories."""
    offenders = {
        str(p.relative_to(SRC)): sorted(
            m
            for m in imports_of(p)
            if m.startswith(("sqlalchemy", "asyncpg")) or m.endswith(".repository")
        )
        for p in (SRC / "apps" / face).rglob("*.py")
    }
    assert {p: m for p, m in offenders.items() if m} == {}


def test_the_cache_library_imports_no_service() -> None:
    foreign = {
        str(p.relative_to(SRC)): sorted(
            m
            for m in imports_of(p)
            if m.startswith("orderflow.") and not m.startswith("orderflow.cache")
        )
        for p in (SRC / "cache").rglob("*.py")
    }
    assert {p: m for p, m in foreign.items() if m} == {}


def test_domains_do_not_import_faces_or_each_other() -> None:
    """sales (ShopDB) and production (MES db) meet only in the relay, through their ingest."""
    crossings = {}
    for domain, other in (("sales", "production"), ("production", "sales")):
        for path in (SRC / domain).rglob("*.py"):
            bad = sorted(
                m
                for m in imports_of(path)
                if m.startswith((f"orderflow.{other}", "orderflow.apps", "orderflow.relay"))
            )
            if bad:
                crossings[str(path.relative_to(SRC))] = bad
    assert crossings == {}


def test_the_service_cache_serves_every_domain_and_imports_none() -> None:
    """`service_cache` sits between the cache library and the domains: it knows neither a
    domain, nor a face, nor the relay."""
    foreign = {
        str(p.relative_to(SRC)): sorted(
            m
            for m in imports_of(p)
            if m.startswith(
                ("orderflow.sales", "orderflow.production", "orderflow.apps", "orderflow.relay")
            )
        )
        for p in (SRC / "service_cache").rglob("*.py")
    }
    assert {p: m for p, m in foreign.items() if m} == {}
