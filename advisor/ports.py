"""Claim a TCP port before a server loads anything, so a busy port is one line and exit 2, not a
traceback after minutes of model loading.

    sock = bind_port("127.0.0.1", 8000)     # listening socket, handed to the server
"""

from __future__ import annotations

import errno
import socket

from advisor.core.errors import AdvisorError


def bind_port(address: str, port: int, flag: str = "--port") -> socket.socket:
    """A bound socket on address:port (SO_REUSEADDR, as servers set it: TIME_WAIT is no conflict).
    A port out of range, in use, or an address this machine does not have is an AdvisorError."""
    if not 1 <= port <= 65535:
        raise AdvisorError(f"{flag} {port} is not a port number (1-65535)")
    try:
        infos = socket.getaddrinfo(address, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as e:
        raise AdvisorError(f"cannot resolve the address '{address}' ({e}); pass an IP address or host name") from None
    family, _, _, _, sockaddr = infos[0]
    s = socket.socket(family, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        s.bind(sockaddr)
    except OSError as e:
        s.close()
        if e.errno == errno.EADDRINUSE:
            raise AdvisorError(f"port {port} on {address} is already in use; pass {flag} with a free one") from None
        raise AdvisorError(f"cannot listen on {address}:{port} ({e.strerror}); check the address and {flag}") from None
    return s
