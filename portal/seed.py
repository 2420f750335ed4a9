"""Data for development and load tests: demo accounts, a little demo content, bulk rows.

``manage.py seed`` calls these. The bulk loaders write through SQLAlchemy Core,
one executemany per chunk of ``CHUNK_SIZE`` rows and one transaction per table,
so ten thousand accounts, a hundred thousand posts and a million comments load
in minutes: Markdown is rendered for a few bodies once and then cycled, and
every generated account shares one password hash.

Generated rows keep every rule the app keeps: unique handles, emails and
slugs; ``created_at <= published_at`` for posts and a publication date for
each published or hidden one; comments only under published posts, after
them, by someone who had joined by then where possible; and
``Post.comment_count`` equal to the post's APPROVED comments.
"""

from __future__ import annotations

import random
import secrets
from bisect import bisect_right
from collections import Counter
from collections.abc import Callable
from collections.abc import Iterator
from collections.abc import Sequence
from datetime import datetime
from datetime import timedelta
from typing import Any

from flask import current_app
from sqlalchemy import bindparam
from sqlalchemy import func
from sqlalchemy import or_
from sqlalchemy import select
from sqlalchemy.orm import InstrumentedAttribute
from werkzeug.security import generate_password_hash

from portal import security
from portal.comments import constants as COMMENT
from portal.comments.models import Comment
from portal.database import utcnow
from portal.extensions import db
from portal.markup import render_comment
from portal.markup import render_post
from portal.posts import constants as POST
from portal.posts import services as post_services
from portal.posts.models import Post
from portal.reports import constants as REPORT
from portal.reports.models import Report
from portal.slugs import slugify
from portal.slugs import unique_slug
from portal.users import constants as USER
from portal.users import services as accounts
from portal.users.models import User

# Rows per INSERT executemany (and per progress step).
CHUNK_SIZE = 5_000
# Generated posts are published over this past period; accounts joined over a longer one.
CONTENT_PERIOD = timedelta(days=365)
ACCOUNT_PERIOD = timedelta(days=400)
# The newest generated post is at least this old, so its comments fit before now.
NEWEST_POST_AGE = timedelta(hours=1)
# How long ago new demo accounts joined; the demo content is younger.
DEMO_ACCOUNT_AGE = timedelta(days=30)

DEMO_ACCOUNTS = (
    # (role, name, email, password): printed by `seed` and in the README, so
    # public: never created in production, and `check` looks for them there.
    (USER.ADMIN, "Ada Admin", "admin@example.com", "admin-portal-demo-1"),
    (USER.STAFF, "Sam Staff", "staff@example.com", "staff-portal-demo-1"),
    (USER.USER, "Uma User", "user@example.com", "user-portal-demo-1"),
)

# Statuses repeat in these cycles, so a count asked for gives predictable
# totals: of 20 posts, 17 published, 2 drafts and 1 hidden (the first is
# always published); of 20 comments, 16 approved, 2 pending, 1 rejected, 1 spam.
POST_STATUS_CYCLE = tuple(
    {6: POST.DRAFT, 13: POST.DRAFT, 19: POST.HIDDEN}.get(index, POST.PUBLISHED)
    for index in range(20)
)
COMMENT_STATUS_CYCLE = tuple(
    {4: COMMENT.PENDING, 9: COMMENT.REJECTED, 14: COMMENT.PENDING, 19: COMMENT.SPAM}.get(
        index, COMMENT.APPROVED
    )
    for index in range(20)
)

Progress = Callable[[int], object]


class SeedError(Exception):
    """A request the seed cannot carry out; the message is one line, safe to show."""


def _no_progress(count: int) -> None:
    """Ignore progress reports."""


# -- what the generated rows say -----------------------------------------------------

