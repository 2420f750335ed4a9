"""Accounts: staff look people up and (de)activate USER accounts; admins do the rest."""

from __future__ import annotations

from typing import Any

from flask import abort
from flask import flash
from flask import redirect
from flask import request
from flask import url_for
from flask_admin import expose
from flask_admin.actions import action
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import BooleanField
from wtforms import EmailField
from wtforms import RadioField
from wtforms import SelectField
from wtforms import StringField
from wtforms import TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired
from wtforms.validators import InputRequired
from wtforms.validators import Length
from wtforms.validators import Optional

from admin_views.base import SecureModelView
from admin_views.formatters import choice_label
from admin_views.formatters import status_badge
from admin_views.history import HistoryMixin
from portal import operations
from portal import security
from portal.audit import constants as AUDIT
from portal.audit.models import AuditEvent
from portal.comments.models import Comment
from portal.extensions import db
from portal.i18n import NAME_LABELS
from portal.posts.models import Post
from portal.urls import parse_row_id
from portal.users import constants as USER
from portal.users import mfa
from portal.users import services
from portal.users import sessions
from portal.users.models import User

ROLE_CHOICES = [SelectChoice(str(value), NAME_LABELS[name]) for value, name in USER.ROLE.items()]
STATUS_CHOICES = [
    SelectChoice(str(value), NAME_LABELS[name]) for value, name in USER.STATUS.items()
]


class InviteForm(FlaskForm):
    name = StringField(_l("Name"), validators=[DataRequired(), Length(max=USER.NAME_MAX_LENGTH)])
    email = EmailField(_l("Email"), validators=[DataRequired(), Length(max=USER.EMAIL_MAX_LENGTH)])
    role = SelectField(_l("Role"), choices=ROLE_CHOICES, default=str(USER.USER))


class AccountForm(FlaskForm):
    name = StringField(_l("Name"), validators=[DataRequired(), Length(max=USER.NAME_MAX_LENGTH)])
    role = SelectField(_l("Role"), choices=ROLE_CHOICES)
    status = SelectField(_l("Status"), choices=STATUS_CHOICES)


class DeactivateForm(FlaskForm):
    reason = TextAreaField(
        _l("Reason"),
        validators=[InputRequired(), Length(max=USER.REASON_MAX_LENGTH)],
        description=_l("Kept in the audit trail; included in the email if you send one."),
    )
    notify = BooleanField(_l("Email each person that their account is disabled"))


class ActivateForm(FlaskForm):
    reason = TextAreaField(
        _l("Reason"), validators=[Optional(), Length(max=USER.REASON_MAX_LENGTH)]
    )
    notify = BooleanField(_l("Email each person that their account is active"))


class RoleForm(FlaskForm):
    # A select always has a value: no "required" attribute (it asks for an empty first option).
    role = SelectField(
        _l("New role"),
        choices=ROLE_CHOICES,
        validators=[InputRequired()],
        render_kw={"required": False},
    )


class DeleteAccountForm(FlaskForm):
    content = RadioField(
        _l("Their posts and comments"),
        choices=[
            SelectChoice("keep", _l("Keep them, shown as written by “Deleted user”")),
            SelectChoice("delete", _l("Delete them too")),
        ],
        default="keep",
        validators=[InputRequired()],
    )


_role = choice_label(USER.ROLE)
_status = status_badge(
    USER.STATUS, {USER.ACTIVE: "success", USER.NEW: "info", USER.INACTIVE: "secondary"}
)


