"""``velro/`` is the ground floor: settings, URL roots, the RLS glue, the API base classes,
the database backend. It imports no app built on top of it, so every app can lean on it
without a cycle and the house can lose an upper floor without the ground floor noticing.

Naming an app by string is not an import and passes: ``INSTALLED_APPS``, the
``include("health.urls")`` of the URL roots, dotted paths in the DRF settings.
"""

import ast
from pathlib import Path

import velro

# The apps above velro/: the domain and the tenants that use several domain apps at once.
UPPER_APPS = {
    "accounts",
    "projects",
    "generations",
    "stylestacks",
    "credits",
    "billing",
    "bench",
    "demo",
    "health",
    "supabase_import",
}

VELRO = Path(velro.__file__).resolve().parent


def imported_modules(tree: ast.AST):
    """(line, module) for every import statement, at any depth (functions included).
    Relative imports inside velro/ stay inside velro/ and are skipped."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.lineno, node.module


def upper_floor_imports():
    found = []
    for path in sorted(VELRO.rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        for line, module in imported_modules(tree):
            if module.split(".")[0] in UPPER_APPS:
                found.append(f"velro/{path.relative_to(VELRO)}:{line} imports {module}")
    return found


def test_the_walk_reads_the_ground_floor():
    files = {path.relative_to(VELRO).as_posix() for path in VELRO.rglob("*.py")}
    assert {"settings.py", "urls.py", "api_urls.py", "rls.py", "api.py"} <= files


def test_the_check_sees_imports_inside_functions():
    source = "def f():\n    from accounts.models import User\n    import health.services\n"
    assert [module for _, module in imported_modules(ast.parse(source))] == ["accounts.models", "health.services"]


def test_velro_imports_no_app_above_it():
    found = upper_floor_imports()
    assert not found, "velro/ is the ground floor; move the code to the app it serves:\n" + "\n".join(found)
