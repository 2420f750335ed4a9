"""Checks on addresses and header values before anything is queued."""

from __future__ import annotations

import re
import unicodedata
from email.headerregistry import Address
from email.utils import getaddresses
from email.utils import parseaddr

from email_validator import EmailNotValidError
from email_validator import validate_email

from portal.emails import constants as EMAIL

# RFC 5321: 64 octets of local part, 254 of address in a forward path.
MAX_LOCAL_PART_LENGTH = 64
MAX_ADDRESS_LENGTH = 254
MAX_DISPLAY_NAME_LENGTH = 120

# Every character Python's email package ends a line at (``str.splitlines``),
# and NUL. Some versions refuse them in a header, some write them out as is.
LINE_BREAKS = frozenset("\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029\0")
# An RFC 2047 encoded word is ``=?charset?q|b?text?=``. Python's parser decodes
# one wherever it starts, even without spaces around it or with spaces inside,
# and before 3.11.10 it wrote a decoded CR LF into the message (CVE-2024-6923).
# So any "=?" that a "?=" follows counts, whatever lies between.
ENCODED_WORD = re.compile(r"=\?.*?\?=", re.DOTALL)


class InvalidHeader(ValueError):
    """A header value or address that must never reach a message."""


def header_problem(name: str, value: str) -> str | None:
    """Explain why ``value`` cannot be a header's text, or return None when it can.

    The rule does not lean on the interpreter's own checks, which differ between
    Python versions: line breaks, other control characters (a tab aside) and
    encoded-word syntax are refused here.
    """
    if any(char in LINE_BREAKS for char in value):
        return f"The {name} must be a single line."
    if any(char != "\t" and unicodedata.category(char) == "Cc" for char in value):
        return f"The {name} may not contain control characters."
    if ENCODED_WORD.search(value):
        return f"The {name} may not contain encoded-word syntax (=?…?=)."
    return None


def check_header(name: str, value: str, max_length: int = EMAIL.SUBJECT_MAX_LENGTH) -> str:
    """Return ``value`` if it is safe in a header; refuse line breaks, encoded words, oversize."""
    problem = header_problem(name, value)
    if problem is not None:
        raise InvalidHeader(problem)
    if len(value) > max_length:
        raise InvalidHeader(f"The {name} is longer than {max_length} characters.")
    return value


def header_text(value: str, max_length: int = EMAIL.SUBJECT_MAX_LENGTH) -> str:
    """Return someone's text (a post title, a name) made safe to quote inside a header.

    For text the sender did not type and cannot be asked to fix: line breaks
    and control characters become spaces, every "=?" becomes "= ?" so no
    encoded word can start, and overlong text is cut with an ellipsis. The
    result always passes ``check_header``.
    """
    spaced = "".join(
        " " if char in LINE_BREAKS or unicodedata.category(char) == "Cc" else char for char in value
    )
    text = " ".join(spaced.split()).replace("=?", "= ?")
    if len(text) > max_length:
        text = text[: max(max_length - 1, 0)].rstrip() + "…"
    return text


def normalize_address(value: str, *, field: str = "address") -> str:
    """Return the one address in ``value``, normalised; refuse anything else.

    Only a bare address is accepted: no display name, no list, no line breaks.
    """
    check_header(field, value, MAX_ADDRESS_LENGTH)
    candidate = value.strip()
    if not candidate:
        raise InvalidHeader(f"The {field} is empty.")
    if any(sep in candidate for sep in ",;") or candidate.count("@") > 1:
        raise InvalidHeader(f"The {field} must be exactly one email address.")
    try:
        # No SMTPUTF8: a non-ASCII mailbox name could never be delivered by our transport.
        result = validate_email(candidate, check_deliverability=False, allow_smtputf8=False)
    except EmailNotValidError as error:
        raise InvalidHeader(f"The {field} is not valid: {error}") from None
    # Checked here, not left to email-validator, whose default lets it pass.
    local_length = len(result.local_part.encode())
    if local_length > MAX_LOCAL_PART_LENGTH:
        raise InvalidHeader(
            f"The {field} is not valid: the part before the @-sign has {local_length} "
            f"characters; at most {MAX_LOCAL_PART_LENGTH} are allowed."
        )
    return result.normalized


def normalize_mailbox(value: str, *, field: str = "sender") -> str:
    """Return ``Name <address>`` or a bare address, checked like ``normalize_address``."""
    check_header(field, value, MAX_ADDRESS_LENGTH + MAX_DISPLAY_NAME_LENGTH)
    pairs = getaddresses([value])
    if len(pairs) != 1 or not pairs[0][1]:
        raise InvalidHeader(f"The {field} must be one address, optionally with a name.")
    name, address = pairs[0]
    address = normalize_address(address, field=field)
    check_header(f"{field} name", name, MAX_DISPLAY_NAME_LENGTH)
    return str(Address(display_name=name, addr_spec=address)) if name else address


def as_header_address(mailbox: str) -> Address:
    """Turn a checked mailbox string into an ``Address`` for ``EmailMessage``."""
    name, address = parseaddr(mailbox)
    return Address(display_name=name, addr_spec=address)
