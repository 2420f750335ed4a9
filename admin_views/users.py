"""Accounts: staff look people up and (de)activate USER accounts; admins do the rest."""

from __future__ import annotations

from typing import Any

from flask import abort
from flask import flash
from flask import redirect
from flask import request
from flask_admin import expose
from flask_admin.actions import action
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
from portal import operations
from portal import security
from portal.audit import constants as AUDIT
from portal.audit.models import AuditEvent
from portal.comments.models import Comment
from portal.extensions import db
from portal.posts.models import Post
from portal.urls import parse_row_id
from portal.users import constants as USER
from portal.users import mfa
from portal.users import services
from portal.users import sessions
from portal.users.models import User

ROLE_CHOICES = [SelectChoice(str(value), label) for value, label in USER.ROLE.items()]
STATUS_CHOICES = [SelectChoice(str(value), label) for value, label in USER.STATUS.items()]


class InviteForm(FlaskForm):
    name = StringField("Name", validators=[DataRequired(), Length(max=USER.NAME_MAX_LENGTH)])
    email = EmailField("Email", validators=[DataRequired(), Length(max=USER.EMAIL_MAX_LENGTH)])
    role = SelectField("Role", choices=ROLE_CHOICES, default=str(USER.USER))


class AccountForm(FlaskForm):
    name = StringField("Name", validators=[DataRequired(), Length(max=USER.NAME_MAX_LENGTH)])
    role = SelectField("Role", choices=ROLE_CHOICES)
    status = SelectField("Status", choices=STATUS_CHOICES)


class DeactivateForm(FlaskForm):
    reason = TextAreaField(
        "Reason",
        validators=[InputRequired(), Length(max=USER.REASON_MAX_LENGTH)],
        description="Kept in the audit trail; included in the email if you send one.",
    )
    notify = BooleanField("Email each person that their account is disabled")


class ActivateForm(FlaskForm):
    reason = TextAreaField("Reason", validators=[Optional(), Length(max=USER.REASON_MAX_LENGTH)])
    notify = BooleanField("Email each person that their account is active")


class RoleForm(FlaskForm):
    role = SelectField("New role", choices=ROLE_CHOICES, validators=[InputRequired()])


class DeleteAccountForm(FlaskForm):
    content = RadioField(
        "Their posts and comments",
        choices=[
            SelectChoice("keep", "Keep them, shown as written by “Deleted user”"),
            SelectChoice("delete", "Delete them too"),
        ],
        default="keep",
        validators=[InputRequired()],
    )


_role = choice_label(USER.ROLE)
_status = status_badge(
    USER.STATUS, {USER.ACTIVE: "success", USER.NEW: "info", USER.INACTIVE: "secondary"}
)


class UserView(SecureModelView):
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
    column_labels = {"id": "#", "created_at": "Joined", "last_login_at": "Last sign-in"}
    column_searchable_list = ("email", "name")
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
        flash(f"Invitation sent to {user.email}.", "success")
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
            flash("That account no longer exists.", "error")
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
                flash(f"The account {email} is deleted.", "success")
            return redirect(self.get_url(".index_view"))
        posts, comments = operations.account_content(user)
        return self.render(
            "admin/users/delete.html", model=user, form=form, posts=posts, comments=comments
        )

    # -- bulk actions ---------------------------------------------------------

    @action("activate", "Activate", None)
    def action_activate(self, ids: Any) -> Any:
        return self.ask_for_input("activate", ids)

    @action("deactivate", "Deactivate", None)
    def action_deactivate(self, ids: Any) -> Any:
        return self.ask_for_input("deactivate", ids)

    @action("set_role", "Change role", None)
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
        flash(f"{changed} account(s) changed.", "success")
        for message in refused:
            flash(message, "error")

    # -- sessions: where the account is signed in ------------------------------

    @expose("/sessions/end/", methods=("POST",))
    def end_sessions_view(self) -> Any:
        """End one session of an account (``session`` is its id) or all of them ("all")."""
        key = parse_row_id(request.form.get("id"))
        user = None if key is None else db.session.get(User, key)
        if user is None:
            flash("That account no longer exists.", "error")
            return redirect(self.get_url(".index_view"))
        back = redirect(self.get_url(".details_view", id=user.id))
        if not security.can(current_user, security.END_SESSIONS, user):
            abort(403)
        which = request.form.get("session", "")
        try:
            if which == "all":
                ended = sessions.end_sessions(user, actor=current_user)
                flash(f"{ended} session(s) of {user.email} ended.", "success")
            else:
                session_id = parse_row_id(which)
                if session_id is None:
                    raise sessions.SessionNotFound(which)
                device = sessions.end_session(user, session_id, actor=current_user)
                flash(f"The session of {user.email} on {device} has ended.", "success")
        except sessions.SessionNotFound:
            flash("That session has already ended.", "info")
        return back

    # -- two-step sign-in: an admin removes a lost authenticator ----------------

    @expose("/mfa/reset/", methods=("POST",))
    def reset_mfa_view(self) -> Any:
        """Remove another account's second factor; its sessions end (the gate decides who)."""
        key = parse_row_id(request.form.get("id"))
        user = None if key is None else db.session.get(User, key)
        if user is None:
            flash("That account no longer exists.", "error")
            return redirect(self.get_url(".index_view"))
        if not security.can(current_user, security.RESET_SECOND_FACTOR, user):
            abort(403)
        try:
            mfa.reset(user, actor=current_user)
        except mfa.SecondFactorError as error:
            flash(str(error), "info")
        else:
            flash(
                f"Two-step sign-in of {user.email} is reset and their sessions ended: "
                "they sign in with their password and set it up again.",
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
