"""What the link page hands to the app: a MIME type and a URI scheme no browser renders or runs itself.

The activation file is served under the account's link; a type the browser renders (HTML, SVG,
XML, script) would run the file's text as a page of this origin, and a scheme the browser
handles itself (javascript:, data:, http:) would open the link in it instead of in the app.
Both settings come from the environment (config.py checks them at startup) or the console
(services/settings checks them when saved and when read); these two functions are the rule.
"""

import re

from services.errors import Invalid

# An allow rule: only the trees of types nobody else owns (RFC 6838 §3.2-3.4, and the x- names
# of unregistered types), subtype in restricted-name characters, no parameters.
_MIME_TYPE = re.compile(r"application/(?:x-|vnd\.|prs\.)[a-z0-9][a-z0-9!#$&^_.+-]{0,120}")
# Inside those trees, words of formats a browser still renders, runs or sniffs: +xml suffixes and
# application/vnd.wap.xhtml+xml are XML documents, x-javascript/x-ecmascript are scripts,
# x-pdf opens the PDF viewer, and Firefox sniffs application/x-unknown-content-type.
_RENDERED_WORDS = ("xml", "html", "svg", "script", "pdf", "unknown")

# RFC 3986 §3.1: ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ).
_SCHEME = re.compile(r"[a-z][a-z0-9+.-]{0,63}")
# Schemes the browser runs or navigates itself, and well-known ones other programs own (the mail or
# SMS composer, the app stores, Android intents, Windows' ms-* handlers) that would receive the link.
_OWNED_SCHEMES = frozenset({
    "about", "android-app", "blob", "brave", "callto", "chrome", "chrome-extension", "chrome-untrusted",
    "content", "data", "devtools", "edge", "file", "filesystem", "ftp", "ftps", "http", "https", "intent",
    "itms", "itms-apps", "itms-services", "jar", "javascript", "livescript", "mailto", "market", "mms",
    "moz-extension", "opera", "resource", "search-ms", "sip", "sips", "sms", "smsto", "tel", "vbscript",
    "view-source", "ws", "wss",
})


def check_mime_type(value: object, *, field: str = "activation_mime_type") -> str:
    """Return the activation MIME type in lower case, or refuse one a browser would render or sniff."""
    mime = str(value or "").strip().lower()
    if not _MIME_TYPE.fullmatch(mime):
        raise Invalid("Browsers render or sniff this type; use one of the app's own, application/x-… or "
                      "application/vnd.…, with no parameters (e.g. application/x-provisio-activation).",
                      field=field)
    if word := next((word for word in _RENDERED_WORDS if word in mime), None):
        raise Invalid(f"Browsers render or sniff {word.upper()} types; use one of the app's own "
                      "(e.g. application/x-provisio-activation).", field=field)
    return mime


def check_uri_scheme(value: object, *, field: str = "app_uri_scheme") -> str:
    """Return the app's URI scheme in lower case, or refuse one a browser or another program handles."""
    scheme = str(value or "").strip().lower().removesuffix(":")
    if not _SCHEME.fullmatch(scheme):
        raise Invalid("A URI scheme is a letter followed by letters, digits, + - or . (RFC 3986), "
                      "e.g. provisio.", field=field)
    if scheme in _OWNED_SCHEMES or scheme.startswith("ms-"):
        raise Invalid(f"{scheme}: is handled by the browser or another program, not by the app; "
                      "use the app's own scheme (e.g. provisio).", field=field)
    return scheme
