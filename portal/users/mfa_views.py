"""Second-factor pages: set up an authenticator app, sign in with its codes, turn it off.

Every sign-in (password or provider) ends in ``complete_sign_in``. An account
with a second factor is not signed in there: the sign-in is parked in the
Flask session for a few minutes, and the code page finishes it. A parked
sign-in is no session: ``current_user`` stays anonymous, so no page but the
code page itself treats the browser as signed in.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint
from flask import Response
from flask import current_app
from flask import flash
from flask import g
from flask import redirect
from flask import render_template
from flask import request
from flask import session
from flask import url_for
from flask.blueprints import BlueprintSetupState
from flask_babel import gettext as _
from flask_babel import ngettext
from flask_login import current_user
from flask_login import login_required
from werkzeug.wrappers import Response as BaseResponse

from portal import security
from portal.extensions import db
from portal.extensions import limiter
from portal.forms import ActionForm
from portal.i18n import N_
from portal.metrics import count_sign_in_failure
from portal.urls import is_safe_next
from portal.users import mfa
from portal.users.mfa_forms import CodeForm
from portal.users.mfa_forms import DisableForm
from portal.users.mfa_forms import EnrolForm
from portal.users.mfa_forms import StartForm
from portal.users.models import User
from portal.users.views import login_account_limit
from portal.users.views import login_address_limit
from portal.users.views import start_session

bp = Blueprint("mfa", __name__, url_prefix="/users")

# The Flask session key of a sign-in waiting for its code, and how long it waits.
PENDING_KEY = "mfa_pending"
PENDING_SECONDS = 5 * 60
# Attempts at a code, counted per account across the sign-in, disable and
# new-recovery-codes pages, and per client address on the sign-in page.
CODE_SCOPE = "mfa-code"
CODE_ADDRESS_SCOPE = "mfa-code-address"
# Fewer recovery codes than this left: the person is told to make new ones.
FEW_RECOVERY_CODES = 3

SIGN_IN_AGAIN = N_("Your sign-in has expired: please sign in again.")
ENROLLED = N_("Two-step sign-in is on. Keep your recovery codes somewhere safe.")
DISABLED = N_("Two-step sign-in is off: your password alone signs you in now.")
WELCOME = N_("Welcome back, %(name)s.")


@bp.record_once
def _install_check(state: BlueprintSetupState) -> None:
    """Let the gate ask whether this request's session passed the second factor."""
    state.app.extensions[security.SECOND_FACTOR_CHECK] = mfa.session_passed


@bp.after_request
def no_store(response: Response) -> Response:
    """Keep these pages (a secret, recovery codes) out of every cache."""
    response.headers["Cache-Control"] = "no-store"
    return response


# -- the parked sign-in ---------------------------------------------------------


def _park(user: User, *, remember: bool, next_url: str) -> None:
    session[PENDING_KEY] = {
        "user": user.id,
        # Any "end every session" (a password change, say) raises it: the parked
        # sign-in of an account whose sessions ended since is void.
        "version": user.session_version,
        "remember": remember,
        "next": next_url if is_safe_next(next_url) else url_for("users.profile"),
        "expires": mfa.now() + PENDING_SECONDS,
    }


def _pending() -> tuple[User, dict[str, Any]] | None:
    """Return the parked sign-in's account and details, if it still stands."""
    parked = session.get(PENDING_KEY)
    if not isinstance(parked, dict):
        return None
    try:
        expires = float(parked["expires"])
        user = db.session.get(User, int(parked["user"]))
        version = int(parked["version"])
    except (KeyError, TypeError, ValueError):
        user = None
    if (
        user is None
        or mfa.now() >= expires
        or not user.is_active
        or user.session_version != version
        or not mfa.is_enrolled(user)
    ):
        session.pop(PENDING_KEY, None)
        return None
    return user, parked


def _pending_account_key() -> str:
    found = session.get(PENDING_KEY)
    user_id = found.get("user") if isinstance(found, dict) else None
    return f"account:{user_id}"


