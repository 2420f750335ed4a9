"""/metrics: what it counts, who may read it, and one view over many processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from prometheus_client.multiprocess import mark_process_dead
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.exc import OperationalError

from config import ConfigurationError
from config import config_for
from config import production_problems
from config.settings import parse_metrics_allow
from portal import metrics
from portal.database import utcnow
from portal.emails import constants as EMAIL
from portal.emails.metrics import QueueCollector
from portal.emails.queue import deliver_batch
from portal.extensions import db
from tests import factories
from tests.helpers import sign_in
from tests.helpers import statements
from tests.smtp_server import SMTPServer
from tests.smtp_server import smtp_server

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "metrics-token-" + "7" * 32
BEARER = {"Authorization": f"Bearer {TOKEN}"}

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Samples:
    """Every sample of an exposition, keyed by name and labels."""
    found: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return found


def value(samples: Samples, name: str, **labels: str) -> float:
    """One sample's value; a labelled child not created yet reads as 0."""
    return samples.get((name, frozenset(labels.items())), 0.0)


def delta(before: Samples, after: Samples, name: str, **labels: str) -> float:
    """How much one sample moved between two scrapes."""
    return value(after, name, **labels) - value(before, name, **labels)


def scrape(client: FlaskClient, **headers: str) -> Samples:
    """Read /metrics with the token; fail unless it is served."""
    response = client.get("/metrics", headers={**BEARER, **headers})
    assert response.status_code == 200, response.status_code
    return parse(response.get_data(as_text=True))


@pytest.fixture
def scraper(app: Flask) -> Flask:
    """The app, with a token the tests scrape with."""
    app.config["METRICS_TOKEN"] = TOKEN
    return app


@pytest.fixture
def people() -> dict[str, Any]:
    return {
        "user": factories.UserFactory(email="uma@example.com"),
        "staff": factories.StaffFactory(email="sam@example.com"),
        "admin": factories.AdminFactory(email="ada@example.com"),
    }


# -- what is counted -------------------------------------------------------------


def test_a_page_hit_is_counted_by_endpoint_and_status_and_timed(scraper, client):
    before = scrape(client)

    assert client.get("/posts/").status_code == 200
    assert client.get("/posts/").status_code == 200
    assert client.get("/posts/no-such-post-7f3a/").status_code == 404
    assert client.get("/nowhere-7f3a/").status_code == 404

    response = client.get("/metrics", headers=BEARER)
    after = parse(response.get_data(as_text=True))
    requests = "portal_http_requests_total"
    assert delta(before, after, requests, endpoint="posts.index", status="200") == 2
    assert delta(before, after, requests, endpoint="posts.detail", status="404") == 1
    assert delta(before, after, requests, endpoint=metrics.UNMATCHED, status="404") == 1
    timed = "portal_http_request_duration_seconds"
    assert delta(before, after, f"{timed}_count", endpoint="posts.index") == 2
    assert delta(before, after, f"{timed}_sum", endpoint="posts.index") > 0
    everything = value(after, f"{timed}_bucket", endpoint="posts.index", le="+Inf")
    assert everything == value(after, f"{timed}_count", endpoint="posts.index")
    # Labels name the URL rule, never the path a visitor typed.
    assert "7f3a" not in response.get_data(as_text=True)


def test_a_failed_sign_in_is_counted_and_a_successful_one_is_not(scraper, client, auth):
    factories.UserFactory(email="ann@example.com")
    factories.InactiveUserFactory(email="off@example.com")
    name = "portal_sign_in_failures_total"
    before = value(scrape(client), name)

    assert auth.login("ann@example.com", "not-the-password-1").status_code == 200
    assert auth.login("nobody@example.com", "not-the-password-1").status_code == 200
    assert auth.login("off@example.com").status_code == 200
    assert value(scrape(client), name) == before + 3

    assert auth.login("ann@example.com").status_code == 302
    assert value(scrape(client), name) == before + 3


