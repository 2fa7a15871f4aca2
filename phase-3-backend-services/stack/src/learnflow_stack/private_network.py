"""A network namespace the stack creates for one process that binds every interface.

Dapr 1.18.2's placement and scheduler ignore ``--healthz-listen-address``: their healthz servers
bind ":port", every interface of their network namespace. Run in a namespace whose only
interface is its own loopback, nothing outside the machine (nor on the host's loopback) can
reach them, except the ports relayed in: the relay process creates the namespace, holds it,
and carries each connection on those host-loopback ports to the same port inside."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from learnflow_stack.ports import LOOPBACK
from learnflow_stack.process import ManagedProcess, StartError


def network_namespace(pid: int | str) -> str:
    """The kernel's name of the network namespace a process is in (``pid``: or "self")."""
    return os.readlink(f"/proc/{pid}/ns/net")


def namespace_flags(euid: int) -> tuple[list[str], list[str]]:
    """(unshare's flags, nsenter's flags). Root creates a network namespace; anyone else
    creates it inside a user namespace of their own, where they are root (unprivileged user
    namespaces), and enters both, keeping their own uid."""
    if euid == 0:
        return ["--net"], ["--net"]
    return ["--user", "--map-root-user", "--net"], ["--user", "--net", "--preserve-credentials"]


def interfaces(pid: int) -> list[str]:
    """The network interfaces of the namespace process ``pid`` is in."""
    lines = Path(f"/proc/{pid}/net/dev").read_text().splitlines()[2:]
    return [line.split(":")[0].strip() for line in lines]


def routes(pid: int) -> list[str]:
    """The IPv4 routes of the namespace process ``pid`` is in, as /proc lists them."""
    return Path(f"/proc/{pid}/net/route").read_text().splitlines()[1:]


@dataclass
class PrivateNetwork:
    """The namespace, held by its relay process; ``enter`` runs a program inside it."""

    name: str
    relayed_ports: Sequence[int]  # the same number on the host's loopback and inside
    log_path: Path
    process: ManagedProcess | None = None

    def start(self) -> None:
        missing = [tool for tool in ("unshare", "nsenter") if shutil.which(tool) is None]
        if missing:
            raise StartError(f"{self.name}: {', '.join(missing)} not found (util-linux)")
        # The relay holds its own copies of the listeners; ours close once it has started.
        with contextlib.ExitStack() as ours:
            listeners = [
                ours.enter_context(socket.create_server((LOOPBACK, port)))
                for port in self.relayed_ports
            ]
            routes = [
                f"{listener.fileno()}:{port}"
                for listener, port in zip(listeners, self.relayed_ports, strict=True)
            ]
            self.process = ManagedProcess(
                name=self.name,
                argv=[
                    "unshare",
                    *namespace_flags(os.geteuid())[0],
                    "--",
                    sys.executable,
                    "-m",
                    "learnflow_stack.loopback_relay",
                    *routes,
                ],
                log_path=self.log_path,
                pass_fds=[listener.fileno() for listener in listeners],
            )
            self.process.start()
        self.process.wait_ready(self._loopback_up, 15, "a network namespace with loopback up")

    def running(self) -> bool:
        return self.process is not None and self.process.running()

    def enter(self, argv: Sequence[str]) -> list[str]:
        """``argv`` run inside the namespace; nsenter execs it, so its pid is the program's."""
        assert self.process is not None, f"{self.name} was never started"
        flags = namespace_flags(os.geteuid())[1]
        return ["nsenter", f"--target={self.process.pid}", *flags, "--", *argv]

    def _loopback_up(self) -> bool:
        assert self.process is not None
        pid = self.process.pid
        if network_namespace(pid) == network_namespace("self"):
            return False  # unshare has not created it yet
        return LOOPBACK in Path(f"/proc/{pid}/net/fib_trie").read_text()
