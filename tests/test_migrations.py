"""The Alembic revisions build exactly the schema the models describe."""

from __future__ import annotations

import warnings

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from flask_migrate import downgrade
from flask_migrate import upgrade
from sqlalchemy import inspect
from sqlalchemy import text
from sqlalchemy.exc import SAWarning

from portal import create_app
from portal.database import Base
from portal.database import include_name
from portal.extensions import db
from tests.conftest import POSTGRES_URL
from tests.conftest import private_schema
from tests.conftest import require_service

# Storage parameters (PostgreSQL): search reads each post's vector from its row.
RELOPTIONS = (
    "SELECT relname, reloptions FROM pg_class "
    "WHERE relnamespace = current_schema()::regnamespace AND reloptions IS NOT NULL"
)
STORAGE = {"posts_post": ["toast_tuple_target=4080"]}
INDEX_NAMES = {
    "sqlite": "SELECT name FROM sqlite_master WHERE type = 'index'",
    "postgresql": "SELECT indexname FROM pg_indexes WHERE schemaname = current_schema()",
}


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database(request, tmp_path):
    """A database with no tables at all, for the migrations to fill."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'migrated.sqlite3'}"
        return
    require_service(POSTGRES_URL, 5432, "PostgreSQL")
    with private_schema("portal_migrations") as url:
        yield url


def test_upgrade_matches_the_models_and_downgrade_removes_everything(empty_database):
    app = create_app({"PORTAL_ENV": "testing", "SQLALCHEMY_DATABASE_URI": empty_database})
    with app.app_context():
        upgrade()
        with db.engine.connect() as connection, warnings.catch_warnings():
            # Alembic cannot reflect the lower(email) expression index on every
            # backend and says so; the index itself is checked below.
            warnings.simplefilter("ignore", UserWarning)
            warnings.simplefilter("ignore", SAWarning)
            # As env.py compares: without each backend's own full-text objects.
            context = MigrationContext.configure(connection, opts={"include_name": include_name})
            differences = compare_metadata(context, Base.metadata)
            indexes = set(connection.execute(text(INDEX_NAMES[db.engine.dialect.name])).scalars())
            storage = (
                dict(connection.execute(text(RELOPTIONS)).all())
                if db.engine.dialect.name == "postgresql"
                else STORAGE
            )
        assert differences == []
        assert "uq_users_user_email_lower" in indexes
        assert storage == STORAGE

        downgrade(revision="base")
        assert set(inspect(db.engine).get_table_names()) <= {"alembic_version"}
        db.engine.dispose()


@pytest.mark.parametrize("backend", ["postgresql"])
def test_the_models_set_the_storage_the_revisions_set(app):
    # The schema the tests run on comes from the models (create_all), not the revisions.
    assert dict(db.session.execute(text(RELOPTIONS)).all()) == STORAGE
