"""Account pages: register, confirm, sign in and out, recover, profile."""

from __future__ import annotations

from flask import Blueprint
from flask import Response
from flask import abort
from flask import current_app
from flask import flash
from flask import redirect
from flask import render_template
from flask import request
from flask import session
from flask import url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_babel import ngettext
from flask_login import current_user
from flask_login import login_required
from flask_login import login_user
from flask_login import logout_user
from flask_principal import AnonymousIdentity
from flask_principal import Identity
from flask_principal import identity_changed
from werkzeug.wrappers import Response as BaseResponse

from portal.extensions import limiter
from portal.forms import ActionForm
from portal.i18n import N_
from portal.metrics import count_sign_in_failure
from portal.urls import is_safe_next
from portal.users import events
from portal.users import services
from portal.users import sessions
from portal.users import tokens
from portal.users.auth import settle_session
from portal.users.forms import CaptchaRegisterForm
from portal.users.forms import ChangePasswordForm
from portal.users.forms import ForgotPasswordForm
from portal.users.forms import LoginForm
from portal.users.forms import ProfileForm
from portal.users.forms import RegisterForm
from portal.users.forms import ResetPasswordForm
from portal.users.models import User

bp = Blueprint("users", __name__, url_prefix="/users")
# Every request with a session cookie loads its session first (see settle_session).
bp.before_app_request(settle_session)

LOGIN_FAILED = N_("The email address or password is not correct.")
REGISTERED = N_(
    "Thank you. We sent a message to %(address)s: follow the link in it to confirm "
    "your address, then sign in."
)
# Buckets shared by every page that mails an address a visitor typed.
RECIPIENT_SCOPE = "mail-recipient"
SENDER_SCOPE = "mail-account"


@bp.after_request
def no_store(response: Response) -> Response:
    """Keep account pages out of every cache, shared or private."""
    response.headers["Cache-Control"] = "no-store"
    return response


def _login_failed(response: BaseResponse) -> bool:
    # A successful sign-in redirects; only failures count toward the limits.
    return response.status_code != 302


def _account_key() -> str:
    return "account:" + (request.form.get("email") or "").strip().lower()


def login_address_limit() -> str:
    """Sign-in attempts per client address (the password, code and provider steps)."""
    return str(current_app.config["LOGIN_LIMIT_PER_ADDRESS"])


def login_account_limit() -> str:
    """Sign-in attempts per account (the password and code steps)."""
    return str(current_app.config["LOGIN_LIMIT_PER_ACCOUNT"])


def _email_limit() -> str:
    return str(current_app.config["ACCOUNT_EMAIL_LIMIT"])


def _recipient_limit() -> str:
    return str(current_app.config["ACCOUNT_EMAIL_LIMIT_PER_RECIPIENT"])


def _sender_limit() -> str:
    return str(current_app.config["ACCOUNT_EMAIL_LIMIT_PER_ACCOUNT"])


def _redirected(response: BaseResponse) -> bool:
    # A form that was refused (a typo, a weak password) sent nothing: it does not count.
    return response.status_code == 302


def _recipient(address: str) -> str:
    # Counted as the address the message would go to, so case, spacing and
    # other spellings of one address share a count.
    try:
        address = services.clean_email(address)
    except services.AccountError:
        address = address.strip()
    return "recipient:" + address.lower()


def _typed_recipient_key() -> str:
    return _recipient(request.form.get("email") or "")


def _own_recipient_key() -> str:
    return _recipient(current_user.email if current_user.is_authenticated else "")


def _sender_key() -> str:
    return f"user:{current_user.id}" if current_user.is_authenticated else "user:-"


def _signed_out() -> bool:
    # login_required sends these away before anything is mailed.
    return not current_user.is_authenticated


def _keeps_email() -> bool:
    """Tell whether a profile form leaves the address alone (renames count toward nothing)."""
    if not current_user.is_authenticated:
        return True
    typed = (request.form.get("email") or "").strip().lower()
    return typed == current_user.email.lower()


def _next_url(default: str) -> str:
    target = request.args.get("next")
    return target if target and is_safe_next(target) else default


