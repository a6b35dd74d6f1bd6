"""Turning a config "host:port" into what `socket.bind` takes; shared by hermesd's port check and the
daemons that bind, so both read an address the same way."""

from __future__ import annotations

import socket


def listen_address(address: str) -> tuple[socket.AddressFamily, str, int]:
    """(family, host, port) of "host:port"; an empty host means every IPv4 address, "[::1]" is IPv6."""
    host, _, port = address.rpartition(":")
    host = host.strip("[]") or "0.0.0.0"
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    return family, host, int(port)
