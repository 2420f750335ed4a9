"""NOW messages go out in the request that queued them; pacing; leases that ran out."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from portal.database import utcnow
from portal.emails import constants as EMAIL
from portal.emails.models import Email
from portal.emails.queue import BatchResult
from portal.emails.queue import Pacer
from portal.emails.queue import claim
from portal.emails.queue import deliver_one
from portal.emails.queue import enqueue
from portal.emails.transports import DeliveryError
from portal.emails.transports import MemoryTransport
from portal.emails.transports import outbox
from portal.extensions import db
from tests import factories


class Person:
    name = "Ada"


@pytest.fixture
def now_app(make_app):
    app = make_app()

    @app.route("/_test/queue/<int:priority>")
    def queue_one(priority: int) -> str:
        enqueue(
            "ada@example.com",
            "Hello",
            "confirm",
            {"user": Person(), "link": "https://portal.example.org/x"},
            priority=priority,
        )
        db.session.commit()
        return "queued"

    @app.route("/_test/queue-and-roll-back")
    def queue_and_roll_back() -> str:
        enqueue(
            "ada@example.com",
            "Hello",
            "confirm",
            {"user": Person(), "link": "x"},
            priority=EMAIL.NOW,
        )
        db.session.rollback()
        return "rolled back"

    with app.app_context():
        yield app


def rows() -> list[Email]:
    db.session.expire_all()
    return list(db.session.execute(select(Email)).scalars())


def test_now_message_is_delivered_by_the_request_that_queued_it(now_app):
    response = now_app.test_client().get(f"/_test/queue/{EMAIL.NOW}")
    assert response.status_code == 200
    [message] = outbox(now_app)
    assert message["To"] == "ada@example.com"
    [row] = rows()
    assert row.state == EMAIL.SENT
    assert row.attempts == 1


def test_other_priorities_wait_for_a_worker(now_app):
    now_app.test_client().get(f"/_test/queue/{EMAIL.HIGH}")
    assert outbox(now_app) == []
    assert rows()[0].state == EMAIL.QUEUED


def test_a_rolled_back_now_message_is_never_sent(now_app):
    assert now_app.test_client().get("/_test/queue-and-roll-back").status_code == 200
    assert outbox(now_app) == []
    assert rows() == []


def test_failed_now_delivery_stays_queued_and_the_page_still_answers(now_app, monkeypatch):
    class Refusing:
        def connect(self):
            return self

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def send(self, message):
            raise DeliveryError("421 try later", permanent=False, code=421)

    monkeypatch.setattr("portal.emails.queue.transport_for", lambda app: Refusing())
    response = now_app.test_client().get(f"/_test/queue/{EMAIL.NOW}")
    assert response.status_code == 200
    [row] = rows()
    assert row.state == EMAIL.QUEUED
    assert row.attempts == 1
    assert row.next_attempt_at > utcnow()
    assert "421" in (row.last_error or "")


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0
        self.waits: list[float] = []

    def __call__(self) -> float:
        return self.now

    def wait(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now += seconds


def test_pacer_spaces_sends_to_the_rate_limit():
    clock = FakeClock()
    pace = Pacer(120, wait=clock.wait, clock=clock)  # two a second
    for _ in range(4):
        pace()
    assert clock.waits == pytest.approx([0.5, 0.5, 0.5])


def test_pacer_does_not_wait_when_sends_are_already_slow():
    clock = FakeClock()
    pace = Pacer(60, wait=clock.wait, clock=clock)
    pace()
    clock.now += 5
    pace()
    assert clock.waits == []


def test_pacer_without_a_limit_never_waits():
    waits: list[float] = []
    pace = Pacer(0, wait=waits.append)
    for _ in range(5):
        pace()
    assert waits == []


def test_a_row_whose_lease_ran_out_mid_batch_is_not_sent(app, mail):
    factories.EmailFactory.create_batch(2)
    first, second = claim("worker-a", 2)
    second.locked_until = utcnow() - timedelta(seconds=1)
    db.session.commit()
    result = BatchResult()
    with MemoryTransport(mail).connect() as connection:
        deliver_one(connection, first, "worker-a", result)
        deliver_one(connection, second, "worker-a", result)
    assert (result.sent, result.lost) == (1, 1)
    assert [message["Message-ID"] for message in mail] == [first.message_id]
    # The expired row is left for whichever worker claims it next.
    [again] = claim("worker-b", 5)
    assert again.id == second.id
