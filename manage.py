#!/usr/bin/env python
"""Portal's maintenance tasks: ``python manage.py --help`` lists them."""

from __future__ import annotations

import sys

import click
from flask import Flask
from flask.cli import FlaskGroup

from config import ConfigurationError
from portal import create_app


def make_app() -> Flask:
    """Build the app; `check` still runs when production settings are unsafe, to list them."""
    try:
        return create_app(refuse_unsafe=sys.argv[1:2] != ["check"])
    except ConfigurationError as error:
        raise click.ClickException(str(error)) from None


@click.group(cls=FlaskGroup, create_app=make_app)
def cli() -> None:
    """Manage Portal: database, accounts, email queue, demo data, checks."""


if __name__ == "__main__":
    cli()
