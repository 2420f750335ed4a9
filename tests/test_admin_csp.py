"""Every back-office page runs under the strict CSP: inline handlers only by hash."""

from __future__ import annotations

import base64
import hashlib
import html
import re

import pytest

from tests import factories


@pytest.fixture
def rows(app):
    user = factories.UserFactory()
    post = factories.PostFactory(author=user)
    comment = factories.CommentFactory(post=post, author=user)
    factories.EmailFactory()
    return {"user": user.id, "post": post.id, "comment": comment.id}


def _pages(rows):
    yield "/admin/"
    for endpoint in ("user", "post", "comment", "email", "audit"):
        yield f"/admin/{endpoint}/"
    yield f"/admin/user/details/?id={rows['user']}"
    yield f"/admin/user/edit/?id={rows['user']}"
    yield "/admin/user/new/"
    yield f"/admin/post/details/?id={rows['post']}"
    yield f"/admin/post/edit/?id={rows['post']}"
    yield f"/admin/comment/details/?id={rows['comment']}"
    yield f"/admin/comment/action/approve/?ids={rows['comment']}"
    yield f"/admin/user/action/deactivate/?ids={rows['user']}"


def test_every_inline_handler_on_every_admin_page_is_allowed_by_hash(client, auth, rows):
    factories.AdminFactory(email="root@example.com")
    auth.login("root@example.com")
    seen = set()
    for path in _pages(rows):
        response = client.get(path)
        assert response.status_code == 200, path
        policy = response.headers["Content-Security-Policy"]
        script_src = next(part for part in policy.split("; ") if part.startswith("script-src "))
        assert "'unsafe-inline'" not in script_src
        page = response.get_data(as_text=True)
        assert "<script>" not in page, f"{path} has a script without a nonce"
        handlers = set(re.findall(r' on[a-z]+="([^"]*)"', page))
        handlers |= set(re.findall(r' href="(javascript:[^"]*)"', page))
        for handler in handlers:
            digest = base64.b64encode(hashlib.sha256(html.unescape(handler).encode()).digest())
            assert f"'sha256-{digest.decode()}'" in script_src, (path, handler)
        seen |= handlers
    # The bulk actions of the new screens are among them, each allowed by its own hash.
    assert "return modelActions.execute('approve');" in seen
    assert "return modelActions.execute('deactivate');" in seen
