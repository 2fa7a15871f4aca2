"""The relay carries bytes both ways, passes each side's end on, and refuses when nothing
listens behind it (the namespace itself is tested in test_private_network.py)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from learnflow_stack.loopback_relay import parse_route, relay_forever
from learnflow_stack.ports import LOOPBACK

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


def _reset(writer: asyncio.StreamWriter) -> None:
    """End the connection with a reset (RST), as the kernel does for a killed process that
    left data unread, instead of an orderly end (FIN)."""
    writer.get_extra_info("socket").setsockopt(
        socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
    )
    writer.transport.abort()


async def _shout_until_end(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Answers everything it was sent, upper-cased, once the sender has finished."""
    writer.write((await reader.read()).upper())
    await writer.drain()
    writer.close()


Connection = tuple[asyncio.StreamReader, asyncio.StreamWriter]


@pytest.fixture
async def through_relay() -> AsyncIterator[Callable[[Handler | None], Awaitable[Connection]]]:
    """Starts a relay to a server running ``handler`` (None: to a port nobody listens on)
    and returns a connection opened through it."""
    tasks: list[asyncio.Task[None]] = []
    servers: list[asyncio.Server] = []
    writers: list[asyncio.StreamWriter] = []

    async def connect(handler: Handler | None) -> Connection:
        if handler is None:
            with socket.create_server((LOOPBACK, 0)) as unused:
                target_port = unused.getsockname()[1]
        else:
            server = await asyncio.start_server(handler, LOOPBACK, 0)
            servers.append(server)
            target_port = server.sockets[0].getsockname()[1]
        listener = socket.create_server((LOOPBACK, 0))
        route = parse_route(f"{listener.detach()}:{target_port}")
        tasks.append(asyncio.create_task(relay_forever([route])))
        reader, writer = await asyncio.open_connection(*route[0].getsockname())
        writers.append(writer)
        return reader, writer

    yield connect
    for writer in writers:
        writer.close()
    for task in tasks:
        task.cancel()
    for server in servers:
        server.close()


async def test_bytes_cross_both_ways_and_each_end_is_passed_on(
    through_relay: Callable[[Handler | None], Awaitable[Connection]],
) -> None:
    reader, writer = await through_relay(_shout_until_end)
    writer.write(b"placement ")
    writer.write(b"table")
    writer.write_eof()  # the server answers only once it sees our end: the relay passed it on

    answer = await asyncio.wait_for(reader.read(), timeout=5)

    assert answer == b"PLACEMENT TABLE"


async def test_a_large_stream_arrives_whole(
    through_relay: Callable[[Handler | None], Awaitable[Connection]],
) -> None:
    reader, writer = await through_relay(_shout_until_end)
    payload = bytes(range(97, 123)) * 40_000  # ~1 MB, many relay chunks

    writer.write(payload)
    writer.write_eof()
    answer = await asyncio.wait_for(reader.read(), timeout=10)

    assert answer == payload.upper()


async def test_with_nothing_behind_the_connection_ends_at_once(
    through_relay: Callable[[Handler | None], Awaitable[Connection]],
) -> None:
    reader, _ = await through_relay(None)

    assert await asyncio.wait_for(reader.read(), timeout=5) == b""


async def test_when_the_server_goes_away_the_caller_sees_its_connection_end(
    through_relay: Callable[[Handler | None], Awaitable[Connection]],
) -> None:
    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readexactly(5)
        _reset(writer)

    reader, writer = await through_relay(hang_up)
    writer.write(b"hello")  # and keep our side open: only the server's end can end it

    assert await asyncio.wait_for(reader.read(), timeout=5) == b""


async def test_when_the_caller_goes_away_the_server_sees_its_connection_end(
    through_relay: Callable[[Handler | None], Awaitable[Connection]],
) -> None:
    server_saw_the_end = asyncio.Event()

    async def stay_open(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"welcome")  # and never end on its own
        await writer.drain()
        with contextlib.suppress(OSError):
            await reader.read()
        server_saw_the_end.set()

    reader, writer = await through_relay(stay_open)
    assert await asyncio.wait_for(reader.readexactly(7), timeout=5) == b"welcome"

    _reset(writer)

    await asyncio.wait_for(server_saw_the_end.wait(), timeout=5)
