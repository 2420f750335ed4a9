"""The moderation menu label counts what waits, and stops counting past its cap."""

from __future__ import annotations

from admin_views import menu
from tests import factories


def test_the_menu_says_how_many_comments_wait_and_caps_the_count(client, auth, monkeypatch):
    factories.StaffFactory(email="mod@example.com")
    post = factories.PostFactory()
    factories.CommentFactory.create_batch(4, post=post)
    factories.ApprovedCommentFactory(post=post)
    auth.login("mod@example.com")
    assert "Comments (4 waiting)" in client.get("/admin/").get_data(as_text=True)

    monkeypatch.setattr(menu, "MENU_COUNT_CAP", 3)
    assert "Comments (3+ waiting)" in client.get("/admin/").get_data(as_text=True)
