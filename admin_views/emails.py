"""The outgoing email queue: list, details, retry, cancel, delete, compose."""

from __future__ import annotations

import re
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import nh3
from flask import flash
from flask import jsonify
from flask import redirect
from flask import request
from flask import url_for
from flask_admin import BaseView
from flask_admin import expose
from flask_admin.actions import action
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy.orm import selectinload
from werkzeug.wrappers import Response
from wtforms import DateTimeLocalField
from wtforms import EmailField
from wtforms import IntegerField
from wtforms import RadioField
from wtforms import SelectField
from wtforms import StringField
from wtforms import TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired
from wtforms.validators import InputRequired
from wtforms.validators import Length
from wtforms.validators import NumberRange
from wtforms.validators import Optional
from wtforms.validators import ValidationError
from wtforms.widgets import HiddenInput

from admin_views.access import SecureViewMixin
from admin_views.actions import selected_ids
from admin_views.base import SecureModelView
from admin_views.formatters import choice_label
from admin_views.formatters import status_badge
from admin_views.history import HistoryMixin
from portal import operations
from portal import security
from portal.audit import constants as AUDIT
from portal.emails import constants as EMAIL
from portal.emails import services
from portal.emails.models import Email
from portal.extensions import db
from portal.http import allow_inline_styles_of
from portal.i18n import NAME_LABELS
from portal.urls import parse_row_id
from portal.users import constants as USER
from portal.users import services as users

LINK_RE = re.compile(r"https?://[^\s\"'<>]+")
REDACTED = "[link hidden: it carries an account token]"


def redact_links(text: str) -> str:
    """Replace every link with its site and a note: the path may carry a token."""

    def hide(match: re.Match[str]) -> str:
        parts = urlsplit(match.group(0))
        return f"{parts.scheme}://{parts.netloc}/… {REDACTED}"

    return LINK_RE.sub(hide, text)


def safe_body(email: Email, html: bool) -> str:
    """The body as staff may see it: tokens redacted, HTML sanitised."""
    body = (email.html_body if html else email.text_body) or ""
    if email.sensitive:
        body = redact_links(body)
    if html:
        body = nh3.clean(body, link_rel="nofollow noopener noreferrer")
    return body


_state = status_badge(
    EMAIL.STATE,
    {
        EMAIL.QUEUED: "info",
        EMAIL.SENDING: "primary",
        EMAIL.SENT: "success",
        EMAIL.FAILED: "danger",
        EMAIL.CANCELLED: "secondary",
    },
)
_priority = choice_label(EMAIL.PRIORITY)


class EmailView(HistoryMixin, SecureModelView):
    """Every outgoing message: what it is, where it is in the queue, what happened."""

    audit_type = AUDIT.OBJECT_EMAIL
    subject = security.EMAIL
    operations = {
        "delete": security.DELETE,
        "view_details": security.VIEW,
    }
    action_rules = {
        "retry": security.CHANGE,
        "cancel": security.CHANGE,
        "delete": security.DELETE,
    }

    details_template = "admin/emails/details.html"

    column_list = (
        "id",
        "to_address",
        "subject",
        "state",
        "priority",
        "attempts",
        "created_at",
        "next_attempt_at",
        "sent_at",
    )
    label_attribute = "subject"
    column_labels = {
        "id": _l("#"),
        "message_id": _l("Message-ID"),
        "state": _l("State"),
        "priority": _l("Priority"),
        "from_address": _l("From"),
        "to_address": _l("To"),
        "reply_to": _l("Reply to"),
        "subject": _l("Subject"),
        "attempts": _l("Attempts"),
        "max_attempts": _l("Attempts allowed"),
        "created_at": _l("Queued"),
        "scheduled_at": _l("Send at"),
        "expires_at": _l("Give up at"),
        "next_attempt_at": _l("Next attempt"),
        "locked_by": _l("Being sent by"),
        "locked_until": _l("Lease ends"),
        "sent_at": _l("Sent"),
        "last_error": _l("Last error"),
        "sensitive": _l("Carries account links"),
    }
    column_searchable_list = ("to_address", "subject")
    column_filters = ("state", "priority", "created_at", "sent_at", "scheduled_at")
    column_choices = {
        "state": list(EMAIL.STATE.items()),
        "priority": list(EMAIL.PRIORITY.items()),
    }
    # Every listed column sorts but the free-text subject.
    column_sortable_list = tuple(name for name in column_list if name != "subject")
    column_default_sort = ("id", True)
    column_formatters = {"state": _state, "priority": _priority}
    column_details_list = (
        "id",
        "message_id",
        "state",
        "priority",
        "from_address",
        "to_address",
        "reply_to",
        "subject",
        "created_at",
        "scheduled_at",
        "expires_at",
        "next_attempt_at",
        "attempts",
        "max_attempts",
        "locked_by",
        "locked_until",
        "sent_at",
        "last_error",
        "sensitive",
    )
    column_formatters_detail = {"state": _state, "priority": _priority}
    page_size = 20
    can_set_page_size = True
    page_size_options = (20, 50, 100)

    def get_one(self, id: Any) -> Email | None:
        # The details page shows the attempt log: load it with the row.
        key = parse_row_id(id)
        if key is None:
            return None
        return db.session.get(Email, key, options=[selectinload(Email.attempt_log)])

    def delete_model(self, model: Email) -> bool:
        if services.delete([model.id]):
            return True
        flash(_("A message being sent cannot be deleted; try again in a moment."), "error")
        return False

    @action("retry", _l("Retry now"), _l("Queue the selected messages for delivery now?"))
    def action_retry(self, ids: Any) -> None:
        changed = services.retry(selected_ids(ids))
        flash(_("%(count)s message(s) queued for delivery now.", count=changed), "success")

    @action("cancel", _l("Cancel"), _l("Cancel the selected messages? They will not be sent."))
    def action_cancel(self, ids: Any) -> None:
        changed = services.cancel(selected_ids(ids))
        flash(_("%(count)s message(s) cancelled.", count=changed), "success")

    @action("delete", _l("Delete"), _l("Delete the selected messages and their delivery logs?"))
    def action_delete(self, ids: Any) -> None:
        changed = services.delete(selected_ids(ids))
        flash(_("%(count)s message(s) deleted.", count=changed), "success")

    def render(self, template: str, **kwargs: Any) -> str:
        kwargs.setdefault("safe_body", safe_body)
        return super().render(template, **kwargs)


