"""Every model, imported in one place so the metadata knows all tables."""

from portal.emails.models import Attempt
from portal.emails.models import Email
from portal.users.models import User

__all__ = ["Attempt", "Email", "User"]