TITLE_FORMS = (
    "Notes on {}",
    "What I learned about {}",
    "A beginner's guide to {}",
    "{} in ten minutes",
    "Why I changed my mind about {}",
    "Five mistakes I made with {}",
    "The case for {}",
    "Questions I still have about {}",
    "{}, one year later",
    "Getting started with {}",
    "How our team handles {}",
    "A short history of {}",
)
TITLE_TOPICS = (
    "caching",
    "database indexes",
    "code review",
    "remote work",
    "sourdough bread",
    "night photography",
    "public speaking",
    "small gardens",
    "Python packaging",
    "Markdown tables",
    "bicycle repair",
    "keyboard shortcuts",
    "unit tests",
    "coffee brewing",
    "reading habits",
    "time zones",
    "password managers",
    "home networking",
    "board games",
    "learning Rust",
    "writing documentation",
    "open source maintenance",
    "job interviews",
    "trail running",
    "accessible forms",
    "SQL joins",
    "houseplants",
    "budget travel",
    "mechanical watches",
    "email deliverability",
)

POST_BODIES = (
    """A few things I wish someone had told me before I started.

## Start small

Pick **one** problem and solve it properly before you reach for the next one.
Most of the trouble I had came from doing three things at once.

- Write down what "done" looks like.
- Measure before you change anything.
- Keep notes: future you will not remember why.

## Read the manual

Yes, really. The [official documentation](https://docs.python.org/3/) answers
more questions than any forum thread, and it is usually right.

> The best time to read the docs was before you started. The second best time is now.

That's it for today. Questions are welcome in the comments.
""",
    """I kept a log for a month. Here is the short version.

| Week | Hours | What went well            |
|------|------:|---------------------------|
| 1    |     4 | Set-up, first experiments |
| 2    |     6 | A routine that stuck      |
| 3    |     3 | Not much: a busy week     |
| 4    |     7 | Finally some results      |

The numbers are small, but the *trend* is what matters. Two habits helped most:

1. Doing it at the same time every day.
2. Stopping while it was still fun.

I will post an update next month.
""",
    """Here is the snippet everyone keeps asking for:

```python
def chunks(items, size):
    for start in range(0, len(items), size):
        yield items[start:start + size]
```

It is not clever, and that is the point. A few remarks:

- It works on anything you can slice.
- It does not copy more than one chunk at a time.
- ~~It handles generators~~: it does not; use `itertools.batched` for those.

See the [itertools docs](https://docs.python.org/3/library/itertools.html) for more.
""",
    """Short post today.

After a lot of back and forth we settled on a simple rule: *if it is not written
down, it did not happen*. Meetings end with a summary, decisions go in the
wiki, and nobody has to remember who said what.

It felt bureaucratic for about a week. Now nobody wants to go back.
""",
    """### The problem

Everything was slow, and nobody knew why.

### What we tried

1. Bigger machines. It helped a little and cost a lot.
2. Guessing. It did not help at all.
3. **Measuring.** This worked.

### What we found

Most of the time went into one place we never suspected. Fixing it took an
afternoon; finding it took two weeks.

### What I would do next time

Measure first, then guess, then measure again. Write the numbers down, with
the date and the machine, so that the next person can compare.
""",
    """Someone asked me for a reading list, so here it is, in no particular order:

- *The Pragmatic Programmer*, for habits.
- *A Philosophy of Software Design*, for taste.
- *Designing Data-Intensive Applications*, for when things get big.
- Your own code from a year ago, for humility.

If you read only one, read the last one. It is free and always available.

What would you add? Tell me below.
""",
    """Quick checklist before you publish anything:

- [ ] Does the title say what the post is about?
- [ ] Is the first paragraph worth reading on its own?
- [ ] Did you cut the second half of every long sentence?
- [ ] Are the links working?

Most of my drafts fail the third one. Editing is where the writing happens.

---

*Thanks to everyone who commented on the last post; several of these came from you.*
""",
    """I was wrong about this, and it took me a while to admit it.

For years I argued that the simple way was good enough. It was, until it was
not: the day the data grew tenfold, the simple way fell over, and we had no
plan B.

The lesson is not "always build for scale". It is *know where your limits are*,
write them down, and check them now and then. A limit you know about is a
decision; a limit you do not know about is an outage waiting for a date.
""",
)

