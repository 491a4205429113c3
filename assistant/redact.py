"""Credentials out of URLs before they are shown or recorded (messages, reports, logs)."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit


def display_url(url: str) -> str:
    """`url` for messages: without credentials (user:key@) or a query (?api-key=...).

    Never raises: a URL urlsplit rejects ("http://[bad") is shown cut at '@' and '?'.
    """
    try:
        parts = urlsplit(url)
        if "@" not in parts.netloc and not parts.query:
            return url
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        scheme, sep, rest = url.partition("://")
        rest = rest.split("?", 1)[0].rsplit("@", 1)[-1]
        return f"{scheme}{sep}{rest}" if sep else url.split("?", 1)[0].rsplit("@", 1)[-1]
    netloc = (f"[{host}]" if ":" in host else host) + (f":{port}" if port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))
