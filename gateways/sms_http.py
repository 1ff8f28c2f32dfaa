"""What the SMS gateways share: one timeout, one way to call a provider, one number check, the base URL."""

import math
import re
import threading
import time
from collections.abc import Callable
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import requests

from gateways.base import Outcome, Result, SettingField

TIMEOUT_SECONDS = 20.0
# E.164: a plus, a country code that never starts with 0, at most 15 digits in all.
_INTERNATIONAL = re.compile(r"\+[1-9]\d{6,14}")
# GSM 03.38: the basic set costs one septet, the extension table two; any other character makes an SMS
# Unicode (UCS-2, 70 per part). The one home of the alphabet: the templates page counts with it too.
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENDED = frozenset("^{}\\[~]|€\f")
GSM7 = GSM7_BASIC | GSM7_EXTENDED
# Every SMS gateway's last setting: a stand-in's or a regional endpoint's URL instead of the provider's.
BASE_URL_FIELD = SettingField("base_url", "Base URL (empty: the provider's)", kind="url")
# The longest SMS an account may send, in parts. Providers set it per account or contract, so it is a
# setting; a blank one is DEFAULT_MAX_PARTS (each gateway's `default_max_parts` says where its comes from).
DEFAULT_MAX_PARTS = 6
MAX_PARTS_FIELD = SettingField("max_parts", "Longest SMS, in parts (empty: the provider's default)",
                               kind="count", description="Templates longer than this are refused when saved.")
# How fast all workers together send through a gateway. Providers set it per account; a blank one is the
# gateway's `default_rate`: the provider's documented limit, or DEFAULT_RATE where we found none.
DEFAULT_RATE = 10
MAX_RATE = 10_000  # the highest a setting may name (the settings form's bound too)


def rate_field(default: float) -> SettingField:
    """The send rate's setting, naming the gateway's default."""
    return SettingField("rate", "Messages per second (empty: the provider's default)", kind="rate",
                        description=f"All workers together send no faster through this gateway. "
                                    f"Empty: {default:g} a second.")
# The longest wait a provider's "retry after" is taken at: a larger one is read as this.
MAX_RETRY_AFTER = 3600.0
_ALPHANUMERIC = re.compile(r"[A-Za-z0-9 ]{1,11}")
_NUMBER = re.compile(r"\+?[1-9]\d{6,14}")


def check_originator(provider: str) -> Callable[[str], str]:
    """The rule of a sender most providers share: up to 11 letters, digits and spaces, or an
    international number (up to 15 digits, E.164)."""

    def check(value: str) -> str:
        value = value.strip()
        if _NUMBER.fullmatch(value) or (not value.lstrip("+").isdigit() and _ALPHANUMERIC.fullmatch(value)):
            return value
        if value.lstrip("+").isdigit():
            raise ValueError(f"{provider} takes a number as +<country><number>, up to 15 digits.")
        raise ValueError(f"{provider} takes up to 11 letters, digits and spaces as a sender "
                         f"({len(value)} characters given), or a phone number.")

    return check


def max_parts(settings: dict[str, Any], default: int) -> int:
    """The longest SMS a gateway's settings allow, in parts."""
    try:
        return max(1, int(settings.get("max_parts") or default))
    except (TypeError, ValueError):
        return default


def shared_fields(default_rate: float) -> tuple[SettingField, ...]:
    """The settings every SMS gateway ends with: its longest SMS, its send rate and its base URL."""
    return MAX_PARTS_FIELD, rate_field(default_rate), BASE_URL_FIELD


def rate(settings: dict[str, Any], default: float) -> float:
    """Messages per second a gateway's settings allow."""
    try:
        value = float(settings.get("rate") or default)
    except (TypeError, ValueError):
        return float(default)
    return min(max(value, 1.0), MAX_RATE) if math.isfinite(value) else float(default)


class ProviderError(Exception):
    """The send is over before the provider accepted it; `result` says why."""

    def __init__(self, result: Result) -> None:
        super().__init__(result.detail)
        self.result = result


_local = threading.local()