COMMENT_BODIES = (
    "Thanks for writing this up, it was *exactly* what I needed today.",
    "Great post. I tried the second idea and it worked first time.",
    "I disagree with the last part, but the rest is spot on.",
    "Could you say more about how you measured this?",
    "Bookmarked. The table alone is worth it.",
    "We do something similar at work; the `summary` step is the one people skip.",
    "This matches my experience, word for word.",
    "Small typo in the second paragraph, otherwise lovely.",
    "Have you looked at [the official guide](https://example.com/guide)? It covers this too.",
    "Nice one. Looking forward to the follow-up!",
    "I read this twice. **Very** clear, thank you.",
    "Does this still hold with bigger data sets?\nI wonder where it breaks.",
)
REJECTED_COMMENT_BODIES = (
    "First!",
    "This is the worst thing I have read all week and you should stop writing.",
    "Off topic, but does anyone know a good plumber?",
)
SPAM_COMMENT_BODIES = (
    "Cheap watches!!! Visit https://spam.example.net now for 90% off",
    "Earn $$$ from home, no experience needed. Click https://spam.example.net",
    "Great post! Also check out my crypto course at https://spam.example.net",
)
MODERATION_REASONS = {
    COMMENT.REJECTED: "Not about the post.",
    COMMENT.SPAM: "Advertising.",
}


def make_title(rng: random.Random) -> str:
    """Return a plausible post title."""
    title = rng.choice(TITLE_FORMS).format(rng.choice(TITLE_TOPICS))
    return title[0].upper() + title[1:]


# -- demo accounts and content ---------------------------------------------------------


def demo_accounts_allowed() -> bool:
    """Tell whether this app may hold the demo accounts: anywhere but production."""
    return current_app.config.get("ENV_NAME") != "production"


def ensure_demo_accounts() -> None:
    """Create the demo accounts, or put them back as printed: role, ACTIVE, password."""
    if not demo_accounts_allowed():
        raise SeedError(
            "Demo accounts are never created in production: their passwords are public."
        )
    for role, name, email, password in DEMO_ACCOUNTS:
        user = accounts.get_by_email(email)
        if user is None:
            user = accounts.create_account(name, email, password, role=role, status=USER.ACTIVE)
            # Older than the demo content, so no post predates its author.
            user.created_at = user.confirmed_at = user.created_at - DEMO_ACCOUNT_AGE
        else:
            user.set_password(password)
            user.role, user.status = role, USER.ACTIVE
            accounts.end_other_sessions(user)
    db.session.commit()


def demo_accounts_plan() -> tuple[list[str], list[str]]:
    """Return the demo addresses ``ensure_demo_accounts`` would create, and those it would reset."""
    create: list[str] = []
    reset: list[str] = []
    for _role, _name, email, _password in DEMO_ACCOUNTS:
        (create if accounts.get_by_email(email) is None else reset).append(email)
    return create, reset


def accounts_with_demo_passwords() -> list[User]:
    """Return the accounts that a published demo password signs in to.

    Each account costs one password hash per demo password, so not every
    account is tried: those with a demo address, and every account that may
    moderate (staff and admins), where a known password does the most harm.
    """
    demo_emails = [email.lower() for _role, _name, email, _password in DEMO_ACCOUNTS]
    query = select(User).where(
        or_(
            func.lower(User.email).in_(demo_emails),
            security.accounts_that_can(User, security.MODERATE, security.POST),
        )
    )
    passwords = [password for _role, _name, _email, password in DEMO_ACCOUNTS]
    return [
        user
        for user in db.session.execute(query.order_by(User.id)).scalars()
        if any(user.check_password(password) for password in passwords)
    ]


