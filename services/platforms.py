"""Which platform a User-Agent belongs to."""

import functools

import user_agents

from models.enums import Platform

_BY_OS = {"iOS": Platform.IOS, "Android": Platform.ANDROID, "Mac OS X": Platform.MACOS,
          "Windows": Platform.WINDOWS, "Linux": Platform.LINUX, "Ubuntu": Platform.LINUX,
          "Fedora": Platform.LINUX, "Chrome OS": Platform.LINUX}


@functools.lru_cache(maxsize=4096)
def platform_of(user_agent: str) -> Platform:
    """Map a User-Agent string to the platform whose app we offer (parsing is cached)."""
    parsed = user_agents.parse(user_agent or "")
    if parsed.os.family == "iOS" and parsed.device.family == "iPad":
        return Platform.IPADOS
    # iPadOS 13+ claims to be a Mac; the page's script corrects that from touch support.
    return _BY_OS.get(parsed.os.family, Platform.OTHER)
