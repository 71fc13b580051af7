"""The house's floors hold (HOUSE.md): no module of an app imports an app above it.

Read from the source with ``ast``, without importing anything: every ``import x`` and absolute
``from x import y`` in an app's modules (migrations aside) must name the app itself, one below it,
or no app at all. A lower app that must cause work above it records a fact or calls what the app
above registered with it; it never imports it.
"""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

FLOORS = {
    "core": 1,
    "notifications": 2,
    "escrow": 3,
    "payments": 4,
    "merchants": 5,
    "consumers": 6,
    "refunds": 7,
    "complaints": 8,
    "regulator": 9,
    "demo": 10,
}


def upward_imports() -> list[str]:
    found = []
    for app, floor in FLOORS.items():
        for path in sorted((ROOT / app).rglob("*.py")):
            if "migrations" in path.relative_to(ROOT).parts:
                continue
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
                if isinstance(node, ast.Import):
                    modules = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    modules = [node.module]
                else:
                    continue
                for module in modules:
                    top = module.split(".")[0]
                    if FLOORS.get(top, 0) > floor:
                        found.append(f"{path.relative_to(ROOT)}:{node.lineno} imports {module}")
    return found


def test_no_app_imports_an_app_above_it():
    assert upward_imports() == []


def test_the_check_sees_every_app():
    assert all((ROOT / app / "__init__.py").exists() for app in FLOORS)
