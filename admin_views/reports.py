"""Reports: the reported posts and comments, each resolved in one step.

One row per reported item, not per report: its content (sanitised when it
was saved, shortened here), how many accounts reported it and why, their
newest notes, and whether the reports hid it. Each row's buttons dismiss,
hide or delete the item (a POST with the CSRF token, no script needed); the
checkbox beside them also disables the author's account, as far as the gate
lets this account do that.

Overrides of Flask-Admin internals: none.
"""

from __future__ import annotations

from flask import abort
from flask import flash
from flask import redirect
from flask import request
from flask_admin import BaseView
from flask_admin import expose
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from werkzeug.wrappers import Response
from wtforms import BooleanField
from wtforms import HiddenField
from wtforms import IntegerField
from wtforms.validators import AnyOf
from wtforms.validators import InputRequired
from wtforms.validators import NumberRange

from admin_views import menu
from admin_views.access import SecureViewMixin
from admin_views.lists import CappedCount
from portal import operations
from portal import security
from portal.extensions import db
from portal.markup import POST_TAGS
from portal.markup import shorten_html
from portal.reports import constants as REPORT
from portal.reports import services
from portal.urls import MAX_ROW_ID
from portal.urls import is_safe_next
from portal.users import constants as USER

# Characters of an item's text a row shows.
EXCERPT_LENGTH = 300
PAGE_SIZE = 20


class ResolveForm(FlaskForm):
    """One row's decision: the item, dismiss / hide / delete, and whether to disable its author."""

    kind = HiddenField(validators=[AnyOf((REPORT.TARGET_POST, REPORT.TARGET_COMMENT))])
    target = IntegerField(validators=[InputRequired(), NumberRange(min=1, max=MAX_ROW_ID)])
    decision = HiddenField(validators=[AnyOf(REPORT.DECISIONS)])
    deactivate = BooleanField(_l("Also deactivate the author"))
    url = HiddenField()


DECISION_LABELS = {
    REPORT.DISMISS: _l("Dismiss"),
    REPORT.HIDE: _l("Hide"),
    REPORT.DELETE: _l("Delete"),
}
DONE = {
    REPORT.DISMISS: _l("Reports dismissed: %(name)s stays."),
    REPORT.HIDE: _l("%(name)s is hidden; its reports are resolved."),
    REPORT.DELETE: _l("%(name)s is deleted, with its reports."),
}


def item_name(target: services.Target) -> str:
    """Name a reported item in a few words."""
    if services.kind_of(target) == REPORT.TARGET_POST:
        return _("the post “%(title)s”", title=target.title)
    return _("comment #%(id)s", id=target.id)


def excerpt(target: services.Target) -> str:
    """The item's stored, sanitised HTML, shortened without cutting its markup."""
    return shorten_html(target.body_html, EXCERPT_LENGTH, POST_TAGS)


class ReportView(SecureViewMixin, BaseView):
    """The queue of reported items, the longest waiting first."""

    access = (security.VIEW, security.REPORTS)

    def menu_label(self) -> str:
        count = menu.menu_counts()["reports"]
        if not count:
            return str(self.name)
        shown = CappedCount.of(count, menu.MENU_COUNT_CAP)
        return _("%(name)s (%(count)s open)", name=self.name, count=shown)

    @expose("/")
    def index(self) -> str:
        """List the reported items, a page at a time."""
        page = request.args.get("page", 1, type=int) or 1
        if page < 1 or page > 10_000:
            abort(404)
        found = services.queue_page(page=page, per_page=PAGE_SIZE + 1)
        items, more = found[:PAGE_SIZE], len(found) > PAGE_SIZE
        return self.render(
            "admin/reports/queue.html",
            items=items,
            # The checkbox shows where the gate lets this account disable the author.
            deactivatable={
                item.key: item.target.author.status != USER.INACTIVE
                and security.can(
                    current_user, security.CHANGE_STATUS, item.target.author, status=USER.INACTIVE
                )
                for item in items
            },
            page=page,
            more=more,
            excerpt=excerpt,
            item_name=item_name,
            decisions=DECISION_LABELS,
            can_resolve=security.can(current_user, security.RESOLVE, security.REPORTS),
            form=ResolveForm(formdata=None),
        )

    @expose("/resolve/", methods=("POST",))
    def resolve(self) -> Response:
        """Apply one decision to every open report on one item, then go back to the queue."""
        if not security.can(current_user, security.RESOLVE, security.REPORTS):
            abort(403)
        form = ResolveForm()
        back = self._back(form.url.data)
        if not form.validate_on_submit():
            flash(_("That decision names no reported item; nothing changed."), "error")
            return redirect(back)
        target = services.get_target(form.kind.data, int(form.target.data))
        if target is None:
            flash(_("That item no longer exists; nothing changed."), "error")
            return redirect(back)
        name = item_name(target)
        try:
            operations.resolve_reports(
                target,
                form.decision.data,
                actor=current_user,
                deactivate_author=bool(form.deactivate.data),
            )
        except services.ReportError as error:
            db.session.rollback()
            flash(str(error), "error")
            return redirect(back)
        message = str(DONE[form.decision.data]) % {"name": name}
        if form.deactivate.data:
            message += " " + _("The author's account is deactivated.")
        flash(message, "success")
        return redirect(back)

    def _back(self, target: str | None) -> str:
        index = str(self.get_url(".index"))
        if target and is_safe_next(target) and target.split("?")[0] == index:
            return target
        return index
