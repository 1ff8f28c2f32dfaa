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
    Matched by neither: allowed. Rules are IPv4; an IPv6 client is matched as the IPv4 address it
    maps (::ffff:10.0.0.1 is 10.0.0.1), and a rule of every address (`0.0.0.0/0.0.0.0`) covers
    IPv6 clients too, so "deny all, permit one" lets no IPv6 address through.
    """
    ip = ipaddress.ip_address(address)
    if ip.version == 6 and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if any(_matches(ip, rule) for rule in permit):
        return True
    return not any(_matches(ip, rule) for rule in deny)


def _matches(ip: ipaddress.IPv4Address | ipaddress.IPv6Address, rule: str) -> bool:
    network = ipaddress.ip_network(rule, strict=False)
    if network.prefixlen == 0:  # every address, whatever its family
        return True
    return ip.version == network.version and ip in network


def as_cidrs(rules: Iterable[str]) -> list[str]:
    """The rules as CIDR networks that match exactly the addresses `is_allowed` matches them with.

    For the SIP server, which tests a request's source address against such a list: each network
    also in its IPv4-mapped IPv6 form (as `is_allowed` reads ::ffff:10.0.0.1), a rule of every
    address in both families.
    """
    cidrs: list[str] = []
    for rule in rules:
        network = ipaddress.IPv4Network(rule, strict=False)
        if network.prefixlen == 0:
            cidrs += ["0.0.0.0/0", "::/0"]
        else:
            cidrs += [network.with_prefixlen, f"::ffff:{network.network_address}/{96 + network.prefixlen}"]
    return cidrs
