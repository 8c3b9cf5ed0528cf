"""Layering: the domain packages stay pure.

`sync/ccb` and `sync/mdm` may not import database, broker or HTTP libraries or the adapter
packages, may not read the clock, and may not print. This reads the source with `ast`, so a
violation anywhere in those folders fails here, not in review.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SYNC = Path(__file__).parents[3] / "sync"
DOMAIN_PACKAGES = ("ccb", "mdm")
FORBIDDEN_IMPORTS = (
    "sqlalchemy", "psycopg", "sqlite3", "kafka", "aiokafka", "faust", "mode", "httpx",
    "requests", "socket", "subprocess", "rich", "sync.storage", "sync.transport", "sync.cli",
    "sync.devtools",
)
FORBIDDEN_CALLS = {
    ("datetime", "now"), ("datetime", "utcnow"), ("datetime", "today"), ("date", "today"),
    ("time", "time"), ("time", "monotonic"), ("time", "sleep"),
}


def domain_modules() -> list[Path]:
    return sorted(path for package in DOMAIN_PACKAGES for path in (SYNC / package).rglob("*.py"))


def violations(path: Path) -> list[str]:
    tree = ast.parse(path.read_text("utf-8"), filename=str(path))
    found: list[str] = []
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        for name in names:
            if any(name == bad or name.startswith(bad + ".") for bad in FORBIDDEN_IMPORTS):
                found.append(f"line {node.lineno}: imports {name}")
        if isinstance(node, ast.Call):
            function = node.func
            if isinstance(function, ast.Name) and function.id in {"print", "open", "input"}:
                found.append(f"line {node.lineno}: calls {function.id}()")
            if isinstance(function, ast.Attribute):
                owner = function.value
                owner_name = owner.attr if isinstance(owner, ast.Attribute) else (
                    owner.id if isinstance(owner, ast.Name) else "")
                if (owner_name, function.attr) in FORBIDDEN_CALLS:
                    found.append(f"line {node.lineno}: reads the clock ({owner_name}."
                                 f"{function.attr})")
    return sorted(found, key=lambda line: (int(line.split()[1].rstrip(':')), line))


def test_domain_packages_exist() -> None:
    assert len(domain_modules()) >= 10


@pytest.mark.parametrize("path", domain_modules(), ids=lambda path: str(path.relative_to(SYNC)))
def test_domain_module_is_pure(path: Path) -> None:
    assert violations(path) == []


def test_checker_catches_what_it_should(tmp_path: Path) -> None:
    sample = tmp_path / "bad.py"
    sample.write_text(
        "import datetime as dt\nfrom sqlalchemy import text\nimport kafka.admin\n"
        "def f():\n    print(dt.datetime.now())\n    return dt.date.today()\n", "utf-8")
    assert violations(sample) == [
        "line 2: imports sqlalchemy",
        "line 3: imports kafka.admin",
        "line 5: calls print()",
        "line 5: reads the clock (datetime.now)",
        "line 6: reads the clock (date.today)",
    ]
