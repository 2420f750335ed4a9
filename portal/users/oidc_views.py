"""Sign-in provider pages: sign in with a provider, link and unlink one.

Starting a flow is a GET (a link on the sign-in page): it changes no data,
only what this browser waits for, and the callback accepts only the state
this browser was given. Linking asks for the password first (a POST), then a
GET starts the round trip, because the pages' Content-Security-Policy lets a
form post only to this site, redirects included.
"""

from __future__ import annotations

from flask import Blueprint
from flask import Response
from flask import flash
from flask import g
from flask import redirect
from flask import render_template
from flask import request
from flask import url_for
from flask_babel import gettext as _
from flask_login import current_user
from flask_login import login_required
from werkzeug.wrappers import Response as BaseResponse

from portal.extensions import limiter
from portal.forms import ActionForm
from portal.urls import external_url
from portal.urls import is_safe_next
from portal.users import oidc
from portal.users.mfa_views import complete_sign_in
from portal.users.oidc_forms import LinkProviderForm
from portal.users.views import login_address_limit

bp = Blueprint("oidc", __name__, url_prefix="/users")


@bp.after_request
def no_store(response: Response) -> Response:
    """Keep the provider pages out of every cache, as every account page is."""
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.app_context_processor
def provider_helpers() -> dict[str, object]:
    """Let every page list the sign-in providers (the sign-in page shows a button each)."""
    return {"sign_in_providers": oidc.configured}


def _refused(message: str) -> None:
    # Flash the refusal and count it toward the address's sign-in limit.
    flash(message, "error")
    g.provider_refused = True


def _was_refused(response: BaseResponse) -> bool:
    # Like failed passwords, only refused answers count: a whole office behind
    # one address may sign in with a provider as often as it likes.
    return bool(g.get("provider_refused"))


def _callback_url(provider: oidc.Provider) -> str:
    # From the configured site address, never the request's Host: it is the
    # redirect URI registered at the provider.
    return external_url("oidc.callback", name=provider.name)


@bp.route("/providers/<name>/login/")
def login(name: str) -> BaseResponse:
    """Send the visitor to the provider to sign in."""
    target = request.args.get("next")
    next_url = target if target and is_safe_next(target) else None
    if current_user.is_authenticated:
        return redirect(next_url or url_for("users.profile"))
    try:
        provider = oidc.get_provider(name)
        url = oidc.start(
            provider, _callback_url(provider), purpose=oidc.PURPOSE_SIGN_IN, next_url=next_url
        )
    except oidc.ProviderError as error:
        flash(str(error), "error")
        return redirect(url_for("users.login"))
    return redirect(url)


@bp.route("/providers/<name>/callback/")
@limiter.limit(login_address_limit, scope="provider-callback", deduct_when=_was_refused)
def callback(name: str) -> BaseResponse:
    """Finish the flow the provider sent back: sign in, or link to the signed-in account."""
    try:
        provider = oidc.get_provider(name)
        flow = oidc.take_flow(provider)
    except oidc.ProviderError as error:
        _refused(str(error))
        return redirect(
            url_for("oidc.providers" if current_user.is_authenticated else "users.login")
        )
    if flow.purpose == oidc.PURPOSE_LINK:
        return _finish_link(provider, flow)
    return _finish_sign_in(provider, flow)


def _finish_sign_in(provider: oidc.Provider, flow: oidc.Flow) -> BaseResponse:
    """Sign in to the account the identity opens, by the linking rule."""
    try:
        outcome = oidc.sign_in(oidc.finish(provider, flow))
    except oidc.ProviderError as error:
        _refused(str(error))
        return redirect(url_for("users.login"))
    # The way every sign-in ends: a second factor, when enrolled, is still asked for.
    response = complete_sign_in(
        outcome.user, remember=False, next_url=flow.next_url or url_for("users.profile")
    )
    if outcome.created:
        flash(
            _("Your account is ready: you signed up with %(provider)s.", provider=provider.label),
            "success",
        )
    elif outcome.linked:
        flash(_("%(provider)s is now linked to your account.", provider=provider.label), "success")
    return response


def _finish_link(provider: oidc.Provider, flow: oidc.Flow) -> BaseResponse:
    """Link the identity to the account that confirmed its password and started the flow.

    The account is checked before the code is exchanged, so a refused answer
    spends nothing at the provider either.
    """
    if not current_user.is_authenticated:
        oidc.abandon(provider, flow)
        _refused(
            _("Sign in again to link %(provider)s. Nothing was changed.", provider=provider.label)
        )
        return redirect(url_for("users.login"))
    if current_user.id != flow.user_id:
        oidc.abandon(provider, flow)
        _refused(
            _(
                "That link with %(provider)s was started by another account. Nothing was changed.",
                provider=provider.label,
            )
        )
        return redirect(url_for("oidc.providers"))
    try:
        oidc.link(current_user, oidc.finish(provider, flow))
    except oidc.ProviderError as error:
        _refused(str(error))
    else:
        flash(_("%(provider)s is now linked to your account.", provider=provider.label), "success")
    return redirect(url_for("oidc.providers"))


@bp.route("/me/providers/")
@login_required
def providers() -> str:
    """List the sign-in providers, linked or not."""
    linked = {identity.provider: identity for identity in oidc.identities_of(current_user)}
    return render_template(
        "users/providers.html",
        providers=oidc.configured(),
        linked=linked,
        has_password=oidc.has_usable_password(current_user),
        form=ActionForm(),
    )


@bp.route("/me/providers/<name>/link/", methods=["GET", "POST"])
@login_required
def confirm_link(name: str) -> str | BaseResponse:
    """Ask for the password before linking a provider; then offer the way there."""
    try:
        provider = oidc.get_provider(name)
    except oidc.ProviderError as error:
        flash(str(error), "error")
        return redirect(url_for("oidc.providers"))
    form = LinkProviderForm()
    if form.validate_on_submit():
        try:
            oidc.confirm_password(current_user, provider, form.password.data)
        except oidc.ProviderError as error:
            form.password.errors = [*form.password.errors, str(error)]
        else:
            return redirect(url_for("oidc.confirm_link", name=provider.name))
    return render_template(
        "users/provider_link.html",
        provider=provider,
        form=form,
        granted=oidc.has_grant(current_user, provider),
        has_password=oidc.has_usable_password(current_user),
    )


@bp.route("/me/providers/<name>/start/")
@login_required
def start_link(name: str) -> BaseResponse:
    """Send the signed-in person to the provider to link it (after the password)."""
    try:
        provider = oidc.get_provider(name)
        oidc.take_grant(current_user, provider)
        url = oidc.start(
            provider, _callback_url(provider), purpose=oidc.PURPOSE_LINK, user=current_user
        )
    except oidc.ProviderError as error:
        flash(str(error), "error")
        return redirect(url_for("oidc.providers"))
    return redirect(url)


@bp.route("/me/providers/<name>/unlink/", methods=["POST"])
@login_required
def unlink(name: str) -> BaseResponse:
    """Unlink a provider, unless it is the account's only way to sign in."""
    form = ActionForm()
    if form.validate_on_submit():
        try:
            provider = oidc.get_provider(name)
            oidc.unlink(current_user, provider)
        except oidc.ProviderError as error:
            flash(str(error), "error")
        else:
            flash(
                _("%(provider)s is no longer linked to your account.", provider=provider.label),
                "success",
            )
    return redirect(url_for("oidc.providers"))
