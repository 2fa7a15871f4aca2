"""The /proc socket reader the network-safety tests rely on sees what a process really holds."""

from __future__ import annotations

import contextlib
import os
import socket

from learnflow_stack.ports import LOOPBACK, listening_sockets, sockets_of


def test_it_sees_wildcard_and_loopback_listeners() -> None:
    with contextlib.ExitStack() as sockets:
        anywhere = sockets.enter_context(socket.create_server(("0.0.0.0", 0)))
        local = sockets.enter_context(socket.create_server((LOOPBACK, 0)))
        expected = {("0.0.0.0", anywhere.getsockname()[1]), (LOOPBACK, local.getsockname()[1])}
        found = listening_sockets(os.getpid())

    assert expected <= found


def test_it_sees_both_ends_of_a_connection_and_udp_sockets() -> None:
    with contextlib.ExitStack() as sockets:
        server = sockets.enter_context(socket.create_server((LOOPBACK, 0)))
        client = sockets.enter_context(socket.create_connection(server.getsockname()))
        datagrams = sockets.enter_context(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
        datagrams.bind((LOOPBACK, 0))
        client_end, server_end = client.getsockname(), server.getsockname()
        datagram_end = datagrams.getsockname()
        entries = sockets_of(os.getpid())

    connected = [e for e in entries if e.local == client_end]
    assert [(e.protocol, e.remote, e.listening) for e in connected] == [("tcp", server_end, False)]
    assert [e.protocol for e in entries if e.local == datagram_end] == ["udp"]