AUDIENCES = [
    SelectChoice("address", _l("One email address")),
    SelectChoice("account", _l("One account")),
    SelectChoice("group", _l("Every account with a role and status")),
]
ANY = ""
# The picker's query is cut here: no name, handle or address is longer.
SEARCH_MAX_LENGTH = 100


def no_control_characters(form: FlaskForm, field: Any) -> None:
    """Refuse an address with a control character: none has one, and PostgreSQL refuses NUL."""
    if field.data and any(ord(char) < 32 or ord(char) == 127 for char in field.data):
        raise ValidationError(_("An email address cannot contain control characters."))


class ComposeForm(FlaskForm):
    audience = RadioField(_l("Send to"), choices=AUDIENCES, default="address")
    address = EmailField(
        _l("Email address"), validators=[Optional(), Length(max=254), no_control_characters]
    )
    account = StringField(
        _l("Account"),
        validators=[Optional(), Length(max=400), no_control_characters],
        description=_l(
            "The account's email address, or search by name or handle and pick one; "
            "mail goes to its stored address."
        ),
    )
    # Set by the account picker (compose.js) to the chosen account's id.
    account_id = IntegerField(widget=HiddenInput(), validators=[Optional()])
    role = SelectField(
        _l("Role"),
        default=ANY,
        choices=[
            SelectChoice(ANY, _l("any role")),
            *[SelectChoice(str(k), NAME_LABELS.get(v, v)) for k, v in USER.ROLE.items()],
        ],
    )
    status = SelectField(
        _l("Status"),
        default=ANY,
        choices=[
            SelectChoice(ANY, _l("active and new")),
            *[SelectChoice(str(k), NAME_LABELS.get(v, v)) for k, v in USER.STATUS.items()],
        ],
    )
    subject = StringField(
        _l("Subject"), validators=[DataRequired(), Length(max=EMAIL.SUBJECT_MAX_LENGTH)]
    )
    body = TextAreaField(_l("Message"), validators=[DataRequired(), Length(max=50_000)])
    # The browser sends a time without a zone; like every time on these screens, it is UTC.
    scheduled_at = DateTimeLocalField(
        _l("Send at (UTC)"),
        tz=UTC,
        validators=[Optional()],
        description=_l("Optional: hold the message until then. Empty: send at once."),
    )
    expires_at = DateTimeLocalField(
        _l("Give up at (UTC)"),
        tz=UTC,
        validators=[Optional()],
        description=_l("Optional: a message not sent by then fails instead of arriving late."),
    )

    def validate_scheduled_at(self, field: DateTimeLocalField) -> None:
        problem = services.schedule_problems(field.data, None).get("scheduled_at")
        if problem:
            raise ValidationError(problem)

    def validate_expires_at(self, field: DateTimeLocalField) -> None:
        problem = services.schedule_problems(self.scheduled_at.data, field.data).get("expires_at")
        if problem:
            raise ValidationError(problem)

    def schedule(self) -> tuple[datetime | None, datetime | None]:
        """When to send and when to give up, as the queue takes them (either may be None)."""
        return self.scheduled_at.data, self.expires_at.data

    def group(self) -> tuple[int | None, int | None]:
        role = int(self.role.data) if self.role.data else None
        status = int(self.status.data) if self.status.data else None
        return role, status