def start_session(user: User, *, remember: bool = False, second_factor: bool = False) -> None:
    """Sign ``user`` in on a new session record, so nothing from before carries over.

    A session this browser had (another account's, say) ends first. The
    cookie then carries only the new session's token.
    """
    sessions.end_current()
    session.clear()
    sessions.start(
        user,
        address=request.remote_addr,
        user_agent=request.headers.get("User-Agent"),
        second_factor=second_factor,
    )
    login_user(user, remember=remember, fresh=True)
    identity_changed.send(
        current_app._get_current_object(),  # type: ignore[attr-defined]
        identity=Identity(user.id),
    )
    # Recorded once signed in, so the event and its new-device mail commit with record_login.
    events.signed_in(user, second_factor=second_factor)
    services.record_login(user)


def _me() -> User:
    """The signed-in account itself: the gate names things by their class, not a proxy's."""
    return current_user._get_current_object()


def _end_session() -> None:
    """Sign this browser out: its session record goes, then what the cookie held."""
    sessions.end_current()
    logout_user()
    session.clear()
    identity_changed.send(
        current_app._get_current_object(),  # type: ignore[attr-defined]
        identity=AnonymousIdentity(),
    )


@bp.route("/register/", methods=["GET", "POST"])
@limiter.limit(_email_limit, methods=["POST"], scope="account-email", deduct_when=_redirected)
@limiter.shared_limit(
    _recipient_limit,
    RECIPIENT_SCOPE,
    key_func=_typed_recipient_key,
    methods=["POST"],
    deduct_when=_redirected,
)
def register() -> str | BaseResponse:
    """Create a NEW account and queue its confirmation email; then the person signs in.

    A taken address gets the same answer (its owner is emailed instead), so
    this page never tells whether an address has an account.
    """
    if current_user.is_authenticated:
        return redirect(url_for("users.profile"))
    form_class = CaptchaRegisterForm if current_app.config["RECAPTCHA_PUBLIC_KEY"] else RegisterForm
    form = form_class()
    if form.validate_on_submit():
        try:
            address = services.register(form.name.data, form.email.data, form.password.data)
        except services.AccountError as error:
            flash(str(error), "error")
        else:
            flash(_(REGISTERED, address=address), "success")
            return redirect(url_for("users.login"))
    return render_template("users/register.html", form=form)


@bp.route("/confirm/<token:token>/", methods=["GET", "POST"])
def confirm(token: str) -> ResponseReturnValue:
    """Confirm an address: GET shows the button, POST does it (mail scanners only GET)."""
    form = ActionForm()
    try:
        user = services.check_confirmation(token)
    except tokens.TokenError as error:
        return render_template("users/token_invalid.html", message=str(error), kind="confirm"), 400
    if form.validate_on_submit():
        services.confirm_account(token)
        flash(_("Thank you: your email address is confirmed."), "success")
        return redirect(
            url_for("users.profile" if current_user.is_authenticated else "users.login")
        )
    return render_template("users/confirm.html", form=form, user=user)


@bp.route("/confirm/resend/", methods=["POST"])
@login_required
@limiter.limit(_email_limit, scope="account-email")
@limiter.shared_limit(
    _recipient_limit, RECIPIENT_SCOPE, key_func=_own_recipient_key, exempt_when=_signed_out
)
@limiter.shared_limit(_sender_limit, SENDER_SCOPE, key_func=_sender_key, exempt_when=_signed_out)
def resend_confirmation() -> BaseResponse:
    """Queue a new confirmation link to the signed-in account's address."""
    form = ActionForm()
    if form.validate_on_submit():
        try:
            services.resend_confirmation(current_user)
        except services.AccountError as error:
            flash(str(error), "info")
        else:
            flash(
                _("We sent a new confirmation link to %(address)s.", address=current_user.email),
                "success",
            )
    return redirect(url_for("users.profile"))


