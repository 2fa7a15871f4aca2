"""A process run in a PrivateNetwork binds every interface of a namespace that has only its own
loopback; the host reaches it only through the relayed port."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from learnflow_stack.ports import LOOPBACK, free_port, listening_sockets
from learnflow_stack.private_network import (
    PrivateNetwork,
    interfaces,
    network_namespace,
    routes,
)
from learnflow_stack.process import ManagedProcess

# Binds every interface, as placement's and scheduler's healthz servers do.
_SERVE_EVERYWHERE = (
    "import http.server as h, sys; "
    "h.HTTPServer(('', int(sys.argv[1])), h.SimpleHTTPRequestHandler).serve_forever()"
)


@pytest.fixture
def served_inside(tmp_path: Path) -> Iterator[tuple[PrivateNetwork, ManagedProcess, int]]:
    port = free_port()
    network = PrivateNetwork("test-net", [port], tmp_path / "net.log")
    network.start()
    server = ManagedProcess(
        "everywhere",
        network.enter([sys.executable, "-c", _SERVE_EVERYWHERE, str(port)]),
        tmp_path / "server.log",
        cwd=tmp_path,
    )
    try:
        server.start()
        server.wait_ready(
            lambda: httpx.get(f"http://{LOOPBACK}:{port}/", timeout=1).status_code == 200,
            15,
            "GET / through the relay",
        )
        yield network, server, port
    finally:
        server.stop()
        if network.process is not None:
            network.process.stop()


def test_the_process_is_in_a_namespace_of_its_own_with_loopback_only(
    served_inside: tuple[PrivateNetwork, ManagedProcess, int],
) -> None:
    network, server, _ = served_inside
    assert network.process is not None

    assert network_namespace(server.pid) != network_namespace("self")
    assert network_namespace(server.pid) == network_namespace(network.process.pid)
    assert interfaces(server.pid) == ["lo"]
    assert routes(server.pid) == []  # nothing could leave it


def test_the_host_reaches_the_relayed_port_on_loopback_only(
    served_inside: tuple[PrivateNetwork, ManagedProcess, int],
) -> None:
    network, server, port = served_inside
    assert network.process is not None

    assert httpx.get(f"http://{LOOPBACK}:{port}/", timeout=2).status_code == 200
    # Inside, the server listens on every interface; on the host, only the relay listens, on
    # loopback, and the server holds nothing in the host's namespace.
    assert listening_sockets(server.pid, namespace_of=server.pid) & {
        ("0.0.0.0", port),
        ("::", port),
    }
    assert listening_sockets(network.process.pid) == {(LOOPBACK, port)}
    assert listening_sockets(server.pid) == set()
