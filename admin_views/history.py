"""Each object's history, as Django admin's ``history_view`` shows it, and its page on the site.

A screen with ``HistoryMixin`` answers ``history/?id=N``: the audit events
recorded about that row (``portal.audit``: its ``audit_type`` and id), newest
first, a page at a time, each with who, when, what and which fields changed
from what to what. The actors come in the same query (one join), so a page
costs the same statements with two events or two thousand.

Who sees a history: whoever may view that row in the back office (staff and
admins, for the posts, comments, messages and accounts they may open). The
audit trail screen, with every event and the addresses they came from, stays
for admins; a history shows no address, and a secret's values (passwords,
hashes, tokens, keys) never, even if an old event held one.

``site_url`` gives the row's public page, for the "View on site" links, or
None when it has none that visitors may open (a draft, a comment waiting).

Overrides of Flask-Admin internals: none. ``get_list_row_actions`` (public)
adds the row's History and View on site links.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING
from typing import Any

from flask import abort
from flask import flash
from flask import redirect
from flask import request
from flask_admin import expose
from flask_admin.model.template import BaseListRowAction
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from markupsafe import Markup
from sqlalchemy import select

from portal import security
from portal.audit import constants as AUDIT
from portal.audit.models import AuditEvent
from portal.audit.services import MASK
from portal.audit.services import is_secret
from portal.pagination import BadCursor
from portal.pagination import Page
from portal.pagination import keyset_page
from portal.urls import parse_row_id
from portal.users.models import User

if TYPE_CHECKING:
    from flask_admin.contrib.sqla import ModelView as _ModelView
else:
    _ModelView = object

# How the history names each action; one not listed shows by its code name.
ACTION_LABELS = {
    AUDIT.ACTION_CREATE: _l("Created"),
    AUDIT.ACTION_UPDATE: _l("Changed"),
    AUDIT.ACTION_DELETE: _l("Deleted"),
    AUDIT.ACTION_SET_ROLE: _l("Role changed"),
    AUDIT.ACTION_SET_STATUS: _l("Status changed"),
    AUDIT.ACTION_SET_PASSWORD: _l("Password set"),
    AUDIT.ACTION_APPROVE: _l("Approved"),
    AUDIT.ACTION_REJECT: _l("Rejected"),
    AUDIT.ACTION_SPAM: _l("Marked as spam"),
    AUDIT.ACTION_EXPORT: _l("Exported"),
    AUDIT.ACTION_RETRY: _l("Retried"),
    AUDIT.ACTION_CANCEL: _l("Cancelled"),
    AUDIT.ACTION_PURGE: _l("Purged"),
    AUDIT.ACTION_COMPOSE: _l("Written"),
    AUDIT.ACTION_BROADCAST: _l("Broadcast"),
    AUDIT.ACTION_SEED: _l("Seeded"),
    AUDIT.ACTION_SIGN_IN: _l("Signed in"),
    AUDIT.ACTION_SIGN_IN_FAILED: _l("Sign-in failed"),
    AUDIT.ACTION_SIGN_OUT: _l("Signed out"),
    AUDIT.ACTION_RESET_REQUESTED: _l("Password reset asked for"),
    AUDIT.ACTION_RESET_DONE: _l("Password reset"),
    AUDIT.ACTION_EMAIL_CHANGE_REQUESTED: _l("Email change asked for"),
    AUDIT.ACTION_EMAIL_CHANGED: _l("Email changed"),
    AUDIT.ACTION_PASSWORD_CHANGED: _l("Password changed"),
    AUDIT.ACTION_MFA_ENROLLED: _l("Two-step sign-in set up"),
    AUDIT.ACTION_MFA_RESET: _l("Two-step sign-in reset"),
    AUDIT.ACTION_MFA_DISABLED: _l("Two-step sign-in turned off"),
    AUDIT.ACTION_SESSION_ENDED: _l("Session ended"),
    AUDIT.ACTION_PROVIDER_LINKED: _l("Sign-in provider linked"),
    AUDIT.ACTION_PROVIDER_UNLINKED: _l("Sign-in provider unlinked"),
}


@dataclass(frozen=True)
class Change:
    """One field of one event: its name and its values before and after."""

    field: str
    old: Any
    new: Any


@dataclass(frozen=True)
class HistoryEntry:
    """One event as a history shows it."""

    event: AuditEvent
    # The acting account's id and current name, when it still exists.
    actor_id: int | None
    actor_name: str | None

    @property
    def action_label(self) -> str:
        label = ACTION_LABELS.get(self.event.action)
        return str(label) if label is not None else self.event.action.replace("_", " ")

    @property
    def changes(self) -> list[Change]:
        # Masked when recorded; masked again here, for any event older than a rule.
        return [
            Change(field, MASK, MASK) if is_secret(field) else Change(field, *values)
            for field, values in (self.event.changes or {}).items()
        ]


def object_history(
    object_type: str,
    object_id: Any,
    *,
    per_page: int,
    after: str | None = None,
    before: str | None = None,
) -> Page[HistoryEntry]:
    """Return a page of the events about one object, newest first, with their actors.

    One query, on the audit trail's (object type, object id, time) index.
    Raise ``BadCursor`` for a page link this site did not make.
    """
    statement = (
        select(AuditEvent, User.id, User.name)
        .outerjoin(User, User.id == AuditEvent.actor_id)
        .where(AuditEvent.object_type == object_type, AuditEvent.object_id == str(object_id))
    )
    page: Page[Any] = keyset_page(
        statement,
        AuditEvent.created_at,
        AuditEvent.id,
        lambda row: (row[0].created_at, row[0].id),
        per_page=per_page,
        after=after,
        before=before,
        newest_first=True,
    )
    entries = [HistoryEntry(event, actor_id, name) for event, actor_id, name in page.items]
    return Page(entries, previous=page.previous, next=page.next)


class _RowLink(BaseListRowAction):
    """A row's link drawn by the theme's ``row_actions.link`` macro, named after the row."""

    icon_class = ""

    def url(self, view: Any, row: Any) -> str | None:
        raise NotImplementedError

    def label(self, name: str) -> str:
        raise NotImplementedError

    def render(self, context: Any, row_id: str, row: Any) -> Any:
        view = context.resolve("admin_view")
        url = self.url(view, row)
        if url is None:
            return Markup("")
        link = self._resolve_symbol(context, "row_actions.link")
        return link(self, url, self.icon_class, self.label(view.object_label(row)))


class HistoryRowAction(_RowLink):
    icon_class = "fa fa-history"

    def __init__(self) -> None:
        super().__init__(title=_l("History"))

    def url(self, view: Any, row: Any) -> str | None:
        return str(view.history_url(row))

    def label(self, name: str) -> str:
        return _("History of %(name)s", name=name)


class SiteRowAction(_RowLink):
    icon_class = "fa fa-external-link"

    def __init__(self) -> None:
        super().__init__(title=_l("View on site"))

    def url(self, view: Any, row: Any) -> str | None:
        return view.site_url(row)

    def label(self, name: str) -> str:
        return _("View %(name)s on the site", name=name)


class HistoryMixin(_ModelView):
    """A model screen whose rows each have a History page (and, if public, a page on the site)."""

    # The object type its audit events name (``AUDIT.OBJECT_*``).
    audit_type = ""
    # Whether rows of this screen can have a public page ("View on site" / "Not public").
    has_site_pages = False
    history_page_size = 25
    details_template = "admin/object_details.html"
    edit_template = "admin/object_edit.html"

    def site_url(self, model: Any) -> str | None:
        """The row's public page on the site, or None while visitors may not open it."""
        return None

    def history_url(self, model: Any) -> str:
        return str(self.get_url(".history_view", id=self.get_pk_value(model)))

    def get_list_row_actions(self) -> list[BaseListRowAction]:
        actions = [*super().get_list_row_actions(), HistoryRowAction()]
        return [*actions, SiteRowAction()] if self.has_site_pages else actions

    @expose("/history/")
    def history_view(self) -> Any:
        """Show one row's audit events, newest first, a page at a time."""
        key = parse_row_id(request.args.get("id"))
        model = None if key is None else self.get_one(key)
        if model is None:
            flash(_("That row does not exist (any more)."), "error")
            return redirect(self.get_url(".index_view"))
        # Seeing a row's history is seeing the row: the same gate, the same answer.
        if not self.can_view_details or not security.can(current_user, security.VIEW, model):
            abort(403)
        try:
            page = object_history(
                self.audit_type,
                key,
                per_page=self.history_page_size,
                after=request.args.get("after"),
                before=request.args.get("before"),
            )
        except BadCursor:
            abort(400)
        return self.render(
            "admin/history.html",
            model=model,
            model_id=key,
            page=page,
            sources=AUDIT.SOURCES,
            can_view_accounts=security.can(current_user, security.VIEW, security.ACCOUNT),
        )
