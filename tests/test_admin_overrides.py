"""Our overrides of Flask-Admin internals still fit the code they replace.

Each override was written against one version of Flask-Admin's method. When an
upgrade changes that method, its test here fails: read the new upstream code,
carry its changes into the override (or drop the override if it is no longer
needed), then record the fingerprint the failure prints. No app, no database.
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
import pkgutil
from dataclasses import dataclass
from typing import Any

import flask_admin
import pytest
from flask_admin import BaseView
from flask_admin import expose
from flask_admin.contrib.sqla import ModelView
from flask_admin.model.base import BaseModelView

import admin_views
from admin_views import LiveMenuView
from admin_views import PortalAdmin
from admin_views.access import ModelAccessMixin
from admin_views.base import SecureModelView
from admin_views.comments import CommentView
from admin_views.export import StreamedExportMixin
from admin_views.lists import CappedListMixin
from portal.comments.models import Comment
from portal.extensions import db


@dataclass(frozen=True)
class Override:
    """One method of ours that replaces Flask-Admin's, and what it replaced."""

    composed: type  # the class our screens use, where the override takes effect
    owner: type  # the class of ours that defines the override
    name: str
    upstream: str  # the Flask-Admin class that defines the replaced method
    signature: str  # the replaced method's parameters, without annotations
    sha256: str  # of the replaced method's source text

    def __str__(self) -> str:
        return f"{self.owner.__name__}.{self.name}"


OVERRIDES = [
    Override(
        SecureModelView,
        CappedListMixin,
        "_apply_search",
        "flask_admin.contrib.sqla.view.ModelView",
        "(self, query, count_query, joins, count_joins, search)",
        "2c01e5aa3767aeddbb40252ebb0058649cdaa0254d6709a0aff952375bc2680e",
    ),
    Override(
        SecureModelView,
        StreamedExportMixin,
        "_export_csv",
        "flask_admin.model.base.BaseModelView",
        "(self, return_url)",
        "ef0f1091487cb0af39ad7e77f11e6f3e87ba8f207c080601924eafe653b1a14d",
    ),
    Override(
        SecureModelView,
        ModelAccessMixin,
        "_handle_view",
        "flask_admin.base.BaseView",
        "(self, name, **kwargs)",
        "8102d997b55fa25d888332d16210ebec14b00520cc59a1baf9aaa0e62ab52a0e",
    ),
    Override(
        PortalAdmin,
        PortalAdmin,
        "_add_view_to_menu",
        "flask_admin.base.Admin",
        "(self, view)",
        "180aaad18846dcb5c28fb4cd92ea53b141e6c218865fd88440a2952fae044b9f",
    ),
    # Public, but our body is Flask-Admin's with the count replaced: a change
    # upstream (a new step in the query) would be lost without this check.
    Override(
        SecureModelView,
        CappedListMixin,
        "get_list",
        "flask_admin.contrib.sqla.view.ModelView",
        "(self, page, sort_column, sort_desc, search, filters, execute=True, page_size=None)",
        "7e7235cbc8ce57ce21c378b46497e7f74a107b5d3e64b1323355d9a7901ee7a6",
    ),
]

# Flask-Admin internals the overrides call, and the arguments they pass.
CALLED = [
    (ModelView, "_apply_filters", "(self, query, count_query, joins, count_joins, filters)"),
    (ModelView, "_apply_path_joins", "(self, query, joins, path, inner_join=True)"),
    (ModelView, "_apply_sorting", "(self, query, joins, sort_column, sort_desc)"),
    (ModelView, "_apply_pagination", "(self, query, page, page_size)"),
    (BaseModelView, "_get_list_extra_args", "(self)"),
    (BaseModelView, "_get_column_by_idx", "(self, idx)"),
]


def bare_signature(function: Any) -> str:
    """The parameters of ``function``: names, kinds and defaults, no annotations."""
    signature = inspect.signature(function)
    parameters = [p.replace(annotation=p.empty) for p in signature.parameters.values()]
    return str(signature.replace(parameters=parameters, return_annotation=signature.empty))


def replaced(override: Override) -> tuple[type, Any]:
    """The Flask-Admin class and method that ``override`` stands in front of."""
    mro = override.composed.__mro__
    for cls in mro[mro.index(override.owner) + 1 :]:
        if override.name in vars(cls) and cls.__module__.startswith("flask_admin."):
            return cls, vars(cls)[override.name]
    raise AssertionError(f"Flask-Admin no longer defines {override.name}: drop {override}")


