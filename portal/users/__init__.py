"""Accounts: sign-up, confirmation, sign-in, recovery and profiles."""

from portal.users.views import bp

__all__ = ["bp"]