def test_a_rate_limit_refusal_is_counted_under_its_endpoint(scraper, client, auth):
    scraper.config["LOGIN_LIMIT_PER_ADDRESS"] = "1 per minute"
    before = scrape(client)

    assert auth.login("ann@example.com", "not-the-password-1").status_code == 200
    assert auth.login("ann@example.com", "not-the-password-1").status_code == 429

    after = scrape(client)
    assert delta(before, after, "portal_rate_limit_refusals_total", endpoint="users.login") == 1
    requests = "portal_http_requests_total"
    assert delta(before, after, requests, endpoint="users.login", status="429") == 1


@pytest.fixture
def smtp() -> Iterator[SMTPServer]:
    with smtp_server() as server:
        yield server


def test_sent_failed_and_retried_deliveries_are_counted(scraper, client, smtp):
    scraper.config.update(
        MAIL_TRANSPORT="smtp", MAIL_SERVER=smtp.host, MAIL_PORT=smtp.port, MAIL_TIMEOUT=5
    )
    smtp.handler.refuse("gone@example.com", "550 5.1.1 No such user")
    smtp.handler.refuse("busy@example.com", "451 4.7.1 Try again later")
    factories.EmailFactory(to_address="one@example.com")
    factories.EmailFactory(to_address="two@example.com")
    factories.EmailFactory(to_address="gone@example.com")
    factories.EmailFactory(to_address="busy@example.com")
    before = scrape(client)

    result = deliver_batch()

    assert (result.sent, result.failed, result.retried) == (2, 1, 1)
    after = scrape(client)
    for name, more in (
        ("portal_emails_sent_total", 2),
        ("portal_emails_failed_total", 1),
        ("portal_emails_retried_total", 1),
    ):
        assert delta(before, after, name) == more, name


def test_the_queue_is_read_by_state_with_the_oldest_queued_age(scraper, client):
    now = utcnow()
    factories.EmailFactory(state=EMAIL.QUEUED, created_at=now - timedelta(hours=2))
    factories.EmailFactory(state=EMAIL.QUEUED, created_at=now - timedelta(minutes=5))
    factories.EmailFactory(state=EMAIL.SENDING, created_at=now - timedelta(days=3))
    factories.EmailFactory.create_batch(3, state=EMAIL.SENT, created_at=now - timedelta(days=9))
    factories.EmailFactory(state=EMAIL.FAILED)

    with statements() as seen:
        samples = scrape(client)

    # The whole scrape, queue included, is one aggregate query.
    assert len(seen) == 1, seen
    depth = {
        name: value(samples, "portal_email_queue_messages", state=name)
        for name in EMAIL.STATE.values()
    }
    assert depth == {"queued": 2, "sending": 1, "sent": 3, "failed": 1, "cancelled": 0}
    age = value(samples, "portal_email_queue_oldest_age_seconds")
    assert 2 * 3600 <= age < 2 * 3600 + 60
    assert value(samples, "portal_email_queue_up") == 1


def test_an_empty_queue_has_every_state_at_zero_and_no_age(scraper, client):
    samples = scrape(client)
    for name in EMAIL.STATE.values():
        assert ("portal_email_queue_messages", frozenset({("state", name)})) in samples
        assert value(samples, "portal_email_queue_messages", state=name) == 0
    assert value(samples, "portal_email_queue_oldest_age_seconds") == 0


def test_a_database_that_does_not_answer_reports_the_queue_down(app, monkeypatch):
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise OperationalError("SELECT", {}, Exception("connection refused"))

    monkeypatch.setattr(db.session, "execute", refuse)
    families = {family.name: family for family in QueueCollector().collect()}

    assert list(families) == ["portal_email_queue_up"]
    assert families["portal_email_queue_up"].samples[0].value == 0


def test_metrics_exist_once_per_process_however_many_apps(scraper, client, make_app):
    # Building apps registers no metric again (that would raise "Duplicated timeseries").
    other = make_app()
    make_app()
    name = "portal_http_requests_total"
    before = value(scrape(client), name, endpoint="site.healthz", status="200")

    assert other.test_client().get("/healthz").status_code == 200

    # One process, one set of counters: the other app's request shows here too.
    assert value(scrape(client), name, endpoint="site.healthz", status="200") == before + 1


# -- who may read it -------------------------------------------------------------


def missing_page(client: FlaskClient, method: str = "GET") -> tuple[int, str | None, str]:
    """What a path that does not exist answers: status, Allow header, heading."""
    response = client.open("/metrics-not-here", method=method)
    return response.status_code, response.headers.get("Allow"), heading(response)


