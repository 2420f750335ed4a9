"""Imports point one way: every module imports first, and only from its layer or below.

The layers, bottom to top, are the table ``LAYERS``. A module may import its
own layer, any layer below, a leaf (``LEAVES``: constants that import nothing),
or an edge listed in ``ALLOWED`` with its reason. Imports under
``if TYPE_CHECKING:`` are exempt (models name each other that way); imports
inside functions count, since hiding an upward import in a function is how
import cycles stay unnoticed.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("portal", "admin_views", "config")
SCRIPTS = ("manage",)
PROJECT = (*PACKAGES, *SCRIPTS)

# Bottom to top. A name matches that module only; "name.*" matches the package
# and everything under it. An exact name wins over a package, a longer over a shorter.
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "core",
        (
            "config.*",
            "portal.cache",
            "portal.choices",
            "portal.database",
            "portal.extensions",
            "portal.formatting",
            "portal.forms",
            "portal.http",
            "portal.i18n",
            "portal.logs",
            "portal.markup",
            "portal.metrics",
            "portal.models",
            "portal.pagination",
            "portal.search",
            "portal.security",
            "portal.slugs",
            "portal.static_files",
            "portal.urls",
        ),
    ),
    ("audit, emails", ("portal.audit.*", "portal.emails.*")),
    ("users", ("portal.users.*",)),
    # Search and feeds read posts with their authors: post services, below the views.
    ("posts", ("portal.posts.*", "portal.posts.feeds", "portal.posts.search")),
    ("comments", ("portal.comments.*",)),
    # Reports on posts and comments, and the auto-hiding they do; resolving
    # one (which may delete a post) is an operation.
    ("reports", ("portal.reports.*",)),
    # Writes that cross features: a post with its comments, an account with its content.
    # Your data (portal.privacy) reads every feature and deletes with operations.
    ("operations", ("portal.operations", "portal.privacy.*")),
    (
        "web views, admin, CLI",
        (
            "portal",  # create_app: the only place the app is assembled
            "portal.users.views",
            "portal.users.oidc_views",
            "portal.users.mfa_views",
            "portal.posts.views",
            "portal.comments.views",
            "portal.emails.views",
            "portal.privacy.views",
            "portal.reports.views",
            "portal.site.*",
            "portal.errors",
            "portal.metrics_views",
            "portal.cli",
            "portal.backup",
            "portal.seed",
            "admin_views.*",
            "manage",
        ),
    ),
)

# Leaves import nothing from the project (but one another), so any layer may
# import them: each feature's constants (roles and statuses are read
# everywhere, from the permissions up) and the helper they share.
LEAVES = ("portal.choices", "portal.*.constants")

# Upward edges that are right, each with its reason.
ALLOWED: dict[tuple[str, str], str] = {
    ("portal.models", f"portal.{feature}.models"): (
        "the metadata registry imports every model so that create_app and Alembic "
        "see all tables; only the top layer imports it (checked below)"
    )
    for feature in ("audit", "comments", "emails", "posts", "privacy", "reports", "users")
}


class Edge(NamedTuple):
    source: str
    target: str
    line: int
    # Where the import runs: at import time ("module") or when called ("function").
    where: str


def module_files() -> dict[str, Path]:
    """Every module of the project, by dotted name."""
    files: dict[str, Path] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            files[".".join(parts)] = path
    for script in SCRIPTS:
        files[script] = ROOT / f"{script}.py"
    return files


MODULES = module_files()


def _matches(module: str, pattern: str) -> bool:
    if pattern.endswith(".*"):
        return module == pattern[:-2] or module.startswith(pattern[:-1])
    if "*" in pattern:
        head, tail = pattern.split("*")
        middle = module.removeprefix(head).removesuffix(tail)
        return module.startswith(head) and module.endswith(tail) and "." not in middle
    return module == pattern


def layer_of(module: str) -> int:
    """The index in ``LAYERS`` of the most specific pattern matching ``module``."""
    found: list[tuple[int, int]] = []
    for index, (_name, patterns) in enumerate(LAYERS):
        for pattern in patterns:
            if _matches(module, pattern):
                exact = 0 if pattern.endswith(".*") else 1
                found.append((exact * 1000 + len(pattern), index))
    if not found:
        raise LookupError(f"{module} has no layer: add it to LAYERS in {Path(__file__).name}")
    return max(found)[1]


def is_leaf(module: str) -> bool:
    return any(_matches(module, pattern) for pattern in LEAVES)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _resolve(module: str, node: ast.ImportFrom | ast.Import, is_package: bool) -> Iterator[str]:
    """The project modules an import statement loads."""
    if isinstance(node, ast.Import):
        for alias in node.names:
            yield alias.name
        return
    base = node.module or ""
    if node.level:
        package = module if is_package else module.rpartition(".")[0]
        for _ in range(node.level - 1):
            package = package.rpartition(".")[0]
        base = f"{package}.{base}" if base else package
    for alias in node.names:
        # ``from portal.users import constants`` loads the module portal.users.constants.
        candidate = f"{base}.{alias.name}"
        yield candidate if candidate in MODULES else base


def imports_of(module: str, source: str, *, is_package: bool = False) -> list[Edge]:
    """The project imports in ``source``, except those under ``if TYPE_CHECKING:``."""
    edges: list[Edge] = []

    def visit(node: ast.AST, where: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child.test):
                for other in child.orelse:
                    visit_one(other, where)
                continue
            visit_one(child, where)

    def visit_one(child: ast.AST, where: str) -> None:
        if isinstance(child, ast.Import | ast.ImportFrom):
            for target in _resolve(module, child, is_package):
                if target.split(".")[0] in PROJECT:
                    edges.append(Edge(module, target, child.lineno, where))
            return
        inner = isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)
        visit(child, "function" if inner else where)

    visit(ast.parse(source), "module")
    return edges


def all_edges() -> list[Edge]:
    edges: list[Edge] = []
    for module, path in MODULES.items():
        is_package = path.name == "__init__.py"
        edges += imports_of(module, path.read_text(encoding="utf-8"), is_package=is_package)
    return edges


EDGES = all_edges()


def violations(edges: list[Edge]) -> list[str]:
    """Say, for each edge that points up a layer, what it is and where."""
    found = []
    for edge in edges:
        if edge.source == edge.target or is_leaf(edge.target):
            continue
        if (edge.source, edge.target) in ALLOWED:
            continue
        source, target = layer_of(edge.source), layer_of(edge.target)
        if target > source:
            found.append(
                f"{edge.source} ({LAYERS[source][0]}) imports {edge.target} "
                f"({LAYERS[target][0]}) at line {edge.line}"
            )
    return found


# -- the table itself ------------------------------------------------------------


def test_every_module_has_a_layer():
    for module in MODULES:
        layer_of(module)


def test_leaves_import_only_leaves():
    leaves = [module for module in MODULES if is_leaf(module)]
    assert "portal.users.constants" in leaves
    wrong = [edge for edge in EDGES if edge.source in leaves and not is_leaf(edge.target)]
    assert wrong == []


def test_the_allowed_edges_exist():
    # An exception nobody needs any more is one fewer rule to read.
    present = {(edge.source, edge.target) for edge in EDGES}
    assert set(ALLOWED) <= present


# -- the direction of every import ------------------------------------------------


def test_imports_point_down_the_layers():
    assert violations(EDGES) == []


def test_an_upward_import_is_caught():
    # The check itself: a service importing a view, in a function, is refused.
    source = textwrap.dedent(
        """
        from typing import TYPE_CHECKING

        from portal.users import constants as USER

        if TYPE_CHECKING:
            from portal.comments.models import Comment

        def later():
            from portal.posts import views
        """
    )
    found = violations(imports_of("portal.users.services", source))
    assert found == [
        "portal.users.services (users) imports portal.posts.views "
        "(web views, admin, CLI) at line 10"
    ]


def test_only_the_top_layer_imports_the_model_registry():
    top = len(LAYERS) - 1
    importers = {edge.source for edge in EDGES if edge.target == "portal.models"}
    assert importers
    assert all(layer_of(module) == top for module in importers), importers


def test_features_never_import_the_admin():
    importers = {edge.source for edge in EDGES if edge.target.split(".")[0] == "admin_views"}
    assert {module for module in importers if not module.startswith("admin_views")} == {"portal"}


def test_models_import_no_other_feature_nor_views_nor_forms():
    # Relationships across packages name their model by string, with TYPE_CHECKING imports.
    for edge in EDGES:
        if not edge.source.endswith(".models") or edge.source == "portal.models":
            continue
        own = edge.source.rpartition(".")[0]
        assert (
            layer_of(edge.target) == 0 or is_leaf(edge.target) or edge.target.startswith(own + ".")
        ), edge


def test_feature_packages_load_nothing():
    # Importing portal.posts.constants runs portal/posts/__init__.py: it must stay empty.
    for module, path in MODULES.items():
        if path.name == "__init__.py" and module.startswith("portal."):
            assert [edge for edge in EDGES if edge.source == module] == [], module


def test_create_app_imports_the_project_only_when_called():
    # Every portal module runs portal/__init__.py first: at import time it loads
    # nothing of the project, so a constants module stays a leaf in practice.
    at_import = [edge for edge in EDGES if edge.source == "portal" and edge.where == "module"]
    assert at_import == []


# -- each module on its own -------------------------------------------------------

# Run in a fresh interpreter. It first imports the third-party packages the
# project uses, then forks once per module: each child starts with none of the
# project's modules loaded, as a fresh interpreter would, without paying for
# Flask, SQLAlchemy and Flask-Admin again each time.
IMPORT_EACH = """
import importlib, json, os, sys

