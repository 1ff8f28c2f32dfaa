"""What the end user's link page shows: the link, the settings and the platform, assembled in one call."""

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
    downloads = {p: activation.download_url(config, p, link.security_model) for p in OFFERED}
    return LandingPage(
        token=token, form_token=links.form_token(token), url=url,
        app_link=f"{config['app_uri_scheme']}://activate?u={quote(url + '/activation', safe='')}",
        platform=platform, owner=link.owner, security_model=link.security_model,
        # Install comes first until the user tapped it, unless the message was the activation one.
        install_first=link.hint != MessageKind.ACTIVATION and link.status.rank < Status.INSTALLED.rank,
        installs=tuple((p, bool(url)) for p, url in downloads.items()),
        stores=tuple(sorted({url for url in downloads.values() if url})),
    )