def _own_account_key() -> str:
    return f"account:{current_user.id}" if current_user.is_authenticated else "account:-"


def _refuse_code() -> None:
    """Count this request toward the code limits: it tried a wrong code."""
    g.mfa_code_refused = True


def _code_refused(response: BaseResponse) -> bool:
    return bool(g.get("mfa_code_refused"))


def complete_sign_in(user: User, *, remember: bool, next_url: str) -> BaseResponse:
    """Finish a sign-in whose password (or provider) was right.

    An account with a second factor goes to the code page first; any other
    is signed in at once and sent to ``next_url``.
    """
    if not mfa.is_enrolled(user):
        start_session(user, remember=remember)
        flash(_(WELCOME, name=user.name), "success")
        return redirect(next_url)
    _park(user, remember=remember, next_url=next_url)
    return redirect(url_for("mfa.sign_in_code"))


@bp.route("/login/code/", methods=["GET", "POST"])
@limiter.shared_limit(
    login_address_limit, CODE_ADDRESS_SCOPE, methods=["POST"], deduct_when=_code_refused
)
@limiter.shared_limit(
    login_account_limit,
    CODE_SCOPE,
    key_func=_pending_account_key,
    methods=["POST"],
    deduct_when=_code_refused,
)
def sign_in_code() -> str | BaseResponse:
    """Ask a signing-in account for a code of its second factor, then sign it in."""
    found = _pending()
    if found is None:
        flash(_(SIGN_IN_AGAIN), "info")
        return redirect(url_for("users.login"))
    user, parked = found
    form = CodeForm()
    if form.validate_on_submit():
        try:
            accepted = mfa.verify_sign_in(user, form.code.data)
        except mfa.SecretUnreadable as error:
            form.code.errors = [*form.code.errors, str(error)]
        else:
            if accepted:
                start_session(user, remember=bool(parked.get("remember")), second_factor=True)
                flash(_(WELCOME, name=user.name), "success")
                _warn_if_few_codes(user)
                return redirect(str(parked["next"]))
            _refuse_code()
            count_sign_in_failure()
            form.code.errors = [*form.code.errors, mfa.WRONG_CODE]
    return render_template("users/login_code.html", form=form, cancel_form=ActionForm())


def _warn_if_few_codes(user: User) -> None:
    left = mfa.recovery_codes_left(user)
    if left < FEW_RECOVERY_CODES:
        flash(
            ngettext(
                "You have %(num)d recovery code left: make new ones from your two-step "
                "sign-in page.",
                "You have %(num)d recovery codes left: make new ones from your two-step "
                "sign-in page.",
                left,
            ),
            "info",
        )


@bp.route("/login/code/cancel/", methods=["POST"])
def cancel_sign_in() -> BaseResponse:
    """Drop the sign-in waiting for its code."""
    if ActionForm().validate_on_submit():
        session.pop(PENDING_KEY, None)
    return redirect(url_for("users.login"))


# -- the account's own pages ----------------------------------------------------


def _me() -> User:
    return current_user._get_current_object()


def _remembered() -> bool:
    """Tell whether this browser holds a remember-me cookie (kept when the session restarts)."""
    return current_app.config["REMEMBER_COOKIE_NAME"] in request.cookies


@bp.route("/me/mfa/")
@login_required
def settings() -> str:
    """Show the account's two-step sign-in: set it up, or manage it."""
    user = _me()
    if mfa.is_enrolled(user):
        return render_template(
            "users/mfa_settings.html",
            codes_left=mfa.recovery_codes_left(user),
            session_passed=mfa.session_passed(user),
            code_form=CodeForm(),
            disable_form=DisableForm(),
        )
    enrolment = mfa.pending_enrolment(user)
    if enrolment is not None:
        return _enrol_page(enrolment, EnrolForm())
    return _start_page(user, StartForm())


def _start_page(user: User, form: StartForm) -> str:
    return render_template("users/mfa_start.html", form=form, required=mfa.required_for(user))


