"""Return addresses: a screen only ever sends the browser to a path on this site.

Flask-Admin takes a return address from the ``url`` value of a request (its
query string or its form) in the create, edit, details, delete, export and
action views; it redirects there after the operation and links to it as
"List" and "Cancel". Its own check (``flask_admin.helpers.is_safe_url``)
resolves the address the way Python's ``urljoin`` does, not the way browsers
do: ``http:/evil.example`` or ``https:evil.example`` pass it and the browser
goes to the other host; one with a newline passes it and fails as a header.
The views read the value inside their bodies, past any hook, so the site's
own ``is_safe_next`` decides at the screen's door instead, in two steps that
each screen's blueprint runs (through the public ``create_blueprint``):

- before the view, every ``url`` value that is not a path on this site is
  replaced by the screen's index: Flask-Admin, and the links it renders,
  only ever see an address on this site;
- after the view, a redirect whose target is not a path on this site (from
  anywhere, present or future) is replaced by one to the screen's index.

Screens redirect with paths (``url_for`` without ``_external``), which pass.

Overrides of Flask-Admin internals: none.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from flask import Blueprint
from flask import redirect
from flask import request
from flask import url_for
from werkzeug.datastructures import ImmutableMultiDict
from werkzeug.datastructures import MultiDict
from werkzeug.wrappers import Response

from portal.urls import is_safe_next

if TYPE_CHECKING:
    from flask_admin import Admin
    from flask_admin import BaseView as _BaseView
else:
    _BaseView = object

# The request value Flask-Admin reads its return address from.
RETURN_URL = "url"


def _on_site(values: MultiDict[str, str], fallback: str) -> ImmutableMultiDict[str, str] | None:
    """``values`` with each foreign return address replaced by ``fallback``; None if none was."""
    targets = values.getlist(RETURN_URL)
    if all(is_safe_next(target) for target in targets):
        return None
    checked = MultiDict(values)
    checked.setlist(
        RETURN_URL, [target if is_safe_next(target) else fallback for target in targets]
    )
    return ImmutableMultiDict(checked)


class OnSiteRedirectsMixin(_BaseView):
    """A screen that reads, follows and links to return addresses on this site only."""

    def index_url(self) -> str:
        """The screen's first page: a model screen's list, or the screen itself."""
        name = "index_view" if hasattr(self, "index_view") else "index"
        return url_for(f"{self.endpoint}.{name}")

    def create_blueprint(self, admin: Admin) -> Blueprint:
        blueprint = super().create_blueprint(admin)
        blueprint.before_request(self._replace_foreign_return_url)
        blueprint.after_request(self._keep_redirect_on_site)
        return blueprint

    def _replace_foreign_return_url(self) -> None:
        args = _on_site(request.args, self.index_url())
        form = _on_site(request.form, self.index_url()) if request.method != "GET" else None
        if args is None and form is None:
            return
        # The request's parsed values, as every later reader (Flask-Admin's
        # views and templates included) sees them; ``values`` is rebuilt from them.
        if args is not None:
            request.args = args
        if form is not None:
            request.form = form
        request.__dict__.pop("values", None)

    def _keep_redirect_on_site(self, response: Response) -> Response:
        location = response.headers.get("Location")
        if location is None or not 300 <= response.status_code < 400 or is_safe_next(location):
            return response
        # A new response, not a new header: the old body links to the target too.
        return redirect(self.index_url(), code=response.status_code)
