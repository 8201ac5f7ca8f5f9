"""URLs: the API base a user gave, and its parts as messages and connections need them.
One parser for all (the early connection included). Standard library only, and no
urllib.parse: it costs an import on the early path."""

from __future__ import annotations

ENDPOINT = "/chat/completions"


def api_base(url: str) -> str:
    """The base URL without a trailing slash; the endpoint's own URL, given as the base,
    is accepted and trimmed."""
    url = url.rstrip("/")
    return url[: -len(ENDPOINT)] if url.endswith(ENDPOINT) else url


def netloc(url: str) -> str:
    """What lies between ``scheme://`` and the path: user:password@host:port."""
    scheme, sep, rest = url.partition("://")
    if not sep or not scheme[:1].isalpha():
        return url
    for end in "/?#":
        rest = rest.split(end, 1)[0]
    return rest


def host(url: str) -> str:
    """host[:port] of a URL, as messages show it (never its credentials)."""
    return netloc(url).rsplit("@", 1)[-1]


def hostname(url: str) -> str:
    """The host alone: no port, no brackets around an IPv6 address."""
    shown = host(url)
    if shown.startswith("["):
        return shown[1:].split("]", 1)[0]
    return shown.rsplit(":", 1)[0] if shown.count(":") == 1 else shown


def origin(url: str) -> tuple[str, str, int] | None:
    """(scheme, host, port) of an http(s) URL; None for anything unusual (credentials in
    it, a port that is not plain ASCII digits), which the normal path then handles."""
    scheme, sep, _ = url.partition("://")
    scheme = scheme.lower()
    if not sep or scheme not in ("http", "https"):
        return None
    location = netloc(url)
    if "@" in location or not location:
        return None
    port = 443 if scheme == "https" else 80
    if location.startswith("["):
        name, _, tail = location[1:].partition("]")
        number = tail[1:] if tail.startswith(":") else None
        if tail and number is None:
            return None
    else:
        name, colon, number = location.partition(":")  # type: ignore[assignment]
        number = number if colon else None
    if number is not None:
        if not (number.isascii() and number.isdigit()):
            return None
        port = int(number)
    if not name or not name.isascii() or not 0 < port < 65536:
        return None
    return scheme, name.lower(), port


def is_loopback(name: str) -> bool:
    name = name.lower()
    if name in ("localhost", "localhost.") or name.endswith(".localhost"):
        return True
    import ipaddress

    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False