DEMO_POSTS = (
    # (author's email, title, Markdown body, status, days ago)
    (
        "staff@example.com",
        "Welcome to Portal",
        """Hello, and welcome! This is a small place to **write**, **read** and **talk**.

- Anyone can read what is published.
- Confirm your email address, and you can write posts and comments.
- Comments wait for staff before they appear, so expect a short delay.

Sign in with one of the demo accounts printed by `manage.py seed` to try it all.
""",
        POST.PUBLISHED,
        9,
    ),
    (
        "user@example.com",
        "What Markdown can do here",
        """Posts are written in [Markdown](https://commonmark.org/help/).

## Text

*Emphasis*, **strong**, `code` and ~~strikethrough~~.

## Lists and quotes

1. First
2. Second

> Quotes look like this.

## Tables

| Syntax | Result  |
|--------|---------|
| `*a*`  | *a*     |
| `**b**`| **b**   |

## Code

```
print("hello")
```

Raw HTML is shown as text, and images are not allowed.
""",
        POST.PUBLISHED,
        6,
    ),
    (
        "staff@example.com",
        "House rules for comments",
        """Three rules, that is all:

1. Stay on the topic of the post.
2. Be kind: disagree with ideas, not with people.
3. No advertising.

Staff read every comment before it appears. Comments that break a rule are
rejected, and advertising is marked as spam.
""",
        POST.PUBLISHED,
        4,
    ),
    (
        "user@example.com",
        "My first week with Flask",
        """I finally built something with [Flask](https://flask.palletsprojects.com/).
Some notes:

- The *application factory* pattern confused me at first; now I would not go back.
- Blueprints keep each part of the site in its own package.
- `flask --app portal run --debug` reloads on every change.

Next week: tests with `pytest`.
""",
        POST.PUBLISHED,
        2,
    ),
    (
        "user@example.com",
        "Ideas for next month",
        """Only a draft, so only I (and staff) can see it.

- Write about testing.
- Try the *moderation queue* from the other side.
""",
        POST.DRAFT,
        1,
    ),
)

# The tags of DEMO_POSTS, by index: the tag pages and feeds have something to show.
DEMO_TAGS = {
    0: ("Portal", "Announcements"),
    1: ("Markdown", "Guides"),
    2: ("Portal", "Community"),
    3: ("Flask", "Python"),
    4: ("Ideas",),
}

DEMO_COMMENTS = (
    # (index into DEMO_POSTS, author's email, Markdown body, status, hours after the post)
    (0, "admin@example.com", "Welcome, everyone! Say hello below.", COMMENT.APPROVED, 2),
    (0, "user@example.com", "Hello! Glad to be here.", COMMENT.APPROVED, 5),
    (1, "staff@example.com", "A handy reference. *Bookmarked.*", COMMENT.APPROVED, 3),
    (3, "admin@example.com", "Welcome to Flask! Try `flask routes` next.", COMMENT.APPROVED, 4),
    (3, "staff@example.com", "Looking forward to the testing post.", COMMENT.APPROVED, 6),
    (2, "user@example.com", "Is linking to my own blog advertising?", COMMENT.PENDING, 20),
    (0, "user@example.com", "How do I change my profile address?", COMMENT.PENDING, 30),
)

DEMO_REPORTS = (
    # (what: "post" or "comment", index into DEMO_POSTS or DEMO_COMMENTS, reporter's
    # email, reason, note): a few open reports, so the queue in /admin shows something.
    ("post", 2, "user@example.com", REPORT.OFF_TOPIC, "Reads like an advert for one host."),
    ("comment", 4, "user@example.com", REPORT.SPAM, None),
    ("post", 3, "admin@example.com", REPORT.OTHER, "The first link points to an old version."),
)


def has_posts() -> bool:
    """Tell whether the database holds any post at all."""
    return db.session.execute(select(Post.id).limit(1)).first() is not None


def add_demo_content(*, now: datetime | None = None) -> bool:
    """Write a few readable posts and comments, some waiting for moderation.

    Only into a database with no posts yet, so running it again changes
    nothing; return whether it wrote anything. The demo accounts must exist.
    """
    if has_posts():
        return False
    now = now or utcnow()
    people = {email: accounts.get_by_email(email) for _role, _name, email, _pw in DEMO_ACCOUNTS}
    moderator = people["staff@example.com"]
    posts: list[Post] = []
    for email, title, body, status, days_ago in DEMO_POSTS:
        author = people[email]
        assert author is not None, "the demo accounts come first"
        moment = now - timedelta(days=days_ago)
        post = Post(
            author_id=author.id,
            title=title,
            slug=unique_slug(
                Post.slug,
                slugify(title, max_length=POST.SLUG_MAX_LENGTH, fallback="post"),
                max_length=POST.SLUG_MAX_LENGTH,
            ),
            body=body,
            body_html=render_post(body),
            status=status,
            comment_count=0,
            created_at=moment - timedelta(hours=1),
            updated_at=moment,
            published_at=moment if status != POST.DRAFT else None,
        )
        post.tags = post_services.tags_named(DEMO_TAGS.get(len(posts), ()))
        db.session.add(post)
        db.session.flush()
        posts.append(post)
    for index, email, body, status, hours in DEMO_COMMENTS:
        post, author = posts[index], people[email]
        assert author is not None and post.published_at is not None
        moment = post.published_at + timedelta(hours=hours)
        approved = status == COMMENT.APPROVED
        db.session.add(
            Comment(
                post_id=post.id,
                author_id=author.id,
                body=body,
                body_html=render_comment(body),
                status=status,
                created_at=moment,
                updated_at=moment,
                moderated_by_id=moderator.id if approved and moderator else None,
                moderated_at=moment + timedelta(minutes=30) if approved else None,
            )
        )
        if approved:
            post.comment_count += 1
    db.session.flush()
    comments = list(db.session.execute(select(Comment).order_by(Comment.id)).scalars())
    for kind, index, email, reason, note in DEMO_REPORTS:
        reporter = people[email]
        assert reporter is not None
        target = (
            {"post_id": posts[index].id} if kind == "post" else {"comment_id": comments[index].id}
        )
        db.session.add(
            Report(
                reporter_id=reporter.id,
                reason=reason,
                note=note,
                status=REPORT.OPEN,
                created_at=now - timedelta(hours=index + 1),
                **target,
            )
        )
    db.session.commit()
    return True


