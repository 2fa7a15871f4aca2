"""A single-node KRaft Apache Kafka broker on loopback, from the jars install-kafka.sh resolved."""

from __future__ import annotations

import secrets
import subprocess
from dataclasses import dataclass
from pathlib import Path

from learnflow_stack.ports import LOOPBACK, free_port, is_listening
from learnflow_stack.process import ManagedProcess, StartError

_LOG4J = """\
rootLogger.level = INFO
rootLogger.appenderRef.console.ref = console
appender.console.type = Console
appender.console.name = console
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = [%d] %p %m (%c)%n
logger.kafka.name = kafka
logger.kafka.level = INFO
logger.apache.name = org.apache
logger.apache.level = WARN
"""


def _cluster_id() -> str:
    # KRaft wants a 22-character base64url id (a UUID's 16 bytes).
    return secrets.token_urlsafe(16)[:22]


@dataclass
class KafkaBroker:
    lib_dir: Path
    run_dir: Path
    port: int = 0
    controller_port: int = 0
    heap: str = "256m"
    process: ManagedProcess | None = None

    @property
    def bootstrap(self) -> str:
        return f"{LOOPBACK}:{self.port}"

    def _write_config(self) -> Path:
        home = self.run_dir / "kafka"
        home.mkdir(parents=True, exist_ok=True)
        props = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.bootstrap.servers": f"{LOOPBACK}:{self.controller_port}",
            "listeners": f"PLAINTEXT://{LOOPBACK}:{self.port},CONTROLLER://{LOOPBACK}:{self.controller_port}",
            "advertised.listeners": f"PLAINTEXT://{LOOPBACK}:{self.port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "log.dirs": str(home / "data"),
            "num.partitions": "3",
            "auto.create.topics.enable": "true",
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "3",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            "group.initial.rebalance.delay.ms": "0",
        }
        config = home / "server.properties"
        config.write_text("".join(f"{k}={v}\n" for k, v in props.items()))
        (home / "log4j2.properties").write_text(_LOG4J)
        return config

    def _java(self, *args: str) -> list[str]:
        home = self.run_dir / "kafka"
        return [
            "java",
            f"-Xmx{self.heap}",
            f"-Xms{self.heap}",
            "-XX:+UseSerialGC",
            f"-Dlog4j2.configurationFile={home / 'log4j2.properties'}",
            "-cp",
            f"{self.lib_dir}/*",
            *args,
        ]

    def start(self) -> None:
        self.launch()
        self.wait_ready()

    def launch(self) -> None:
        """Start the broker without waiting; keeps its ports and data across a restart."""
        self.port = self.port or free_port()
        self.controller_port = self.controller_port or free_port()
        config = self._write_config()
        log = self.run_dir / "logs" / "kafka.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        if not (self.run_dir / "kafka" / "data" / "meta.properties").exists():
            self._format(config, log)
        self.process = ManagedProcess(
            name="kafka", argv=self._java("kafka.Kafka", str(config)), log_path=log
        )
        self.process.start()

    def _format(self, config: Path, log: Path) -> None:
        with log.open("ab") as out:
            formatted = subprocess.run(
                self._java(
                    "kafka.tools.StorageTool",
                    "format",
                    "--standalone",
                    f"--cluster-id={_cluster_id()}",
                    "-c",
                    str(config),
                ),
                stdout=out,
                stderr=subprocess.STDOUT,
                check=False,
            )
        if formatted.returncode != 0:
            raise StartError(f"kafka storage format failed; see {log}")

    def wait_ready(self) -> None:
        assert self.process is not None, "launch() first"
        self.process.wait_ready(self._started, timeout=90, what="'Kafka Server started'")

    def _started(self) -> bool:
        return is_listening(self.port) and "Kafka Server started" in self.process.log_tail(400)  # type: ignore[union-attr]

    def stop(self) -> None:
        if self.process:
            self.process.stop(grace=20)
