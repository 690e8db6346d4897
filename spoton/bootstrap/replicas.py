"""Replicas of a stateful stage and which one owns a key (DESIGN §8).

Stateless calls (Detect, Embed) are spread by gRPC's own ``round_robin`` policy over every address a ``dns:///``
target resolves to. Stateful streams (a camera's tracker, a session's gallery) must stick to one replica: the key
is placed on a consistent-hash ring of the replicas (``uhashring``), so when one replica disappears only its keys
move, and each moves to the same surviving replica from every gateway.
"""

from __future__ import annotations

import socket

from uhashring import HashRing


def _strip_scheme(address: str) -> str:
    for prefix in ("dns:///", "dns:", "ipv4:", "ipv6:"):
        if address.startswith(prefix):
            return address[len(prefix) :]
    return address


def split_host_port(endpoint: str) -> tuple[str, int]:
    host, _, port = endpoint.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"expected host:port, got {endpoint!r}")
    return host.strip("[]"), int(port)


def resolve(address: str) -> list[str]:
    """Every ``ip:port`` behind a gRPC target: ``host:port`` (a headless Service's DNS name gives one A record per
    ready pod), ``dns:///host:port`` or a comma-separated list. Sorted, so every gateway sees the same ring."""
    endpoints: set[str] = set()
    for part in _strip_scheme(address).split(","):
        host, port = split_host_port(part.strip())
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except socket.gaierror:
            continue
        for family, *_, sockaddr in infos:
            ip = sockaddr[0]
            endpoints.add(f"[{ip}]:{port}" if family == socket.AF_INET6 else f"{ip}:{port}")
    return sorted(endpoints)


class ReplicaRing:
    """Consistent hashing of keys (``session/camera``) onto the live replicas of one stage."""

    def __init__(self, endpoints: list[str]) -> None:
        if not endpoints:
            raise ValueError("no replicas")
        self._ring = HashRing(nodes=list(endpoints))

    @property
    def endpoints(self) -> list[str]:
        return sorted(self._ring.get_nodes())

    def owner(self, key: str) -> str:
        return self._ring.get_node(key)

    def update(self, endpoints: list[str]) -> None:
        """Make the ring hold exactly ``endpoints`` (after a re-resolve); keys of unchanged replicas stay put."""
        current = set(self._ring.get_nodes())
        for gone in current - set(endpoints):
            self._ring.remove_node(gone)
        for new in set(endpoints) - current:
            self._ring.add_node(new)

    def remove(self, endpoint: str) -> None:
        if endpoint in self._ring.get_nodes() and len(self._ring.get_nodes()) > 1:
            self._ring.remove_node(endpoint)