# -- bulk loading ------------------------------------------------------------------------


class _Accounts:
    """Accounts sorted by when they joined, to pick one who had joined by a given moment."""

    def __init__(self, rows: Sequence[tuple[int, datetime]]) -> None:
        ordered = sorted(rows, key=lambda row: row[1])
        self.ids = [row[0] for row in ordered]
        self.joined = [row[1] for row in ordered]

    def __len__(self) -> int:
        return len(self.ids)

    def pick(self, rng: random.Random, moment: datetime) -> int:
        """Return the id of an account that existed at ``moment``, or of any if none did."""
        existing = bisect_right(self.joined, moment)
        return self.ids[rng.randrange(existing or len(self.ids))]


def _writers(*, role: int | None = None) -> _Accounts:
    query = select(User.id, User.created_at).where(
        User.status != USER.INACTIVE,
        security.accounts_that_can(User, security.ADD, security.POST),
    )
    if role is not None:
        query = query.where(User.role == role)
    return _Accounts([(row.id, row.created_at) for row in db.session.execute(query)])


def _moderators() -> list[int]:
    query = select(User.id).where(
        security.accounts_that_can(User, security.MODERATE, security.POST),
        User.status == USER.ACTIVE,
    )
    return list(db.session.execute(query.order_by(User.id)).scalars())


def _highest_id(column: InstrumentedAttribute[int]) -> int:
    return int(db.session.execute(select(func.coalesce(func.max(column), 0))).scalar_one())


def _taken(column: Any, values: Sequence[str]) -> set[str]:
    """Return which of ``values`` ``column`` already holds (one query)."""
    return set(db.session.execute(select(column).where(column.in_(values))).scalars())


def _fresh_chunks(
    count: int,
    make: Callable[[int], dict[str, Any]],
    clashing: Callable[[list[dict[str, Any]]], set[int]],
) -> Iterator[list[dict[str, Any]]]:
    """Yield ``count`` rows in chunks of at most ``CHUNK_SIZE``.

    ``make(n)`` builds the n-th candidate row (n from 0); ``clashing(rows)``
    returns the positions of candidates that would break a unique key, which
    are dropped and replaced by the next candidates.
    """
    made = 0
    left = count
    while left:
        chunk: list[dict[str, Any]] = []
        wanted = min(CHUNK_SIZE, left)
        while len(chunk) < wanted:
            candidates = [make(made + offset) for offset in range(wanted - len(chunk))]
            made += len(candidates)
            bad = clashing(candidates)
            chunk.extend(row for position, row in enumerate(candidates) if position not in bad)
        left -= len(chunk)
        yield chunk