def _enrol_page(enrolment: mfa.Enrolment, form: EnrolForm) -> str:
    return render_template(
        "users/mfa_enrol.html", enrolment=enrolment, form=form, cancel_form=ActionForm()
    )


@bp.route("/me/mfa/start/", methods=["POST"])
@login_required
@limiter.shared_limit(
    login_account_limit, CODE_SCOPE, key_func=_own_account_key, deduct_when=_code_refused
)
def start() -> str | BaseResponse:
    """Make a new secret for the account's authenticator app (in force once confirmed)."""
    user = _me()
    form = StartForm()
    if form.validate_on_submit():
        try:
            mfa.begin_enrolment(user, form.password.data)
        except mfa.SecondFactorError as error:
            _refuse_code()
            form.password.errors = [*form.password.errors, str(error)]
        else:
            return redirect(url_for("mfa.settings"))
    return _start_page(user, form)


@bp.route("/me/mfa/enrol/", methods=["POST"])
@login_required
@limiter.shared_limit(
    login_account_limit, CODE_SCOPE, key_func=_own_account_key, deduct_when=_code_refused
)
def enrol() -> str | BaseResponse:
    """Put the new secret in force with one code from the app; show the recovery codes once."""
    user = _me()
    enrolment = mfa.pending_enrolment(user)
    if enrolment is None:
        flash(_(mfa.NO_ENROLMENT), "error")
        return redirect(url_for("mfa.settings"))
    form = EnrolForm()
    if not form.validate_on_submit():
        return _enrol_page(enrolment, form)
    try:
        codes = mfa.confirm_enrolment(user, form.code.data)
    except mfa.SecondFactorError as error:
        _refuse_code()
        form.code.errors = [*form.code.errors, str(error)]
        return _enrol_page(enrolment, form)
    # A new session that has passed the second factor: the old one had not.
    start_session(user, remember=_remembered(), second_factor=True)
    flash(_(ENROLLED), "success")
    return render_template("users/mfa_recovery_codes.html", codes=codes)


@bp.route("/me/mfa/cancel/", methods=["POST"])
@login_required
def cancel_enrolment() -> BaseResponse:
    """Drop a set-up that was never confirmed."""
    if ActionForm().validate_on_submit():
        mfa.drop_pending_enrolment(_me())
    return redirect(url_for("mfa.settings"))


@bp.route("/me/mfa/recovery-codes/", methods=["POST"])
@login_required
@limiter.shared_limit(
    login_account_limit, CODE_SCOPE, key_func=_own_account_key, deduct_when=_code_refused
)
def new_recovery_codes() -> str | BaseResponse:
    """Replace the recovery codes after one good code; show the new ones once."""
    user = _me()
    form = CodeForm()
    if form.validate_on_submit():
        try:
            codes = mfa.regenerate_recovery_codes(user, form.code.data)
        except mfa.SecondFactorError as error:
            _refuse_code()
            flash(str(error), "error")
        else:
            flash(_("New recovery codes: the old ones no longer work."), "success")
            return render_template("users/mfa_recovery_codes.html", codes=codes)
    else:
        flash(_("Type a code to make new recovery codes."), "error")
    return redirect(url_for("mfa.settings"))


@bp.route("/me/mfa/disable/", methods=["POST"])
@login_required
@limiter.shared_limit(
    login_account_limit, CODE_SCOPE, key_func=_own_account_key, deduct_when=_code_refused
)
def disable() -> BaseResponse:
    """Turn two-step sign-in off; it takes the password and a code."""
    form = DisableForm()
    if form.validate_on_submit():
        try:
            mfa.disable(_me(), form.password.data, form.code.data)
        except mfa.SecondFactorError as error:
            _refuse_code()
            flash(str(error), "error")
        else:
            flash(_(DISABLED), "success")
            return redirect(url_for("users.profile"))
    else:
        flash(_("Type your password and a code to turn two-step sign-in off."), "error")
    return redirect(url_for("mfa.settings"))
