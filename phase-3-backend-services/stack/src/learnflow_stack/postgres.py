"""A private PostgreSQL cluster for one stack run: own data dir, free port, trust on loopback."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from learnflow_stack.ports import LOOPBACK, free_port, is_listening
from learnflow_stack.process import ManagedProcess, StartError

DATABASE = "learnflow"


def _run_as() -> str | None:
    # initdb refuses to run as root; the Debian package provides the postgres user.
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam("postgres")
    except KeyError as missing:
        raise StartError("running as root needs a 'postgres' user for initdb") from missing
    return "postgres"


@dataclass
class PostgresServer:
    bindir: Path
    run_dir: Path
    port: int = 0
    process: ManagedProcess | None = None

    @property
    def connection_string(self) -> str:
        return f"host={LOOPBACK} port={self.port} user=postgres dbname={DATABASE} sslmode=disable"

    def start(self) -> None:
        self.launch()
        self.wait_ready()

    def launch(self) -> None:
        """Start the server without waiting; reuses the data directory of an earlier launch."""
        self.port = self.port or free_port()
        data_dir = self.run_dir / "postgres-data"
        socket_dir = self.run_dir / "postgres-socket"
        user = _run_as()
        for directory in (data_dir, socket_dir):
            directory.mkdir(parents=True, exist_ok=True)
            if user:
                shutil.chown(directory, user, user)
        log = self.run_dir / "logs" / "postgres.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        if not (data_dir / "PG_VERSION").exists():
            self._initdb(data_dir, log, user)
        self.process = ManagedProcess(
            name="postgres",
            argv=[
                str(self.bindir / "postgres"),
                "-D",
                str(data_dir),
                "-p",
                str(self.port),
                "-c",
                f"listen_addresses={LOOPBACK}",
                "-c",
                f"unix_socket_directories={socket_dir}",
                "-c",
                "max_connections=200",
                "-c",
                "shared_buffers=64MB",
            ],
            log_path=log,
            user=user,
        )
        self.process.start()

    def wait_ready(self) -> None:
        assert self.process is not None, "launch() first"
        self.process.wait_ready(self._accepts_connections, timeout=60, what="accepting connections")
        created = subprocess.run(
            [
                str(self.bindir / "createdb"),
                "-h",
                LOOPBACK,
                "-p",
                str(self.port),
                "-U",
                "postgres",
                DATABASE,
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if created.returncode != 0 and "already exists" not in created.stderr:
            raise StartError(f"createdb {DATABASE} failed: {created.stderr.strip()}")

    def _initdb(self, data_dir: Path, log: Path, user: str | None) -> None:
        with log.open("ab") as out:
            init = subprocess.run(
                [
                    str(self.bindir / "initdb"),
                    "-D",
                    str(data_dir),
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "--encoding=UTF8",
                    "--no-instructions",
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                user=user,
                group=user,
                check=False,
            )
        if init.returncode != 0:
            raise StartError(f"postgres initdb failed; see {log}")

    def _accepts_connections(self) -> bool:
        if not is_listening(self.port):
            return False
        probe = subprocess.run(
            [str(self.bindir / "pg_isready"), "-h", LOOPBACK, "-p", str(self.port)],
            capture_output=True,
            check=False,
        )
        return probe.returncode == 0

    def stop(self) -> None:
        if self.process:
            self.process.stop()