def heading(response: Any) -> str:
    page = response.get_data(as_text=True)
    return page.partition("<h1")[2].partition("</h1>")[0]


@pytest.mark.parametrize("role", [None, "user", "staff", "admin"])
def test_without_token_or_allowed_address_every_role_finds_nothing(
    scraper, client, auth, people, role
):
    sign_in(auth, people, role)
    if role is not None:
        assert client.get("/users/me/").status_code == 200  # really signed in

    response = client.get("/metrics")

    assert response.status_code == 404
    assert (404, None, heading(response)) == missing_page(client)
    assert "portal_" not in response.get_data(as_text=True)


@pytest.mark.parametrize("role", [None, "user", "staff", "admin"])
def test_with_the_token_every_role_reads_it(scraper, client, auth, people, role):
    sign_in(auth, people, role)

    response = client.get("/metrics", headers=BEARER)

    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert response.headers["Cache-Control"] == "no-store"
    assert "portal_http_requests_total" in response.get_data(as_text=True)


@pytest.mark.parametrize(
    "authorization",
    [
        f"Bearer {TOKEN}x",
        f"Bearer {TOKEN[:-1]}",
        f"Basic {TOKEN}",
        TOKEN,
        "Bearer ",
        "",
    ],
)
def test_a_wrong_token_finds_nothing(scraper, client, authorization):
    response = client.get("/metrics", headers={"Authorization": authorization})
    assert response.status_code == 404


def test_the_scheme_is_read_without_regard_to_case(scraper, client):
    response = client.get("/metrics", headers={"Authorization": f"bearer {TOKEN}"})
    assert response.status_code == 200


@pytest.mark.parametrize("token", [None, ""])
def test_no_token_configured_lets_no_bearer_in(app, client, token):
    app.config["METRICS_TOKEN"] = token
    for header in ("Bearer ", "Bearer None", "Bearer"):
        assert client.get("/metrics", headers={"Authorization": header}).status_code == 404


@pytest.mark.parametrize(
    ("allowed", "address", "status"),
    [
        (["10.20.0.0/16"], "10.20.3.4", 200),
        (["10.20.0.0/16"], "10.21.3.4", 404),
        (["192.0.2.7"], "192.0.2.7", 200),
        (["192.0.2.7"], "192.0.2.8", 404),
        (["192.0.2.7"], "::ffff:192.0.2.7", 200),
        (["2001:db8::/32"], "2001:db8::1", 200),
        (["2001:db8::/32"], "2001:db9::1", 404),
        ([], "127.0.0.1", 404),
    ],
)
def test_the_allow_list_admits_its_addresses_only(app, client, allowed, address, status):
    app.config["METRICS_TOKEN"] = None
    app.config["METRICS_ALLOW"] = allowed
    client.environ_base["REMOTE_ADDR"] = address
    assert client.get("/metrics").status_code == status


def test_an_allowed_address_behind_the_proxies_is_the_forwarded_one(make_app):
    app = make_app(PROXY_COUNT=1, METRICS_ALLOW=["203.0.113.9"])
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = "127.0.0.1"  # the proxy
    forwarded = {"X-Forwarded-For": "203.0.113.9"}

    assert client.get("/metrics", headers=forwarded).status_code == 200
    assert client.get("/metrics", headers={"X-Forwarded-For": "198.51.100.1"}).status_code == 404


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE", "OPTIONS"])
def test_other_methods_get_what_a_missing_page_gets(scraper, client, method):
    response = client.open("/metrics", method=method, headers=BEARER)

    assert (response.status_code, response.headers.get("Allow")) == missing_page(client, method)[:2]
    assert response.status_code == 404


def test_the_scrape_is_not_rate_limited(make_app):
    app = make_app(RATELIMIT_DEFAULT="2 per minute", METRICS_TOKEN=TOKEN)
    client = app.test_client()
    statuses = [client.get("/healthz").status_code for _ in range(3)]
    assert statuses == [200, 200, 429]  # the default limit is on

    assert [client.get("/metrics", headers=BEARER).status_code for _ in range(5)] == [200] * 5


