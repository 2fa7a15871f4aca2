"""``python -m learnflow_stack.loopback_relay FD:PORT ...``, run inside a network namespace of
the stack's own (see ``private_network``): bring the namespace's loopback up, then relay every
connection accepted on the inherited listening socket FD (bound on the host's loopback) to PORT
on this namespace's loopback."""

from __future__ import annotations

import asyncio
import fcntl
import socket
import struct
import sys
from collections.abc import Callable, Sequence
from functools import partial

from learnflow_stack.ports import LOOPBACK

_SIOCGIFFLAGS = 0x8913
_SIOCSIFFLAGS = 0x8914
_IFF_UP = 0x1
_CHUNK = 65536


def bring_loopback_up() -> None:
    """A new network namespace starts with its loopback down: nothing in it could use 127.0.0.1."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        request = struct.pack("16sH22x", b"lo", 0)
        flags = struct.unpack_from("16sH", fcntl.ioctl(probe, _SIOCGIFFLAGS, request))[1]
        fcntl.ioctl(probe, _SIOCSIFFLAGS, struct.pack("16sH22x", b"lo", flags | _IFF_UP))


async def _pipe(
    source: asyncio.StreamReader, sink: asyncio.StreamWriter, hang_up: Callable[[], None]
) -> None:
    """Copy until the source ends, then pass the end on: the other direction may still talk.
    A reset on either side hangs up both connections, so the other direction ends too."""
    try:
        while chunk := await source.read(_CHUNK):
            sink.write(chunk)
            await sink.drain()
        if sink.can_write_eof():
            sink.write_eof()
    except OSError:
        hang_up()


async def _relay(port: int, client: asyncio.StreamReader, back: asyncio.StreamWriter) -> None:
    try:
        upstream, forth = await asyncio.open_connection(LOOPBACK, port)
    except OSError:
        back.close()  # nothing listens behind: the caller sees the connection end, as a refusal
        return

    def hang_up() -> None:
        forth.close()
        back.close()

    try:
        await asyncio.gather(_pipe(client, forth, hang_up), _pipe(upstream, back, hang_up))
    finally:
        hang_up()


def parse_route(route: str) -> tuple[socket.socket, int]:
    """``FD:PORT`` → (the inherited listening socket, the port it relays to)."""
    fd, port = route.split(":")
    return socket.socket(fileno=int(fd)), int(port)


async def relay_forever(routes: Sequence[tuple[socket.socket, int]]) -> None:
    servers = [
        await asyncio.start_server(partial(_relay, port), sock=listener)
        for listener, port in routes
    ]
    await asyncio.gather(*(server.serve_forever() for server in servers))


def main(argv: Sequence[str]) -> None:
    routes = [parse_route(route) for route in argv]
    bring_loopback_up()
    print(f"loopback up; relaying to ports {[port for _, port in routes]}", flush=True)
    asyncio.run(relay_forever(routes))


if __name__ == "__main__":
    main(sys.argv[1:])
