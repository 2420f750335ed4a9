"""Every model, imported in one place so the metadata knows all tables."""

from portal.audit.models import AuditEvent
from portal.comments.models import Comment
from portal.emails.models import Attempt
from portal.emails.models import Email
from portal.emails.models import Suppression
from portal.posts.models import Post
from portal.posts.models import Tag
from portal.privacy.models import DataExport
from portal.reports.models import Report
from portal.users.models import ProviderIdentity
from portal.users.models import User

__all__ = [
    "AuditEvent",
    "Attempt",
    "Comment",
    "DataExport",
    "Email",
    "Post",
    "ProviderIdentity",
    "Report",
    "Suppression",
    "Tag",
    "User",
]
