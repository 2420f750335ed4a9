def test_home_page(client):
    response = client.get("/")
    assert response.status_code == 200


def test_the_bench_route_exists_only_when_enabled(make_app):
    assert make_app().test_client().get("/_bench/hello").status_code == 404
    response = make_app(BENCH_ROUTES=True).test_client().get("/_bench/hello")
    assert response.status_code == 200
    assert response.text == "hello"
    # The bare route still gets the same headers as every page.
    assert "Content-Security-Policy" in response.headers


def test_reading_pages_set_no_cookie_for_visitors(client):
    from tests import factories

    post = factories.PostFactory()
    factories.ApprovedCommentFactory(post=post)
    for path in ("/", "/posts/", f"/posts/{post.slug}/", f"/users/{post.author.handle}/"):
        response = client.get(path)
        assert response.status_code == 200, path
        # No form, so no CSRF token, so no session: a shared cache may keep the page.
        assert "Set-Cookie" not in response.headers, path
