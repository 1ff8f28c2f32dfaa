"""What of a request may reach a log: paths whose segments are credentials, masked.

One home for the rule, used by the app's logger (errors.init_app) and by gunicorn's error and
access logs (deploy/gunicorn.conf.py); deploy/nginx.conf's `map` blocks mirror the same patterns.
Standard library only: gunicorn's master imports this before it loads the app.
"""

import logging
import re

MASK = "[masked]"
# A path segment that is itself a credential: the end user's link token, a provider's receipt
# secret, a Snom first-boot link and a Snom phone's settings secret. Anywhere in a text (a request
# line, a full URL in a Referer, an exception message), up to the next /, ?, quote or space.
# A secret's trailing ".xml" stays (a Snom settings file); matched greedily and split off in _masked:
# a lazy match with an optional tail costs a step per character, on every request line.
_SECRET_SEGMENTS = re.compile(
    r"(?P<head>/m/|/hooks/receipts/[A-Za-z0-9_-]+/|/snom/first/|/snom/(?=[^/\s?\"']+/[^/\s?\"']+\.xml))"
    r"(?P<secret>[^/\s?#\"']+)"
)

_HEADS = ("/m/", "/hooks/receipts/", "/snom/")  # each alternative of _SECRET_SEGMENTS starts with one


def mask(text: str) -> str:
    """Replace every credential path segment in a text by [masked], keeping the rest readable."""
    if not any(head in text for head in _HEADS):  # most lines: no credential can be in them
        return text
    return _SECRET_SEGMENTS.sub(_masked, text)


def _masked(match: re.Match) -> str:
    tail = ".xml" if match["secret"].endswith(".xml") and len(match["secret"]) > len(".xml") else ""
    return f"{match['head']}{MASK}{tail}"


class SecretFilter(logging.Filter):
    """Mask credential path segments in a log record's message and in its exception text."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the record in place (formatted once, here); never drop it."""
        message = record.getMessage()
        record.msg, record.args = mask(message), None
        if record.exc_info and not record.exc_text:
            # The formatter reuses exc_text: the traceback is masked once, like the message.
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask(record.exc_text)
        return True


def install(logger: logging.Logger) -> None:
    """Add the SecretFilter to a logger once (gunicorn sets its loggers up again on reload)."""
    if not any(isinstance(existing, SecretFilter) for existing in logger.filters):
        logger.addFilter(SecretFilter())