@bp.route("/login/", methods=["GET", "POST"])
@limiter.limit(
    login_address_limit, methods=["POST"], scope="login-address", deduct_when=_login_failed
)
@limiter.limit(
    login_account_limit,
    key_func=_account_key,
    methods=["POST"],
    scope="login-account",
    deduct_when=_login_failed,
)
def login() -> str | BaseResponse:
    """Sign in with email and password."""
    if current_user.is_authenticated:
        return redirect(_next_url(url_for("users.profile")))
    form = LoginForm()
    if form.validate_on_submit():
        try:
            user = services.authenticate(form.email.data, form.password.data)
        except services.AccountDisabled as error:
            count_sign_in_failure()
            flash(str(error), "error")
        else:
            if user is None:
                count_sign_in_failure()
                flash(_(LOGIN_FAILED), "error")
            else:
                # Imported here: the second-factor pages build on this module.
                from portal.users.mfa_views import complete_sign_in

                return complete_sign_in(
                    user,
                    remember=bool(form.remember.data),
                    next_url=_next_url(url_for("users.profile")),
                )
    return render_template("users/login.html", form=form)


@bp.route("/logout/", methods=["POST"])
def logout() -> BaseResponse:
    """Sign out of this browser."""
    form = ActionForm()
    if form.validate_on_submit() and current_user.is_authenticated:
        # Recorded while still signed in; ending the session commits it.
        events.signed_out(_me())
        _end_session()
        flash(_("You are signed out."), "info")
    return redirect(url_for("site.index"))


@bp.route("/forgot/", methods=["GET", "POST"])
@limiter.limit(_email_limit, methods=["POST"], scope="account-email")
@limiter.shared_limit(
    _recipient_limit,
    RECIPIENT_SCOPE,
    key_func=_typed_recipient_key,
    methods=["POST"],
    deduct_when=_redirected,
)
def forgot_password() -> str | BaseResponse:
    """Ask for a password reset link; the answer is the same for every address."""
    form = ForgotPasswordForm()
    if form.validate_on_submit():
        services.request_password_reset(form.email.data)
        flash(
            _("If an account uses that address, a link to reset its password is on its way."),
            "info",
        )
        return redirect(url_for("users.login"))
    return render_template("users/forgot.html", form=form)


@bp.route("/reset/<token:token>/", methods=["GET", "POST"])
def reset_password(token: str) -> ResponseReturnValue:
    """Choose a new password from a reset link."""
    try:
        user = services.check_reset(token)
    except (tokens.TokenError, services.AccountDisabled) as error:
        return render_template("users/token_invalid.html", message=str(error), kind="reset"), 400
    form = ResetPasswordForm(user_inputs=(user.name, user.email))
    if form.validate_on_submit():
        try:
            services.reset_password(token, form.password.data)
        except (tokens.TokenError, services.AccountError) as error:
            flash(str(error), "error")
        else:
            _end_session()
            flash(_("Your password is changed. Sign in with the new one."), "success")
            return redirect(url_for("users.login"))
    return render_template("users/reset.html", form=form)


@bp.route("/me/")
@login_required
def profile() -> str:
    """Show the signed-in account and its recent security events."""
    return render_template(
        "users/profile.html",
        user=current_user,
        form=ActionForm(),
        security_events=events.recent(_me()),
    )


@bp.route("/me/edit/", methods=["GET", "POST"])
@login_required
# Every post that asks for a new address counts, refused or not: each one
# that is accepted mails the typed address and the current one.
@limiter.shared_limit(
    _recipient_limit,
    RECIPIENT_SCOPE,
    key_func=_typed_recipient_key,
    methods=["POST"],
    exempt_when=_keeps_email,
)
@limiter.shared_limit(
    _sender_limit, SENDER_SCOPE, key_func=_sender_key, methods=["POST"], exempt_when=_keeps_email
)
def edit_profile() -> str | BaseResponse:
    """Change the name now, and the email address once the new one is confirmed.

    A taken address gets the same answer as a free one (its owner is told instead).
    """
    form = ProfileForm(obj=current_user)
    if form.validate_on_submit():
        try:
            settings = (
                form.name.data,
                form.notify_comments.data,
                form.notify_new_device.data,
                form.locale.data or None,
                form.timezone.data or None,
            )
            if settings != (
                current_user.name,
                current_user.notify_comments,
                current_user.notify_new_device,
                current_user.locale,
                current_user.timezone,
            ):
                services.update_profile(
                    current_user,
                    form.name.data,
                    notify_comments=form.notify_comments.data,
                    notify_new_device=form.notify_new_device.data,
                    locale=form.locale.data,
                    timezone=form.timezone.data,
                )
                flash(_("Your profile is updated."), "success")
            if form.email.data.lower() != current_user.email.lower():
                address = services.request_email_change(current_user, form.email.data)
                flash(
                    _(
                        "We sent a link to %(address)s. Your address changes when you follow it.",
                        address=address,
                    ),
                    "info",
                )
        except services.AccountError as error:
            form.email.errors = [*form.email.errors, str(error)]
        else:
            return redirect(url_for("users.profile"))
    return render_template("users/edit.html", form=form)