class ComposeView(SecureViewMixin, BaseView):
    """Write a message to one address, one account, or a group of accounts."""

    access = (security.ADD, security.EMAIL)

    @expose("/", methods=("GET", "POST"))
    def index(self) -> str | Response:
        """Write a message; "Preview" shows what would be queued, "Queue" queues it."""
        form = ComposeForm()
        preview: services.Preview | None = None
        if form.validate_on_submit():
            try:
                if "confirm" in request.form:
                    return self._send(form)
                preview = self._preview(form)
            except services.QueueError as error:
                flash(str(error), "error")
        if preview is not None and preview.html_body:
            # The HTML is shown in a sandboxed frame that inherits this page's policy.
            allow_inline_styles_of(preview.html_body)
        return self.render("admin/emails/compose.html", form=form, preview=preview)

    @expose("/accounts")
    def accounts(self) -> Response:
        """List the accounts matching ``q`` for the picker, as ``[{id, text}]``; changes nothing."""
        phrase = request.args.get("q", "")[:SEARCH_MAX_LENGTH]
        found = [
            {"id": user.id, "text": f"{user.name} <{user.email}>"}
            for user in users.find_accounts(phrase)
        ]
        response = jsonify(found)
        response.cache_control.no_store = True
        return response

    def _recipient(self, form: ComposeForm) -> str:
        if form.audience.data == "address":
            if not form.address.data:
                raise services.QueueError(_("Enter the address to write to."))
            return str(form.address.data)
        if form.account_id.data is not None:
            return operations.account_address_by_id(form.account_id.data)
        if not form.account.data:
            raise services.QueueError(_("Enter or pick the account to write to."))
        return operations.account_address(form.account.data)

    def _preview(self, form: ComposeForm) -> services.Preview:
        subject, body = form.subject.data or "", form.body.data or ""
        scheduled_at, expires_at = form.schedule()
        if form.audience.data == "group":
            role, status = form.group()
            return operations.preview_broadcast(
                subject,
                body,
                role=role,
                status=status,
                scheduled_at=scheduled_at,
                expires_at=expires_at,
            )
        return services.preview(
            [self._recipient(form)],
            1,
            subject,
            body,
            scheduled_at=scheduled_at,
            expires_at=expires_at,
        )

    def _send(self, form: ComposeForm) -> Response:
        subject, body = form.subject.data or "", form.body.data or ""
        scheduled_at, expires_at = form.schedule()
        if form.audience.data == "group":
            role, status = form.group()
            count = operations.broadcast(
                subject,
                body,
                role=role,
                status=status,
                created_by_id=current_user.id,
                scheduled_at=scheduled_at,
                expires_at=expires_at,
            )
        else:
            services.compose(
                self._recipient(form),
                subject,
                body,
                created_by_id=current_user.id,
                scheduled_at=scheduled_at,
                expires_at=expires_at,
            )
            count = 1
        when = services.schedule_words(scheduled_at, expires_at)
        flash(_("%(count)s message(s) queued%(when)s.", count=count, when=when), "success")
        return redirect(url_for("email.index_view"))


class PurgeForm(FlaskForm):
    days = IntegerField(
        _l("Older than (days)"),
        default=30,
        validators=[InputRequired(), NumberRange(min=1, max=36500)],
        description=_l("Sent and cancelled messages queued before then are deleted for good."),
    )


class PurgeView(SecureViewMixin, BaseView):
    """Delete old sent and cancelled messages (ADMIN only), after a count."""

    access = (security.DELETE, security.EMAIL)

    @expose("/", methods=("GET", "POST"))
    def index(self) -> str | Response:
        form = PurgeForm()
        preview: int | None = None
        if form.validate_on_submit():
            age = timedelta(days=form.days.data or 0)
            if "confirm" in request.form:
                removed = services.purge(age)
                flash(_("%(count)s message(s) purged.", count=removed), "success")
                return redirect(url_for("email.index_view"))
            preview = services.purge(age, dry_run=True)
        return self.render("admin/emails/purge.html", form=form, preview=preview)
