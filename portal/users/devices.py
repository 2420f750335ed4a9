"""Readable names for the browsers accounts sign in from."""

from __future__ import annotations

from functools import lru_cache

import ua_parser

UNKNOWN_DEVICE = "Unknown device"
# A User-Agent header is free text from the client; anything past this is noise
# (real ones stay well under it) and would make each parse, and the cache, costlier.
MAX_USER_AGENT_LENGTH = 512
# Few distinct browsers sign in; the cache keeps parsing off the sign-in path.
CACHE_SIZE = 1024


def describe(user_agent: str | None) -> str:
    """Name the browser and system behind ``user_agent``, e.g. "Firefox 121 on Windows 10"."""
    if not user_agent or not user_agent.strip():
        return UNKNOWN_DEVICE
    return _describe(user_agent.strip()[:MAX_USER_AGENT_LENGTH])


@lru_cache(maxsize=CACHE_SIZE)
def _describe(user_agent: str) -> str:
    result = ua_parser.parse(user_agent)
    browser = _name(result.user_agent.family, result.user_agent.major) if result.user_agent else ""
    system = _name(result.os.family, result.os.major) if result.os else ""
    if browser and system:
        return f"{browser} on {system}"
    return browser or system or UNKNOWN_DEVICE


def _name(family: str | None, major: str | None) -> str:
    """Join a family and its major version, leaving out the parser's "Other"."""
    if not family or family == "Other":
        return ""
    return f"{family} {major}" if major else family
