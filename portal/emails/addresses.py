"""Checks on addresses and header values before anything is queued."""

from __future__ import annotations

from email.headerregistry import Address
from email.utils import getaddresses
from email.utils import parseaddr

from email_validator import EmailNotValidError
from email_validator import validate_email

from portal.emails import constants as EMAIL

# RFC 5321: 64 octets of local part, 254 of address in a forward path.
MAX_ADDRESS_LENGTH = 254
MAX_DISPLAY_NAME_LENGTH = 120


class InvalidHeader(ValueError):
    """A header value or address that must never reach a message."""


def check_header(name: str, value: str, max_length: int = EMAIL.SUBJECT_MAX_LENGTH) -> str:
    """Return ``value`` if it is safe in a header; refuse line breaks and oversize."""
    if any(char in value for char in "\r\n\0"):
        raise InvalidHeader(f"The {name} must be a single line.")
    if len(value) > max_length:
        raise InvalidHeader(f"The {name} is longer than {max_length} characters.")
    return value


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
