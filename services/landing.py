"""What the end user's link page shows: the link, the settings and the platform, assembled in one call."""

import functools
from dataclasses import dataclass
from urllib.parse import quote

from models import MessageKind, Platform, Status
from services import activation, links, settings

OFFERED = tuple(p for p in Platform if p is not Platform.OTHER)  # the "not your device?" list


@dataclass(frozen=True)
class LandingPage:
    """Everything the landing page shows, and nothing else: equal pages may share one rendering."""

    token: str
    form_token: str
    url: str
    app_link: str
    platform: Platform
    owner: str
    security_model: str | None
    install_first: bool
    installs: tuple[tuple[Platform, bool], ...]
    stores: tuple[str, ...]  # where the Install forms lead: the page's policy must let forms reach them


def page(token: str, platform: Platform) -> LandingPage:
    """Verify a link for its page and return what the page shows, or raise links.LinkGone."""
    config = settings.get_all()
    link = links.read_for_page(token, max_age_hours=config["link_max_age_hours"])
    url = links.url_for_token(config["public_base_url"], token)
    installs, stores = _offers(config, link.security_model)
    # quote(url + "/activation", safe=""), the parts every link shares quoted once (quote is per character)
    activation_url = _quoted(url.removesuffix(token)) + quote(token, safe="") + _quoted("/activation")
    return LandingPage(
        token=token, form_token=links.form_token(token), url=url,
        app_link=f"{config['app_uri_scheme']}://activate?u={activation_url}",
        platform=platform, owner=link.owner, security_model=link.security_model,
        # Install comes first until the user tapped it, unless the message was the activation one.
        install_first=link.hint != MessageKind.ACTIVATION and link.status.rank < Status.INSTALLED.rank,
        installs=installs, stores=stores,
    )


# Per security model: the settings it was worked out from, and the offers (while those settings are
# the ones settings.get_all() returns, every page of that model offers the same).
_OFFERS: dict[str | None, tuple[dict, tuple]] = {}


def _offers(config: dict, security_model: str | None) -> tuple[tuple[tuple[Platform, bool], ...], tuple]:
    """Which platforms the page can send to a download, and the downloads' URLs (for the policy)."""
    cached = _OFFERS.get(security_model)
    if cached is None or cached[0] is not config:
        downloads = {p: activation.download_url(config, p, security_model) for p in OFFERED}
        offers = (tuple((p, bool(url)) for p, url in downloads.items()),
                  tuple(sorted({url for url in downloads.values() if url})))
        cached = _OFFERS[security_model] = (config, offers)
    return cached[1]


@functools.lru_cache(maxsize=64)
def _quoted(text: str) -> str:
    return quote(text, safe="")
