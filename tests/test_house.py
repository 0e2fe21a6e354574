"""House rules a reader relies on: one name, one function, across the interfaces and the domain's writes and reads."""

import ast
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
APPS = ("moderation", "detection", "webhooks", "audit", "api", "common", "provenance")
LAYERS = ("views", "services", "selectors", "tasks", "analysis")


def public_names(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    return [
        node.name
        for node in tree.body
        if isinstance(node, ast.FunctionDef | ast.ClassDef) and not node.name.startswith("_")
    ]


def layer_modules() -> list[Path]:
    return [
        path
        for app in APPS
        for path in sorted((ROOT / app).rglob("*.py"))
        if "migrations" not in path.parts and any(layer in path.relative_to(ROOT).as_posix() for layer in LAYERS)
    ]


def test_no_two_views_services_selectors_or_tasks_share_a_name():
    where = defaultdict(list)
    for path in layer_modules():
        for name in public_names(path):
            where[name].append(path.relative_to(ROOT).as_posix())
    assert {name: paths for name, paths in where.items() if len(paths) > 1} == {}


def test_no_function_in_detection_is_longer_than_sixty_lines():
    longer = {}
    for path in sorted((ROOT / "detection").rglob("*.py")):
        if "migrations" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = node.end_lineno - node.lineno + 1
                if lines > 60:
                    longer[f"{path.relative_to(ROOT).as_posix()}:{node.name}"] = lines
    assert longer == {}