def add_users(
    count: int,
    *,
    rng: random.Random | None = None,
    now: datetime | None = None,
    progress: Progress = _no_progress,
) -> int:
    """Add ``count`` ACTIVE user accounts who joined over the past ``ACCOUNT_PERIOD``.

    They are "Demo User <n>", demo<n>@example.com, /users/demo-user-<n>/, with
    <n> carrying on after the highest account id; numbers some account
    already uses are skipped. All share one password that nobody knows.
    """
    if count <= 0:
        return 0
    rng = rng or random.Random()
    now = now or utcnow()
    # One hash for all: scrypt per row would take minutes for large counts, and
    # these accounts are for load, not for signing in.
    password_hash = generate_password_hash(secrets.token_urlsafe(24))
    start = _highest_id(User.id)
    first = now - ACCOUNT_PERIOD

    def make(index: int) -> dict[str, Any]:
        number = start + index + 1
        joined = min(now, first + ACCOUNT_PERIOD * ((index + rng.random()) / count))
        return {
            "name": f"Demo User {number}",
            "email": f"demo{number}@example.com",
            "handle": f"demo-user-{number}",
            "notify_comments": True,
            "password_hash": password_hash,
            "role": USER.USER,
            "status": USER.ACTIVE,
            "session_version": 1,
            "created_at": joined,
            "confirmed_at": joined + timedelta(minutes=rng.randint(1, 120)),
            "last_login_at": None,
            "login_count": 0,
        }

    def clashing(rows: list[dict[str, Any]]) -> set[int]:
        handles = _taken(User.handle, [row["handle"] for row in rows])
        emails = _taken(func.lower(User.email), [row["email"] for row in rows])
        return {
            position
            for position, row in enumerate(rows)
            if row["handle"] in handles or row["email"] in emails
        }

    table = User.__table__
    for chunk in _fresh_chunks(count, make, clashing):
        db.session.execute(table.insert(), chunk)
        progress(len(chunk))
    db.session.commit()
    return count


def add_posts(
    count: int,
    *,
    rng: random.Random | None = None,
    now: datetime | None = None,
    progress: Progress = _no_progress,
) -> int:
    """Add ``count`` posts by the accounts that may write, over the past ``CONTENT_PERIOD``.

    17 in 20 are published, 2 drafts (no publication date) and 1 hidden.
    Slugs are the title's plus the post's number, which carries on after the
    highest post id. Each post's author had joined before it was written,
    where any had.
    """
    if count <= 0:
        return 0
    rng = rng or random.Random()
    now = now or utcnow()
    authors = _writers()
    if not len(authors):
        raise SeedError("No account may write posts: run `seed` without --posts first.")
    bodies = [(body, render_post(body)) for body in POST_BODIES]
    start = _highest_id(Post.id)
    newest = now - NEWEST_POST_AGE
    span = CONTENT_PERIOD - NEWEST_POST_AGE

    def make(index: int) -> dict[str, Any]:
        number = start + index + 1
        status = POST_STATUS_CYCLE[index % len(POST_STATUS_CYCLE)]
        title = make_title(rng)
        slug = f"{slugify(title, max_length=60, fallback='post')}-{number}"
        body, body_html = bodies[number % len(bodies)]
        published: datetime | None
        if status == POST.DRAFT:
            created = newest - span * rng.random()
            published = None
            updated = created + (now - created) * rng.random() * 0.5
        else:
            published = newest - span * rng.random()
            # Written up to three days before it went out.
            created = published - timedelta(hours=72) * rng.random()
            updated = published
            if status == POST.HIDDEN:
                updated = published + (now - published) * rng.random()
        return {
            "author_id": authors.pick(rng, created),
            "title": title,
            "slug": slug,
            "body": body,
            "body_html": body_html,
            "status": status,
            "comment_count": 0,
            "created_at": created,
            "updated_at": updated,
            "published_at": published,
        }

    def clashing(rows: list[dict[str, Any]]) -> set[int]:
        # Numbers make generated slugs unique; only a hand-written slug can clash.
        taken = _taken(Post.slug, [row["slug"] for row in rows])
        return {position for position, row in enumerate(rows) if row["slug"] in taken}

    table = Post.__table__
    for chunk in _fresh_chunks(count, make, clashing):
        db.session.execute(table.insert(), chunk)
        progress(len(chunk))
    db.session.commit()
    return count


def check_posts_possible(*, users: int, posts: int) -> None:
    """Raise ``SeedError`` if ``posts`` would find nobody to write them.

    Called before anything changes. Outside production the demo accounts
    write; in production only existing accounts and new ``users`` can.
    """
    if posts <= 0 or users > 0 or demo_accounts_allowed() or len(_writers()):
        return
    raise SeedError("No account may write posts: add --users N.")


