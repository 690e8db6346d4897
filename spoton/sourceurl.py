"""Camera source URLs: credentials redacted for display and logs, and hosts checked against SSRF (DESIGN §3).

A source URL's host is resolved once; the connection then goes to the checked address (no second resolution, so a
DNS answer that changes between check and connect — rebinding — cannot reach another address). Loopback,
link-local, private, shared (CGNAT), multicast, unspecified and reserved addresses, and every address that is not
globally routable, are refused unless ``SOURCE_ALLOW_CIDRS`` names them; cloud metadata addresses only when named
exactly (a /32 or /128), never through a wider allowed range.
"""

from __future__ import annotations

import base64
import ipaddress
import re
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

REDACTED = "***"
# Query parameters cameras use for credentials (``?user=admin&password=...``), matched case-insensitively.
_SECRET_PARAM = re.compile(r"pass|pwd|secret|token|key|auth|sig|user|login|credential", re.IGNORECASE)
# ``scheme://userinfo@`` anywhere in a text (log messages, error strings).
_USERINFO_IN_TEXT = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<userinfo>[^/@\s'\"]+)@")
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a)
    for a in (
        "169.254.169.254",  # AWS, GCP, Azure, OpenStack, DigitalOcean, ...
        "169.254.170.2",  # AWS ECS task credentials
        "fd00:ec2::254",  # AWS over IPv6
        "100.100.100.200",  # Alibaba Cloud
        "192.0.0.192",  # Oracle Cloud (classic)
    )
)


class SourceRefused(ValueError):
    """A source URL the policy refuses (message safe to show: credentials redacted)."""


def redact_url(url: str) -> str:
    """``url`` with its userinfo (``user:pass@``) and credential-like query values replaced by ``***``; other text
    unchanged. Not a URL (a file path): returned as is."""
    if "://" not in url:
        return url
    try:
        parts = urlsplit(url)
    except ValueError:
        return redact_text(url)
    netloc = parts.netloc
    if "@" in netloc:
        netloc = REDACTED + "@" + netloc.rsplit("@", 1)[1]
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        if any(_SECRET_PARAM.search(k) for k, _ in pairs):
            query = urlencode([(k, REDACTED if _SECRET_PARAM.search(k) else v) for k, v in pairs], safe="*")
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def restore_credentials(new: str, old: str) -> str:
    """``new`` as sent back by a client that read the redacted ``old`` (``rtsp://***@cam/x``): the stored
    credentials again when nothing but them was redacted; ``new`` unchanged otherwise (a new URL, or new
    credentials)."""
    if REDACTED not in new or redact_url(old) != new:
        return new
    return old


def redact_text(text: str) -> str:
    """Every ``scheme://user:pass@`` in free text (a log line, an error message) with the userinfo as ``***``."""
    if "://" not in text:
        return text
    return _USERINFO_IN_TEXT.sub(lambda m: m["scheme"] + REDACTED + "@", text)


def parse_cidrs(text: str) -> tuple[IPNetwork, ...]:
    """``"127.0.0.0/8, 10.1.2.3"`` -> networks; ValueError naming the bad entry."""
    nets = []
    for item in (x.strip() for x in text.split(",")):
        if item:
            try:
                nets.append(ipaddress.ip_network(item, strict=False))
            except ValueError as exc:
                raise ValueError(f"SOURCE_ALLOW_CIDRS: {item!r} is not an address or CIDR") from exc
    return tuple(nets)


def _embedded(ip: IPAddress) -> IPAddress:
    """The IPv4 address inside an IPv4-mapped, 6to4 or Teredo IPv6 address (those reach IPv4 hosts), else ``ip``."""
    if isinstance(ip, ipaddress.IPv6Address):
        inner = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if inner is not None:
            return inner
    return ip


def address_refusal(ip: IPAddress, allow: Iterable[IPNetwork]) -> str | None:
    """Why ``ip`` may not be a source (None when it may): not globally routable nor in ``allow``."""
    allow = tuple(allow)
    for candidate in {ip, _embedded(ip)}:
        if candidate in METADATA_ADDRESSES:
            if any(n.num_addresses == 1 and candidate in n for n in allow):
                continue
            return "a cloud metadata address"
        if any(candidate.version == n.version and candidate in n for n in allow):
            continue
        if candidate.is_multicast:
            return "a multicast address"
        if candidate.is_loopback:
            return "a loopback address"
        if candidate.is_link_local:
            return "a link-local address"
        if candidate.is_unspecified:
            return "an unspecified address"
        if not candidate.is_global:
            return "a private or reserved address"
    return None


@dataclass(frozen=True)
class CheckedUrl:
    """A source URL whose host resolved to ``address``, an allowed address: connect there, and only there."""

    url: str
    scheme: str
    host: str
    port: int | None
    address: str

    @property
    def pinned(self) -> str:
        """``url`` with its host replaced by the checked address (userinfo, port, path and query kept)."""
        parts = urlsplit(self.url)
        userinfo = parts.netloc.rsplit("@", 1)[0] + "@" if "@" in parts.netloc else ""
        host = f"[{self.address}]" if ":" in self.address else self.address
        port = f":{self.port}" if self.port is not None else ""
        return urlunsplit((parts.scheme, userinfo + host + port, parts.path, parts.query, parts.fragment))

    @property
    def credentials(self) -> tuple[str, str] | None:
        parts = urlsplit(self.url)
        if parts.username is None:
            return None
        return unquote(parts.username), unquote(parts.password or "")


def _literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return None


def resolve(host: str, port: int | None) -> list[IPAddress]:
    """Every address ``host`` resolves to (a literal address: itself); ValueError when it does not resolve."""
    literal = _literal(host)
    if literal is not None:
        return [literal]
    try:
        infos = socket.getaddrinfo(host, port or 0, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise ValueError(f"host {host!r} does not resolve: {exc}") from exc
    return list(dict.fromkeys(ipaddress.ip_address(info[4][0].split("%", 1)[0]) for info in infos))


def check_url(url: str, allow: Iterable[IPNetwork] = (), resolver=resolve) -> CheckedUrl:  # type: ignore[no-untyped-def]
    """Resolve ``url``'s host once and check every address it resolves to (one refused address refuses the URL,
    so a name cannot mix a public and an internal answer); SourceRefused otherwise, ValueError when the URL has no
    host or the host does not resolve."""
    allow = tuple(allow)
    shown = redact_url(url)
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"source {shown!r} is not a valid URL: {exc}") from None
    host = parts.hostname
    if not host:
        raise ValueError(f"source {shown!r} has no host")
    addresses = resolver(host, port)
    if not addresses:
        raise ValueError(f"host {host!r} does not resolve")
    for ip in addresses:
        reason = address_refusal(ip, allow)
        if reason is not None:
            what = f"{host} is " if len(addresses) == 1 and _literal(host) == ip else f"{host} resolves to {ip}, "
            raise SourceRefused(f"source {shown!r} refused: {what}{reason} (allow it with SOURCE_ALLOW_CIDRS)")
    return CheckedUrl(url, parts.scheme.lower(), host, port, str(addresses[0]))


def basic_auth_header(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