def recheck(override: Override, what: str) -> str:
    return (
        f"Flask-Admin {flask_admin.__version__} changed the {what} of "
        f"{override.upstream}.{override.name}, which {override.owner.__module__}.{override} "
        "replaces. Read the new method, carry its changes into ours, then record"
    )


@pytest.mark.parametrize("override", OVERRIDES, ids=str)
def test_the_screens_use_the_override(override):
    resolved = inspect.getattr_static(override.composed, override.name)

    assert resolved is vars(override.owner)[override.name]


@pytest.mark.parametrize("override", OVERRIDES, ids=str)
def test_flask_admin_defines_the_replaced_method_where_recorded(override):
    cls, _method = replaced(override)

    assert f"{cls.__module__}.{cls.__qualname__}" == override.upstream, (
        f"{override.name} moved in Flask-Admin {flask_admin.__version__}: "
        f"re-check {override} against the new home, then record it"
    )


@pytest.mark.parametrize("override", OVERRIDES, ids=str)
def test_the_replaced_method_is_unchanged(override):
    _cls, method = replaced(override)
    signature = bare_signature(method)
    digest = hashlib.sha256(inspect.getsource(method).encode()).hexdigest()

    assert signature == override.signature, f"{recheck(override, 'arguments')} {signature!r}"
    assert digest == override.sha256, f"{recheck(override, 'code')} sha256 {digest!r}"


@pytest.mark.parametrize("override", OVERRIDES, ids=str)
def test_the_override_takes_the_replaced_methods_arguments(override):
    _cls, method = replaced(override)

    assert bare_signature(vars(override.owner)[override.name]) == bare_signature(method)


@pytest.mark.parametrize(
    ("cls", "name", "signature"), CALLED, ids=[f"{cls.__name__}.{name}" for cls, name, _ in CALLED]
)
def test_internals_the_overrides_call_keep_their_arguments(cls, name, signature):
    assert bare_signature(getattr(cls, name)) == signature, (
        f"Flask-Admin {flask_admin.__version__} changed {cls.__qualname__}.{name}, "
        "which admin_views.lists and admin_views.export call: re-check those calls"
    )


def test_internal_attributes_the_overrides_read_keep_their_shape():
    # A screen with a related search column, filters, actions and an export.
    view = CommentView(Comment, db, name="Comments", endpoint="comment")

    assert view._search_supported is True
    assert [(field.key, len(path)) for field, path in view._search_fields] == [
        ("email", 1),
        ("name", 1),
    ]
    assert view._filters
    assert view._auto_joins
    assert ("body", "Comment") in [(name, title) for name, title in view._export_columns]
    assert dict(view._actions)["approve"] == "Approve"
    assert "approve" in view._actions_data


def test_a_live_menu_entry_reads_its_view():
    class Queue(BaseView):
        @expose("/")
        def index(self) -> str:
            return ""

        def menu_label(self) -> str:
            return "Queue (3 waiting)"

    view = Queue(name="Queue", endpoint="queue")
    admin = PortalAdmin()

    admin.add_view(view)

    assert view in admin._views
    (entry,) = [item for item in admin.menu() if isinstance(item, LiveMenuView)]
    assert entry.name == "Queue (3 waiting)"


def overrides_in_admin_views() -> set[str]:
    """Every ``Class._name`` of ours that stands in front of a Flask-Admin internal."""
    modules = [admin_views] + [
        importlib.import_module(f"admin_views.{info.name}")
        for info in pkgutil.iter_modules(admin_views.__path__)
    ]
    found = set()
    for module in modules:
        for cls in vars(module).values():
            if not inspect.isclass(cls):
                continue
            mro = cls.__mro__
            for index, ours in enumerate(mro):
                if not ours.__module__.startswith("admin_views"):
                    continue
                for name in vars(ours):
                    if not name.startswith("_") or name.startswith("__"):
                        continue
                    # Flask-Admin's metaclass sets these two on every view class.
                    if name in ("_urls", "_default_view"):
                        continue
                    if any(
                        name in vars(base) and base.__module__.startswith("flask_admin.")
                        for base in mro[index + 1 :]
                    ):
                        found.add(f"{ours.__name__}.{name}")
    return found


def test_every_override_of_an_internal_has_a_test_here():
    listed = {str(override) for override in OVERRIDES if override.name.startswith("_")}

    assert overrides_in_admin_views() == listed


@pytest.mark.parametrize("override", OVERRIDES, ids=str)
def test_each_override_is_listed_at_the_top_of_its_module(override):
    upstream_class = override.upstream.rsplit(".", 1)[1]
    docstring = inspect.getmodule(override.owner).__doc__ or ""

    assert f"``{upstream_class}.{override.name}``" in docstring