@bp.route("/me/email/<token:token>/", methods=["GET", "POST"])
def change_email(token: str) -> ResponseReturnValue:
    """Confirm a new email address from the link sent to it."""
    form = ActionForm()
    try:
        user, address = services.check_email_change(token)
    except tokens.TokenError as error:
        return render_template("users/token_invalid.html", message=str(error), kind="email"), 400
    if form.validate_on_submit():
        try:
            services.confirm_email_change(token)
        except (tokens.TokenError, services.AccountError) as error:
            flash(str(error), "error")
        else:
            flash(_("Your email address is now %(address)s.", address=address), "success")
            return redirect(
                url_for("users.profile" if current_user.is_authenticated else "users.login")
            )
    return render_template("users/change_email.html", form=form, user=user, address=address)


@bp.route("/me/password/", methods=["GET", "POST"])
@login_required
def change_password() -> str | BaseResponse:
    """Change the password; every other session ends."""
    form = ChangePasswordForm(user_inputs=(current_user.name, current_user.email))
    if form.validate_on_submit():
        try:
            services.change_password(
                current_user,
                form.current_password.data,
                form.password.data,
                keep=sessions.current_id(),
            )
        except services.AccountError as error:
            form.current_password.errors = [*form.current_password.errors, str(error)]
        else:
            flash(
                _("Your password is changed. Other devices have been signed out."),
                "success",
            )
            return redirect(url_for("users.profile"))
    return render_template("users/password.html", form=form)


@bp.route("/me/logout-everywhere/", methods=["POST"])
@login_required
def logout_everywhere() -> BaseResponse:
    """End every other session of this account."""
    form = ActionForm()
    if form.validate_on_submit():
        services.logout_everywhere(_me(), keep=sessions.current_id())
        flash(_("Every other session of your account has been signed out."), "success")
    return redirect(url_for("users.profile"))


# -- where you're signed in -----------------------------------------------------


@bp.route("/me/sessions/")
@login_required
def session_list() -> str:
    """List every session of the account: device, address, when it began and was last active."""
    return render_template(
        "users/sessions.html",
        sessions=sessions.of(current_user),
        current_id=sessions.current_id(),
        form=ActionForm(),
    )


@bp.route("/me/sessions/<int:session_id>/end/", methods=["POST"])
@login_required
def end_session(session_id: int) -> BaseResponse:
    """End one session of the account; ending this browser's own signs it out."""
    form = ActionForm()
    if form.validate_on_submit():
        this_browser = session_id == sessions.current_id()
        try:
            ended = sessions.end_session(_me(), session_id, actor=_me())
        except sessions.SessionNotFound:
            abort(404)
        if this_browser:
            _end_session()
            flash(_("You are signed out."), "info")
            return redirect(url_for("site.index"))
        flash(_("The session on %(device)s has ended.", device=ended), "success")
    return redirect(url_for("users.session_list"))


@bp.route("/me/sessions/end-others/", methods=["POST"])
@login_required
def end_other_sessions() -> BaseResponse:
    """End every session of the account but this browser's."""
    form = ActionForm()
    if form.validate_on_submit():
        ended = services.logout_everywhere(_me(), keep=sessions.current_id())
        flash(
            ngettext("%(num)d other session ended.", "%(num)d other sessions ended.", ended),
            "success",
        )
    return redirect(url_for("users.session_list"))
