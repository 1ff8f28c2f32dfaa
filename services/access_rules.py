"""SNOM access rules: parsing `<ip>/<netmask>` and the deny-then-permit decision."""

import ipaddress
from collections.abc import Iterable


def normalise_rule(text: str) -> str:
    """Return a rule as `<network>/<dotted netmask>`; accept a dotted mask or a CIDR prefix."""
    text = text.strip()
    if "/" not in text:
        raise ValueError(f"“{text}” needs the form <ip address>/<netmask>, e.g. 10.0.0.0/255.0.0.0.")
    try:
        network = ipaddress.IPv4Network(text, strict=False)
    except ValueError:
        raise ValueError(
            f"“{text}” is not a valid <ip address>/<netmask> (e.g. 216.27.242.66/255.255.255.255)."
        ) from None
    return f"{network.network_address}/{network.netmask}"


def is_allowed(address: str, deny: Iterable[str], permit: Iterable[str]) -> bool:
    """Decide whether an address may connect: deny rules first, then permit rules win.

    Matched by a permit: allowed, even if a deny matched. Matched only by a deny: refused.
    Matched by neither: allowed.
    """
    ip = ipaddress.ip_address(address)
    if any(ip in ipaddress.ip_network(rule, strict=False) for rule in permit):
        return True
    return not any(ip in ipaddress.ip_network(rule, strict=False) for rule in deny)
