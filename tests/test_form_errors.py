"""A form that comes back with errors says so at its top and ties each error to its field."""

from __future__ import annotations

import re


def test_errors_are_summarised_linked_and_described_by_their_fields(client, browser):
    response = browser.submit("/users/register/", {"name": "", "email": "", "password": ""})
    text = response.get_data(as_text=True)
    assert response.status_code == 200
    summary = text.split('<div class="error-summary" tabindex="-1" data-error-summary>', 1)[1]
    summary = summary.split("</div>", 1)[0]
    links = re.findall(r'<a href="#([\w-]+)">', summary)
    assert "email" in links and "password" in links
    for field in links:
        tag = re.search(rf'<input[^>]*\bid="{field}"[^>]*>', text).group(0)
        assert 'aria-invalid="true"' in tag, field
        described = re.search(r'aria-describedby="([^"]+)"', tag).group(1).split()
        for error_id in described:
            assert re.search(rf'<p class="(error|hint)" id="{error_id}">[^<]+</p>', text), error_id
        assert any(name.startswith(f"{field}-error-") for name in described), field


def test_a_form_without_errors_has_no_summary(client):
    text = client.get("/users/register/").get_data(as_text=True)
    assert "data-error-summary" not in text
    assert 'aria-invalid="false"' in text
    assert '<script src="/static/js/forms.' in text
