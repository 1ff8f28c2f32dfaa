"""Message templates per kind and channel: sandboxed Jinja, a fixed set of placeholders, SMS length."""

import functools
import math

from jinja2 import TemplateError

from gateways import SMS_GATEWAYS
from gateways.sms_http import GSM7_EXTENDED, is_gsm7, max_parts
from models import Channel, MessageKind, StaffUser
from services import links, settings
from services.errors import Invalid
from services.template_sandbox import BoundedSandbox

# The only values a template sees: the SIP password is not among them, so it can never be rendered.
# A preview's link is made like a real one (sample_context), so the SMS count is the real one's.
PLACEHOLDERS = {"link": "https://activate.example.com/m/<token>", "owner": "Anna Meier",
                "username": "48213377", "group": "Acme Bank"}
_sandbox = BoundedSandbox()  # bounded work, sizes and output: a saved template cannot stall the worker

DEFAULTS: dict[MessageKind, tuple[str, str]] = {
    MessageKind.LINK: ("Your secure phone service",
                       "Hello {{ owner or 'there' }}, install and activate your secure phone app: "
                       "{{ link }}"),
    MessageKind.INSTALL: ("Install your secure phone app",
                          "Hello {{ owner or 'there' }}, install your secure phone app here: {{ link }}"),
    MessageKind.ACTIVATION: ("Activate your secure phone app",
                             "Hello {{ owner or 'there' }}, the app is installed? Tap to activate it: "
                             "{{ link }}"),
    MessageKind.PROVISIONING: ("Set up your secure phone app",
                               "Hello {{ owner or 'there' }},\n\nopen this link on the device you want to "
                               "use (iPad, tablet or computer) to install and activate the secure phone "
                               "app:\n\n{{ link }}\n\nThe link works once and expires; ask your operator "
                               "for a new one if needed."),
}


def key(kind: MessageKind, channel: Channel) -> str:
    return f"{kind.value}/{channel.value}"


def get(kind: MessageKind, channel: Channel) -> tuple[str, str]:
    """Return (subject, body) for a kind and channel: the administrator's, else the default."""
    stored = settings.get("templates").get(key(kind, channel))
    return (stored["subject"], stored["body"]) if stored else DEFAULTS[kind]


def render(text: str, context: dict[str, str]) -> str:
    """Render one template in the bounded sandbox; bad syntax, an unknown placeholder or too much work
    raises Invalid."""
    try:
        return _sandbox.render(_compiled(text), context)
    except TemplateError as exc:
        reason = (exc.message or str(exc)).rstrip(".")
        raise Invalid(f"The template does not work: {reason}.", field="body") from None
    except RecursionError:
        raise Invalid("The template does not work: it nests or recurses too deeply.", field="body") from None
    except (ArithmeticError, LookupError, TypeError, ValueError, AttributeError) as exc:
        # The template's own expression failed (1/0, a wrong type, a missing key): the author's mistake.
        raise Invalid(f"The template does not work: {type(exc).__name__}: {str(exc)[:200]}.",
                      field="body") from None


@functools.lru_cache(maxsize=64)
def _compiled(text: str):
    """Compile a template once: the worker renders the same few for every message."""
    return _sandbox.from_string(text)


def sample_context() -> dict[str, str]:
    """The sample values, with a link of the configured public URL and of a real link's length and
    alphabet: a GSM-7 template with a link counts as the GSM-7 SMS it will be."""
    return {**PLACEHOLDERS, "link": links.sample_url(settings.get("public_base_url"))}


def preview(subject: str, body: str) -> tuple[str, str]:
    """Render with sample values, as an administrator sees it before saving."""
    context = sample_context()
    return render(subject, context), render(body, context)


def sms_limit(sms: dict | None = None) -> tuple[str, int] | None:
    """The default SMS gateway's name and the longest SMS its settings allow, in parts (None: no gateway)."""
    sms = settings.get("sms") if sms is None else sms
    name = sms.get("gateway")
    if name not in SMS_GATEWAYS:
        return None
    return name, max_parts(sms.get(name) or {}, SMS_GATEWAYS[name].default_max_parts)


def check_fits(text: str, sms: dict | None = None, *, field: str = "body") -> None:
    """Refuse a rendered SMS longer than the default gateway sends, before any message meets it."""
    limit = sms_limit(sms)
    if limit is None:
        return
    name, most = limit
    _chars, parts, encoding = sms_length(text)
    if parts > most:
        raise Invalid(f"This SMS would go as {parts} parts ({encoding}); {name.capitalize()} sends at most "
                      f"{most} (Settings, SMS gateways, \"Longest SMS\"). Shorten the text.", field=field)


def check_gateway_fits(sms: dict) -> None:
    """Refuse SMS settings (a new default gateway, a lower part limit) that a saved SMS template exceeds."""
    for kind in MessageKind:
        if kind is MessageKind.PROVISIONING:
            continue  # provisioning messages travel by e-mail only
        subject, body = get(kind, Channel.SMS)
        try:
            check_fits(preview(subject, body)[1], sms, field="sms_gateway")
        except Invalid as exc:
            if exc.field != "sms_gateway":
                continue  # a template that does not render is its own page's problem
            raise Invalid(f"The {kind.value} SMS template: {exc.message}", field="sms_gateway") from None


def sms_length(text: str) -> tuple[int, int, str]:
    """Return (characters, segments, encoding) the way SMS networks count them."""
    if is_gsm7(text):
        septets = sum(2 if char in GSM7_EXTENDED else 1 for char in text)
        return septets, 1 if septets <= 160 else math.ceil(septets / 153), "GSM-7"
    units = len(text.encode("utf-16-le")) // 2
    return units, 1 if units <= 70 else math.ceil(units / 67), "UCS-2"


def save(kind: MessageKind, channel: Channel, subject: str, body: str, *, actor: StaffUser) -> None:
    """Check the template renders and, for an SMS, fits the default gateway; then store it (an empty body
    restores the default)."""
    rendered = preview(subject, body)[1] if body.strip() else preview(*DEFAULTS[kind])[1]
    if channel is Channel.SMS:
        check_fits(rendered)
    templates = dict(settings.get("templates"))
    if body.strip():
        templates[key(kind, channel)] = {"subject": subject, "body": body}
    else:
        templates.pop(key(kind, channel), None)
    settings.save({"templates": templates}, actor=actor)