class UserView(HistoryMixin, SecureModelView):
    """Every account. The password hash is never listed, shown, searched or exported."""

    audit_type = AUDIT.OBJECT_USER
    subject = security.ACCOUNT
    operations = {
        "create": security.ADD,
        "edit": security.CHANGE,
        "delete": security.DELETE,
        "export": security.EXPORT,
        "view_details": security.VIEW,
    }
    action_rules = {
        "activate": security.CHANGE_STATUS,
        "deactivate": security.CHANGE_STATUS,
        "set_role": security.CHANGE_ROLE,
    }
    input_actions = {
        "activate": ActivateForm,
        "deactivate": DeactivateForm,
        "set_role": RoleForm,
    }
    # Deleting accounts needs the confirmation page, one at a time.
    action_disallowed_list = ["delete"]

    details_template = "admin/users/details.html"
    column_list = ("id", "name", "email", "role", "status", "created_at", "last_login_at")
    label_attribute = "name"
    column_labels = {
        "id": _l("#"),
        "name": _l("Name"),
        "email": _l("Email"),
        "handle": _l("Handle"),
        "role": _l("Role"),
        "status": _l("Status"),
        "created_at": _l("Joined"),
        "confirmed_at": _l("Email confirmed"),
        "last_login_at": _l("Last sign-in"),
        "login_count": _l("Sign-ins"),
        "notify_comments": _l("Emails about comments"),
    }
    column_searchable_list = ("email", "name", "handle")
    column_filters = ("role", "status", "created_at", "last_login_at")
    column_choices = {
        "role": list(USER.ROLE.items()),
        "status": list(USER.STATUS.items()),
    }
    # Only indexed columns sort, so sorting never reads the whole table.
    column_sortable_list = ("id", "created_at", "last_login_at")
    column_default_sort = ("id", True)
    column_formatters = {"role": _role, "status": _status}
    column_formatters_detail = {"role": _role, "status": _status}
    column_details_list = (
        "id",
        "name",
        "email",
        "handle",
        "role",
        "status",
        "created_at",
        "confirmed_at",
        "last_login_at",
        "login_count",
        "notify_comments",
    )
    column_export_list = (
        "id",
        "name",
        "email",
        "handle",
        "role",
        "status",
        "created_at",
        "confirmed_at",
        "last_login_at",
        "login_count",
    )
    column_formatters_export = {"role": _role, "status": choice_label(USER.STATUS)}
    page_size = 20
    can_set_page_size = True
    page_size_options = (20, 50, 100)

    # Every account has a public profile, whatever its status.
    has_site_pages = True

    def site_url(self, model: User) -> str | None:
        return url_for("posts.profile", handle=model.handle)

    # -- create: an invitation, never a typed password --------------------------

    def get_create_form(self) -> type[FlaskForm]:
        return InviteForm

    def get_edit_form(self) -> type[FlaskForm]:
        return AccountForm

    def create_form(self, obj: Any = None) -> FlaskForm:
        return InviteForm()

    def edit_form(self, obj: Any = None) -> FlaskForm:
        form = AccountForm(obj=obj)
        if request.method == "GET" and obj is not None:
            form.role.data, form.status.data = str(obj.role), str(obj.status)
        return form

    def create_model(self, form: Any) -> User | bool:
        try:
            user = services.invite_account(
                form.name.data, form.email.data, int(form.role.data), actor=current_user
            )
        except services.AccountError as error:
            flash(str(error), "error")
            return False
        flash(_("Invitation sent to %(address)s.", address=user.email), "success")
        return user

    def update_model(self, form: Any, model: User) -> bool:
        try:
            services.change_account(
                model,
                actor=current_user,
                name=form.name.data,
                role=int(form.role.data),
                status=int(form.status.data),
            )
        except services.AccountError as error:
            db.session.rollback()
            flash(str(error), "error")
            return False
        return True

    # -- delete: a confirmation page that says what goes with the account ------

    @expose("/delete/", methods=("POST",))
    def delete_view(self) -> Any:
        key = parse_row_id(request.form.get("id"))
        user = None if key is None else db.session.get(User, key)
        if user is None:
            flash(_("That account no longer exists."), "error")
            return redirect(self.get_url(".index_view"))
        form = DeleteAccountForm()
        if "confirm" in request.form and form.validate_on_submit():
            email = user.email
            try:
                operations.delete_account(
                    user, actor=current_user, keep_content=form.content.data == "keep"
                )
            except services.AccountError as error:
                db.session.rollback()
                flash(str(error), "error")
            else:
                flash(_("The account %(address)s is deleted.", address=email), "success")
            return redirect(self.get_url(".index_view"))
        posts, comments = operations.account_content(user)
        return self.render(
            "admin/users/delete.html", model=user, form=form, posts=posts, comments=comments
        )

    # -- bulk actions ---------------------------------------------------------

    @action("activate", _l("Activate"), None)
    def action_activate(self, ids: Any) -> Any:
        return self.ask_for_input("activate", ids)

    @action("deactivate", _l("Deactivate"), None)
    def action_deactivate(self, ids: Any) -> Any:
        return self.ask_for_input("deactivate", ids)

    @action("set_role", _l("Change role"), None)
    def action_set_role(self, ids: Any) -> Any:
        return self.ask_for_input("set_role", ids)

    def apply_action(self, name: str, models: list[Any], form: Any) -> None:
        changed, refused = 0, []
        for user in models:
            try:
                if name == "set_role":
                    done = services.change_account(
                        user, actor=current_user, role=int(form.role.data)
                    )
                else:
                    done = services.change_account(
                        user,
                        actor=current_user,
                        status=USER.ACTIVE if name == "activate" else USER.INACTIVE,
                        reason=form.reason.data,
                        notify=form.notify.data,
                    )
            except services.AccountError as error:
                db.session.rollback()
                refused.append(f"{user.email}: {error}")
                continue
            changed += int(done)
        flash(_("%(count)s account(s) changed.", count=changed), "success")
        for message in refused:
            flash(message, "error")

    # -- sessions: where the account is signed in ------------------------------

    @expose("/sessions/end/", methods=("POST",))
    def end_sessions_view(self) -> Any:
        """End one session of an account (``session`` is its id) or all of them ("all")."""
        key = parse_row_id(request.form.get("id"))
        user = None if key is None else db.session.get(User, key)
        if user is None:
            flash(_("That account no longer exists."), "error")
            return redirect(self.get_url(".index_view"))
        back = redirect(self.get_url(".details_view", id=user.id))
        if not security.can(current_user, security.END_SESSIONS, user):
            abort(403)
        which = request.form.get("session", "")
        try:
            if which == "all":
                ended = sessions.end_sessions(user, actor=current_user)
                flash(
                    _(
                        "%(count)s session(s) of %(address)s ended.",
                        count=ended,
                        address=user.email,
                    ),
                    "success",
                )
            else:
                session_id = parse_row_id(which)
                if session_id is None:
                    raise sessions.SessionNotFound(which)
                device = sessions.end_session(user, session_id, actor=current_user)
                flash(
                    _(
                        "The session of %(address)s on %(device)s has ended.",
                        address=user.email,
                        device=device,
                    ),
                    "success",
                )
        except sessions.SessionNotFound:
            flash(_("That session has already ended."), "info")
        return back

    # -- two-step sign-in: an admin removes a lost authenticator ----------------

    @expose("/mfa/reset/", methods=("POST",))
    def reset_mfa_view(self) -> Any:
        """Remove another account's second factor; its sessions end (the gate decides who)."""
        key = parse_row_id(request.form.get("id"))
        user = None if key is None else db.session.get(User, key)
        if user is None:
            flash(_("That account no longer exists."), "error")
            return redirect(self.get_url(".index_view"))
        if not security.can(current_user, security.RESET_SECOND_FACTOR, user):
            abort(403)
        try:
            mfa.reset(user, actor=current_user)
        except mfa.SecondFactorError as error:
            flash(str(error), "info")
        else:
            flash(
                _(
                    "Two-step sign-in of %(address)s is reset and their sessions ended: "
                    "they sign in with their password and set it up again.",
                    address=user.email,
                ),
                "success",
            )
        return redirect(self.get_url(".details_view", id=user.id))

    # -- details: their content and their history -------------------------------

    def render(self, template: str, **kwargs: Any) -> str:
        model = kwargs.get("model")
        if template == self.details_template and isinstance(model, User):
            kwargs.update(self._history(model))
        return super().render(template, **kwargs)

    def _history(self, user: User) -> dict[str, Any]:
        posts = db.session.execute(
            select(Post).where(Post.author_id == user.id).order_by(Post.id.desc()).limit(10)
        ).scalars()
        comments = db.session.execute(
            select(Comment)
            .where(Comment.author_id == user.id)
            .order_by(Comment.created_at.desc())
            .limit(10)
        ).scalars()
        events = db.session.execute(
            select(AuditEvent)
            .where(AuditEvent.object_type == "user", AuditEvent.object_id == str(user.id))
            .order_by(AuditEvent.created_at.desc(), AuditEvent.id.desc())
            .limit(20)
        ).scalars()
        counts = operations.account_content(user)
        return {
            "sessions": sessions.of(user),
            "can_end_sessions": security.can(current_user, security.END_SESSIONS, user),
            "second_factor": mfa.is_enrolled(user),
            "can_reset_second_factor": security.can(
                current_user, security.RESET_SECOND_FACTOR, user
            ),
            "recent_posts": list(posts),
            "recent_comments": list(comments),
            "events": list(events),
            "post_total": counts[0],
            "comment_total": counts[1],
        }