def check_comments_possible(*, posts: int, comments: int) -> None:
    """Raise ``SeedError`` if ``comments`` would find no published post to go under.

    Called before anything changes. A database without posts gets the demo
    posts (outside production), and new posts always include published
    ones, so otherwise only a database whose posts are all drafts or hidden
    is refused.
    """
    if comments <= 0 or posts > 0:
        return
    if not has_posts():
        if demo_accounts_allowed():
            return
        raise SeedError("No post is published, so comments have nowhere to go: add --posts N.")
    published = select(Post.id).where(Post.status == POST.PUBLISHED).limit(1)
    if db.session.execute(published).first() is None:
        raise SeedError("No post is published, so comments have nowhere to go: add --posts N.")


def add_comments(
    count: int,
    *,
    rng: random.Random | None = None,
    now: datetime | None = None,
    progress: Progress = _no_progress,
) -> int:
    """Add ``count`` comments under the published posts and keep their counts exact.

    A few posts draw many comments and most draw a few. Each comment comes
    after its post, mostly soon after. 16 in 20 are approved, 2 wait for
    moderation, 1 is rejected and 1 is spam; decided ones name a moderator.
    ``Post.comment_count`` grows by the approved ones, in the same transaction.
    """
    if count <= 0:
        return 0
    rng = rng or random.Random()
    now = now or utcnow()
    query = select(Post.id, Post.published_at).where(Post.status == POST.PUBLISHED)
    posts = [(row.id, row.published_at) for row in db.session.execute(query.order_by(Post.id))]
    if not posts:
        raise SeedError("No post is published, so comments have nowhere to go: add --posts N.")
    # Popularity is random, not tied to age or id: shuffle, then favour the front.
    rng.shuffle(posts)
    authors = _writers(role=USER.USER)
    if not len(authors):
        authors = _writers()
    moderators = _moderators()
    bodies = {
        status: [(body, render_comment(body)) for body in texts]
        for status, texts in (
            (COMMENT.APPROVED, COMMENT_BODIES),
            (COMMENT.PENDING, COMMENT_BODIES),
            (COMMENT.REJECTED, REJECTED_COMMENT_BODIES),
            (COMMENT.SPAM, SPAM_COMMENT_BODIES),
        )
    }
    approved: Counter[int] = Counter()

    def make(index: int) -> dict[str, Any]:
        status = COMMENT_STATUS_CYCLE[index % len(COMMENT_STATUS_CYCLE)]
        post_id, published = posts[int(len(posts) * rng.random() ** 2)]
        # At least a minute after the post, most within its first days.
        room = now - published - timedelta(minutes=2)
        created = published + timedelta(minutes=1) + room * rng.random() ** 3
        choices = bodies[status]
        body, body_html = choices[index % len(choices)]
        row = {
            "post_id": post_id,
            "author_id": authors.pick(rng, created),
            "body": body,
            "body_html": body_html,
            "status": status,
            "created_at": created,
            "updated_at": created,
            "moderated_by_id": None,
            "moderated_at": None,
            "moderation_reason": MODERATION_REASONS.get(status),
        }
        if status != COMMENT.PENDING and moderators:
            row["moderated_by_id"] = moderators[index % len(moderators)]
            row["moderated_at"] = min(now, created + timedelta(hours=12) * rng.random())
        return row

    table = Comment.__table__
    for chunk in _fresh_chunks(count, make, lambda rows: set()):
        db.session.execute(table.insert(), chunk)
        approved.update(row["post_id"] for row in chunk if row["status"] == COMMENT.APPROVED)
        progress(len(chunk))
    posts_table = Post.__table__
    add_to_count = (
        posts_table.update()
        .where(posts_table.c.id == bindparam("post"))
        .values(comment_count=posts_table.c.comment_count + bindparam("added"))
    )
    deltas = [{"post": post_id, "added": added} for post_id, added in approved.items()]
    for start in range(0, len(deltas), CHUNK_SIZE):
        db.session.execute(add_to_count, deltas[start : start + CHUNK_SIZE])
    db.session.commit()
    return count