modules, libraries = json.loads(sys.argv[1]), json.loads(sys.argv[2])
project = {name.split(".")[0] for name in modules}
for library in libraries:
    try:
        importlib.import_module(library)
    except Exception:
        pass
assert not any(name.split(".")[0] in project for name in sys.modules)


def attempt(module):
    try:
        importlib.import_module(module)
    except BaseException as error:
        return {"error": f"{type(error).__name__}: {error}"}
    return {"loaded": sorted(name for name in sys.modules if name.split(".")[0] in project)}


results = {}
for module in modules:
    if not hasattr(os, "fork"):
        done = __import__("subprocess").run(
            [sys.executable, "-c", f"import {module}"], capture_output=True, text=True
        )
        results[module] = (
            {"loaded": []} if done.returncode == 0 else {"error": done.stderr.strip()[-500:]}
        )
        continue
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        os.dup2(os.open(os.devnull, os.O_WRONLY), 1)  # only the report goes to the parent
        with os.fdopen(write, "w") as pipe:
            pipe.write(json.dumps(attempt(module)))
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        results[module] = json.loads(pipe.read() or '{"error": "the child died"}')
    os.waitpid(pid, 0)
print(json.dumps(results))
"""


def third_party_imports() -> list[str]:
    """The dotted names of every non-project module the project imports."""
    names: set[str] = set()
    for path in MODULES.values():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names.add(node.module)
    return sorted(name for name in names if name.split(".")[0] not in PROJECT)


@pytest.fixture(scope="module")
def imported_alone() -> dict[str, dict[str, list[str] | str]]:
    """For each module, imported alone in a fresh interpreter: the project modules it loaded."""
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            IMPORT_EACH,
            json.dumps(sorted(MODULES)),
            json.dumps(third_party_imports()),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_every_module_imports_first(imported_alone):
    assert set(imported_alone) == set(MODULES)
    failed = {
        module: result["error"] for module, result in imported_alone.items() if "error" in result
    }
    assert failed == {}


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="needs os.fork")
def test_a_constants_module_loads_almost_nothing(imported_alone):
    # Only the packages on its path (which load nothing) and the leaves.
    for module, result in imported_alone.items():
        if is_leaf(module):
            packages = {module.rsplit(".", depth)[0] for depth in range(1, module.count(".") + 1)}
            extra = [
                name for name in result["loaded"] if name not in packages and not is_leaf(name)
            ]
            assert extra == [], module
    assert imported_alone["portal.users.constants"]["loaded"] == [
        "portal",
        "portal.choices",
        "portal.users",
        "portal.users.constants",
    ]