class _Session(requests.Session):
    """A session that reads the environment's proxy and CA settings once per provider host, not on every
    request: requests reads them per request, and the scan of the environment cost a third of a send."""

    def __init__(self) -> None:
        super().__init__()
        self._environment: dict[tuple[str, str], dict[str, Any]] = {}

    def merge_environment_settings(self, url, proxies, stream, verify, cert):
        if proxies or stream is not None or verify is not None or cert is not None:
            return super().merge_environment_settings(url, proxies, stream, verify, cert)
        parts = urlsplit(url)
        key = (parts.scheme, parts.netloc)
        if key not in self._environment:
            self._environment[key] = super().merge_environment_settings(url, {}, None, None, None)
        kept = self._environment[key]
        return {**kept, "proxies": dict(kept["proxies"])}  # a caller may change its copy


def session() -> requests.Session:
    """This thread's HTTP session: connections (and their TLS handshakes) are kept for the next message."""
    if (current := getattr(_local, "session", None)) is None:
        current = _local.session = _Session()
    return current


def post(provider: str, url: str, **kwargs: Any) -> requests.Response:
    """POST to a provider with the gateways' timeout; no answer at all is always worth another try."""
    try:
        return session().post(url, timeout=TIMEOUT_SECONDS, **kwargs)
    except requests.Timeout as exc:
        # The provider may still have taken the message; the outbox retries and says so in the detail.
        raise ProviderError(Result(Outcome.TRANSIENT, detail=(
            f"{provider} did not answer within {TIMEOUT_SECONDS:g} s ({type(exc).__name__})."))) from exc
    except requests.RequestException as exc:
        # The exception's text names the URL, never a credential: those travel in headers and bodies.
        raise ProviderError(Result(Outcome.TRANSIENT, detail=(
            f"{provider} could not be reached ({type(exc).__name__})."))) from exc


def by_http_status(status: int) -> Outcome:
    """Too many requests is a wait; a timeout or a server error passes; any other refusal will come again."""
    if status == 429:
        return Outcome.THROTTLED
    return Outcome.TRANSIENT if status == 408 or status >= 500 else Outcome.PERMANENT


def refusal(response: requests.Response, detail: str) -> Result:
    """A provider's refusal judged by its HTTP status, with the wait its Retry-After header names."""
    return Result(by_http_status(response.status_code), detail=detail, retry_after=retry_after(response))


def retry_after(response: requests.Response) -> float | None:
    """The seconds a Retry-After header asks for (a number or an HTTP date), None when it names none."""
    value = (response.headers.get("Retry-After") or "").strip()
    if not value:
        return None
    try:
        seconds = float(value) if value.replace(".", "", 1).isdigit() else (
            parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError, OverflowError):
        return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


def json_of(response: requests.Response) -> dict[str, Any]:
    """The answer's JSON object, or an empty one when the provider (or a proxy) sent something else."""
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def unexpected(provider: str, response: requests.Response) -> Result:
    """An answer that is not the provider's documented JSON: judge by the HTTP status and say so in a
    short sentence; a proxy's or server's HTML error page is named, never shown (a CSR reads this)."""
    status = f"HTTP {response.status_code}" + (f" {response.reason}" if response.reason else "")
    text = " ".join(response.text.split())
    if "html" in response.headers.get("Content-Type", "").lower() or text.startswith("<"):
        detail = (f"{provider} answered {status} with an error page instead of its API's answer; "
                  "try again later.")
    else:
        detail = f"{provider} answered {status}" + (f": {text[:200]}" if text else ".")
    return refusal(response, detail)


def check_international(number: str) -> None:
    """Refuse, before any request, a number that is not +<country><number>: no provider can route it."""
    if not _INTERNATIONAL.fullmatch(number):
        raise ProviderError(Result(Outcome.PERMANENT, detail=(
            f"{number!r} is not an international mobile number (+<country code><number>).")))


def is_gsm7(text: str) -> bool:
    """Whether the text fits the GSM 7-bit alphabet, so it needs no Unicode encoding."""
    return all(char in GSM7 for char in text)
