"""Every model, imported in one place so the metadata knows all tables."""

from portal.audit.models import AuditEvent
from portal.comments.models import Comment
from portal.emails.models import Attempt
from portal.emails.models import Email
from portal.posts.models import Post
from portal.users.models import ProviderIdentity
from portal.users.models import User

__all__ = ["AuditEvent", "Attempt", "Comment", "Email", "Post", "ProviderIdentity", "User"]
