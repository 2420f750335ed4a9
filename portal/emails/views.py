"""Unsubscribe and email preferences: the links in the footer of broadcasts and notifications.

``/unsubscribe/<token>/`` answers a GET with a page and a button (mail
scanners follow links; a GET changes nothing) and a POST by stopping the
token's one category for its one address. That POST is the RFC 8058
one-click unsubscribe, which mail clients send without a session or a CSRF
token: the signed token is the proof, so it alone is exempt from CSRF.
"""

from __future__ import annotations

from flask import Blueprint
from flask import Response
from flask import flash
from flask import redirect
from flask import render_template
from flask import request
from flask import url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_login import login_required
from flask_wtf import FlaskForm
from werkzeug.wrappers import Response as BaseResponse
from wtforms import BooleanField

from portal.emails import constants as EMAIL
from portal.emails import suppressions
from portal.emails import unsubscribe
from portal.extensions import csrf
from portal.forms import ActionForm

bp = Blueprint("email_links", __name__)

CATEGORY_LABELS = {
    EMAIL.BROADCAST: _l("News and announcements from the site's staff"),
    EMAIL.NOTIFICATION: _l("Notifications, such as a new comment on my posts"),
}
ONE_CLICK_BODY = "List-Unsubscribe=One-Click"


@bp.after_request
def no_store(response: Response) -> Response:
    """These pages name an address: keep them out of every cache."""
    response.headers["Cache-Control"] = "no-store"
    return response


class PreferencesForm(FlaskForm):
    """One box per category a person may turn off; account mail is not among them."""

    broadcast = BooleanField(CATEGORY_LABELS[EMAIL.BROADCAST])
    notification = BooleanField(CATEGORY_LABELS[EMAIL.NOTIFICATION])

    def wanted(self) -> set[int]:
        boxes = {EMAIL.BROADCAST: self.broadcast, EMAIL.NOTIFICATION: self.notification}
        return {category for category, box in boxes.items() if box.data}

    def show(self, standing: suppressions.Standing) -> None:
        self.broadcast.data = standing.allows(EMAIL.BROADCAST)
        self.notification.data = standing.allows(EMAIL.NOTIFICATION)


def _invalid(message: str) -> tuple[str, int]:
    return render_template("users/token_invalid.html", message=message, kind="unsubscribe"), 400


@bp.route("/unsubscribe/<token:token>/", methods=["GET"])
def unsubscribe_page(token: str) -> str | tuple[str, int]:
    """Say what the link stops and offer the button; nothing changes on a GET."""
    try:
        address, category = unsubscribe.read_unsubscribe(token)
    except unsubscribe.LinkError as error:
        return _invalid(str(error))
    return render_template(
        "email_links/unsubscribe.html",
        address=address,
        label=CATEGORY_LABELS[category],
        done=not suppressions.standing(address).allows(category),
        form=ActionForm(),
        preferences_url=unsubscribe.preferences_url(address),
    )


@bp.route("/unsubscribe/<token:token>/", methods=["POST"], endpoint="unsubscribe")
@csrf.exempt
def one_click(token: str) -> str | tuple[str, int] | Response:
    """Stop the token's category for its address; safe to repeat, no session needed."""
    try:
        address, category = unsubscribe.read_unsubscribe(token)
    except unsubscribe.LinkError as error:
        if request.form.get("List-Unsubscribe") == "One-Click":
            return Response(str(error), status=400, mimetype="text/plain")
        return _invalid(str(error))
    client = request.form.get("List-Unsubscribe") == "One-Click"
    suppressions.unsubscribe(
        address,
        category,
        source=EMAIL.SOURCE_ONE_CLICK if client else EMAIL.SOURCE_LINK,
    )
    if client:
        # A mail client reads the status only.
        return Response(_("Unsubscribed."), mimetype="text/plain")
    return render_template(
        "email_links/unsubscribe.html",
        address=address,
        label=CATEGORY_LABELS[category],
        done=True,
        form=ActionForm(),
        preferences_url=unsubscribe.preferences_url(address),
    )


def _preferences(address: str, action: str) -> str | BaseResponse:
    form = PreferencesForm()
    standing = suppressions.standing(address)
    if form.validate_on_submit():
        try:
            changed = suppressions.set_preferences(
                address, form.wanted(), source=EMAIL.SOURCE_PREFERENCES
            )
        except suppressions.SuppressionError as error:
            flash(str(error), "error")
        else:
            flash(
                _("Your email preferences are saved.") if changed else _("Nothing changed."),
                "success",
            )
            return redirect(action)
    elif request.method == "GET":
        form.show(standing)
    return render_template(
        "email_links/preferences.html",
        form=form,
        address=address,
        standing=standing,
        action=action,
    )


@bp.route("/users/me/email-preferences/", methods=["GET", "POST"])
@login_required
def preferences() -> str | BaseResponse:
    """Choose which kinds of email the signed-in account's address gets."""
    return _preferences(current_user.email, url_for("email_links.preferences"))


@bp.route("/email-preferences/<token:token>/", methods=["GET", "POST"])
def token_preferences(token: str) -> str | BaseResponse | tuple[str, int]:
    """The same choice, from the link in a message's footer, without signing in."""
    try:
        address = unsubscribe.read_preferences(token)
    except unsubscribe.LinkError as error:
        return _invalid(str(error))
    return _preferences(address, url_for("email_links.token_preferences", token=token))
