"""Your data: download it, or delete the account. Signed-in pages under /users/me/."""

from __future__ import annotations

from collections.abc import Iterable

from flask import Blueprint
from flask import Response
from flask import current_app
from flask import flash
from flask import redirect
from flask import render_template
from flask import session
from flask import stream_with_context
from flask import url_for
from flask_babel import gettext as _
from flask_login import current_user
from flask_login import login_required
from flask_login import logout_user
from flask_principal import AnonymousIdentity
from flask_principal import identity_changed
from werkzeug.wrappers import Response as BaseResponse

from portal.extensions import limiter
from portal.forms import ActionForm
from portal.privacy import constants as PRIVACY
from portal.privacy import services
from portal.privacy.forms import DeleteAccountForm
from portal.users import mfa
from portal.users.models import User
from portal.users.views import login_account_limit

bp = Blueprint("privacy", __name__, url_prefix="/users")


@bp.after_request
def no_store(response: Response) -> Response:
    """Keep these pages and files out of every cache."""
    response.headers["Cache-Control"] = "no-store"
    return response


def _me() -> User:
    user: User = current_user._get_current_object()
    return user


def _account_key() -> str:
    return f"close:{current_user.id}" if current_user.is_authenticated else "close:-"


def _refused(response: BaseResponse) -> bool:
    # A deletion that went through redirects; each refused try counts.
    return response.status_code != 302


def _attachment(body: Iterable[str] | Iterable[bytes], filename: str) -> Response:
    response = Response(body, mimetype="application/json")
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


@bp.route("/me/data/", methods=["POST"])
@login_required
def export() -> BaseResponse:
    """Download the account's data now, or have a large file built and a link emailed."""
    if not ActionForm().validate_on_submit():
        flash(_("This form has expired. Please try again."), "error")
        return redirect(url_for("users.profile"))
    user = _me()
    if services.is_large(user):
        _export, new = services.request_export(user)
        if new:
            flash(
                _(
                    "Your data is being gathered. "
                    "We will email %(address)s a link when it is ready.",
                    address=user.email,
                ),
                "info",
            )
        else:
            flash(_("Your data is already being gathered: the link is on its way."), "info")
        return redirect(url_for("users.profile"))
    chunks = stream_with_context(services.iter_export(user))
    return _attachment(chunks, services.export_filename(user))


@bp.route("/me/data/<token:token>/")
@login_required
def download_export(token: str) -> BaseResponse | tuple[str, int]:
    """Download a file built in the background, from the link in its email."""
    user = _me()
    try:
        built = services.export_for_download(token, user)
    except services.PrivacyError as error:
        return render_template("users/token_invalid.html", message=str(error), kind="data"), 400
    return _attachment(services.export_chunks(built), services.export_filename(user))


@bp.route("/me/delete/", methods=["GET", "POST"])
@login_required
@limiter.limit(login_account_limit, key_func=_account_key, methods=["POST"], deduct_when=_refused)
def delete_account() -> str | BaseResponse:
    """Delete the account after its password (and code); its content goes or stays."""
    user = _me()
    form = DeleteAccountForm()
    enrolled = mfa.is_enrolled(user)
    if form.validate_on_submit():
        keep = form.content.data == PRIVACY.KEEP_CONTENT
        try:
            address = services.close_account(
                user, form.password.data or "", form.code.data, keep_content=keep
            )
        except services.PrivacyError as error:
            flash(str(error), "error")
        else:
            logout_user()
            session.clear()
            identity_changed.send(
                current_app._get_current_object(),  # type: ignore[attr-defined]
                identity=AnonymousIdentity(),
            )
            flash(
                _(
                    "Your account is deleted. A confirmation is on its way to %(address)s.",
                    address=address,
                ),
                "success",
            )
            return redirect(url_for("site.index"))
    return render_template(
        "users/delete_account.html",
        form=form,
        enrolled=enrolled,
        content=services.account_content(user),
    )