# -- settings --------------------------------------------------------------------


def test_the_allow_list_setting_is_checked_and_normalised(monkeypatch, tmp_path):
    assert parse_metrics_allow(" 10.0.0.7, 10.1.2.3/16 ,,2001:db8::/32") == [
        "10.0.0.7/32",
        "10.1.0.0/16",
        "2001:db8::/32",
    ]
    assert parse_metrics_allow(None) == []
    monkeypatch.setenv("METRICS_ALLOW", "10.0.0.1,prometheus.internal")
    with pytest.raises(ConfigurationError, match="'prometheus.internal' is not an IP address"):
        config_for("testing", tmp_path)
    monkeypatch.setenv("METRICS_ALLOW", "")
    monkeypatch.setenv("METRICS_TOKEN", "")
    config = config_for("testing", tmp_path)
    assert (config.METRICS_ALLOW, config.METRICS_TOKEN) == ([], None)


@pytest.mark.parametrize(
    ("settings", "problem"),
    [
        ({"METRICS_TOKEN": "short"}, "METRICS_TOKEN is only 5 characters"),
        ({"METRICS_ALLOW": ["0.0.0.0/0"], "PROXY_COUNT": 1}, "lets every address"),
        ({"METRICS_ALLOW": ["127.0.0.1"], "PROXY_COUNT": 0}, "PROXY_COUNT is 0"),
        ({"METRICS_ALLOW": ["not-an-address"]}, "is not an IP address"),
    ],
)
def test_the_production_check_names_an_open_metrics_page(app, settings, problem):
    config = {**app.config, **settings}
    assert any(problem in line for line in production_problems(config)), production_problems(config)


def test_the_production_check_accepts_a_long_token_and_a_scraper_address(app):
    config = {**app.config, "METRICS_TOKEN": TOKEN, "METRICS_ALLOW": ["10.0.0.5"]}
    assert not [line for line in production_problems(config) if "METRICS" in line]


# -- many processes --------------------------------------------------------------

# Run in a fresh interpreter with PROMETHEUS_MULTIPROC_DIR set: an app of its
# own answers a few requests and refuses a sign-in, then prints its pid.
CHILD = """
import json, os, sys
from portal import create_app
from portal import metrics

app = create_app({"PORTAL_ENV": "testing", "SQLALCHEMY_DATABASE_URI": "sqlite://"})
client = app.test_client()
for _ in range(int(sys.argv[1])):
    assert client.get("/healthz").status_code == 200
metrics.count_sign_in_failure()
print(json.dumps({"pid": os.getpid()}))
"""


def run_children(directory: Path, hits: list[int]) -> list[int]:
    """Run one child per entry of ``hits`` at once; return their pids."""
    env = {
        key: value for key, value in os.environ.items() if key not in {"PORTAL_ENV", "DATABASE_URL"}
    }
    env[metrics.MULTIPROC_ENV] = str(directory)
    children = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD, str(count)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for count in hits
    ]
    pids = []
    for child in children:
        out, err = child.communicate(timeout=120)
        assert child.returncode == 0, err
        pids.append(json.loads(out.strip().splitlines()[-1])["pid"])
    return pids


@pytest.mark.commits
def test_a_scrape_sums_every_process_sharing_the_directory(scraper, client, tmp_path, monkeypatch):
    pids = run_children(tmp_path, [2, 3])

    monkeypatch.setenv(metrics.MULTIPROC_ENV, str(tmp_path))
    samples = scrape(client)

    # Only the children wrote there; this process keeps its values in memory.
    requests = ("portal_http_requests_total", "site.healthz")
    assert value(samples, requests[0], endpoint=requests[1], status="200") == 5
    assert (
        value(samples, "portal_http_request_duration_seconds_count", endpoint="site.healthz") == 5
    )
    assert value(samples, "portal_sign_in_failures_total") == 2
    # The queue is read at scrape time, by the process that answers.
    assert value(samples, "portal_email_queue_up") == 1

    # gunicorn's child_exit hook: the counters of a finished worker still count.
    for pid in pids:
        mark_process_dead(pid, str(tmp_path))
    assert value(scrape(client), requests[0], endpoint=requests[1], status="200") == 5
