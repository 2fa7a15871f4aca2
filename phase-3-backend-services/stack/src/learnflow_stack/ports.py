from __future__ import annotations

import contextlib
import ipaddress
import os
import socket
from dataclasses import dataclass
from pathlib import Path

LOOPBACK = "127.0.0.1"
_handed_out: set[int] = set()


def free_port() -> int:
    """A loopback port nobody listens on now, never the same one twice in this process."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((LOOPBACK, 0))
            port: int = sock.getsockname()[1]
        if port not in _handed_out:
            _handed_out.add(port)
            return port


def is_listening(port: int, host: str = LOOPBACK) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


@dataclass(frozen=True)
class SocketEntry:
    """One of a process's sockets, as the kernel's /proc/net tables list it."""

    protocol: str  # tcp, tcp6, udp or udp6
    local: tuple[str, int]
    remote: tuple[str, int]  # the unspecified address and port 0 when not connected
    listening: bool


def _address(hex_address: str) -> tuple[str, int]:
    address_hex, port_hex = hex_address.split(":")
    raw = bytes.fromhex(address_hex)
    # /proc prints each 32-bit word in host (little-endian) order.
    words = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
    address = ipaddress.ip_address(words)
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    return str(address), int(port_hex, 16)


def sockets_of(pid: int, namespace_of: int | str = "self") -> list[SocketEntry]:
    """Every TCP and UDP socket ``pid`` holds in the network namespace of process
    ``namespace_of`` (by default ours), from /proc: IPv4 and IPv6."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):
            target = os.readlink(fd)
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    found = []
    for protocol in ("tcp", "tcp6", "udp", "udp6"):
        lines = Path(f"/proc/{namespace_of}/net/{protocol}").read_text().splitlines()[1:]
        for line in lines:
            fields = line.split()
            if fields[9] in inodes:
                listening = protocol.startswith("tcp") and fields[3] == "0A"  # 0A = LISTEN
                found.append(
                    SocketEntry(protocol, _address(fields[1]), _address(fields[2]), listening)
                )
    return found


def listening_sockets(pid: int, namespace_of: int | str = "self") -> set[tuple[str, int]]:
    """(address, port) of every TCP socket ``pid`` listens on (see ``sockets_of``)."""
    return {entry.local for entry in sockets_of(pid, namespace_of) if entry.listening}
