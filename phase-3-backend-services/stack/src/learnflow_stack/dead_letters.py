"""Replay the lesson-generated dead-letter topic onto lesson-generated, each message once.

Dapr moves a lesson-generated CloudEvent to ``lesson-generated-deadletter`` when its delivery
retries are exhausted or User Progress answered DROP. Once the cause is fixed, a replay puts
every message not yet replayed back on ``lesson-generated``, byte for byte (value, key and
headers), where User Progress consumes it again; it dedupes on the lesson id, so a message that
is replayed twice is still counted once.

What "not yet replayed" means is kept by a Kafka consumer group: a new group starts at the
earliest offset, and the group's offsets are committed only after the producer has flushed
every copied message, so a failed run commits nothing and the next run copies those messages
again (harmless, see above). A run reads each partition up to its end as measured when the run
starts, so messages dead-lettered meanwhile (e.g. a replayed one that fails again) wait for the
next run instead of looping.

A keyed message goes to the partition Dapr's own publishers would choose for its key (Sarama's
default hash partitioner), so a learner's replayed lesson lands on the same partition as the
learner's other lesson events; librdkafka's built-in partitioners would pick another one.
"""

from __future__ import annotations

import ipaddress
import time
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from learnflow_contracts.names import LESSON_GENERATED_DEADLETTER_TOPIC, LESSON_GENERATED_TOPIC

DEFAULT_GROUP = "learnflow-dead-letter-replay"
# Flushing the copies and committing the offsets get this long on top of ``timeout_seconds``.
FINISH_SECONDS = 10.0
_NO_LEADER = {KafkaError.NOT_LEADER_FOR_PARTITION, KafkaError.LEADER_NOT_AVAILABLE}


class ReplayIncomplete(RuntimeError):
    """The replay stopped early; ``replayed`` messages were copied and committed before that
    (messages copied but not committed are copied again by the next run)."""

    def __init__(self, message: str, replayed: int) -> None:
        super().__init__(message)
        self.replayed = replayed


@dataclass
class _Progress:
    copied: int = 0
    # partition -> the offset to commit (the one after the last message copied from it)
    next_offsets: dict[int, int] = field(default_factory=dict)
    delivery_errors: list[str] = field(default_factory=list)


def require_loopback(bootstrap: str) -> None:
    """Refuse any broker that is not on this machine's loopback interface."""
    servers = [server.strip() for server in bootstrap.split(",") if server.strip()]
    if not servers:
        raise ValueError("no Kafka broker given")
    for server in servers:
        host, colon, port = server.rpartition(":")
        host = host.strip("[]")
        if not colon or not port.isdigit() or not host:
            raise ValueError(f"{server!r} is not HOST:PORT")
        try:
            loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = False
        if not loopback:
            raise ValueError(f"{server}: dead letters are replayed on a loopback broker only")


def sarama_partition(key: bytes, partitions: int) -> int:
    """The partition Sarama's default hash partitioner (Dapr's pubsub.kafka) gives ``key``:
    FNV-1a 32 of the key read as a signed int32, Go's truncated remainder, then its absolute."""
    hashed = 0x811C9DC5
    for byte in key:
        hashed = ((hashed ^ byte) * 0x01000193) & 0xFFFFFFFF
    signed = hashed - (1 << 32) if hashed >= 1 << 31 else hashed
    return abs(signed) % partitions


def _partition_count(producer: Any, topic: str, deadline: float) -> int | None:
    metadata = producer.list_topics(topic, timeout=min(10, _left(deadline))).topics.get(topic)
    if metadata is None or metadata.error is not None or not metadata.partitions:
        return None  # not created yet: producing creates it, and librdkafka picks the partition
    return len(metadata.partitions)


def _left(deadline: float) -> float:
    return max(0.1, deadline - time.monotonic())


def _watermarks(consumer: Any, partition: Any, deadline: float) -> tuple[int, int]:
    """Low and high offsets; waits while the partition has no leader (a broker starting up)."""
    while True:
        try:
            low, high = consumer.get_watermark_offsets(partition, timeout=min(10, _left(deadline)))
            return int(low), int(high)
        except KafkaException as failure:
            if failure.args[0].code() not in _NO_LEADER or time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def _pending(consumer: Any, source: str, deadline: float) -> dict[int, tuple[int, int]]:
    """partition -> (first offset to copy, end offset as of now), for partitions with work."""
    metadata = consumer.list_topics(source, timeout=min(10, _left(deadline))).topics.get(source)
    if metadata is None or metadata.error is not None:
        if metadata is not None and metadata.error.code() != KafkaError.UNKNOWN_TOPIC_OR_PART:
            raise KafkaException(metadata.error)
        return {}  # nothing was ever dead-lettered: the topic does not exist
    partitions = sorted(metadata.partitions)
    committed = {
        tp.partition: int(tp.offset)
        for tp in consumer.committed(
            [TopicPartition(source, p) for p in partitions], timeout=min(10, _left(deadline))
        )
    }
    pending: dict[int, tuple[int, int]] = {}
    for partition in partitions:
        low, high = _watermarks(consumer, TopicPartition(source, partition), deadline)
        start = committed.get(partition, -1)
        # A new group (no committed offset) starts at the earliest message still kept; so does
        # one whose committed offset was deleted by retention or is past the end (the topic was
        # recreated). Either way at worst some messages are copied again, which is harmless.
        if start < low or start > high:
            start = low
        if start < high:
            pending[partition] = (start, high)
    return pending


def _copy(
    consumer: Any,
    producer: Any,
    target: str,
    target_partitions: int | None,
    ends: dict[int, int],
    deadline: float,
    progress: _Progress,
) -> None:
    """Copy messages until every partition in ``ends`` is done; leaves unfinished ones in it."""

    def delivered(error: Any, _: Any) -> None:
        if error is not None:
            progress.delivery_errors.append(str(error))

    while ends and time.monotonic() < deadline:
        message = consumer.poll(min(0.5, _left(deadline)))
        if message is None:
            continue
        error = message.error()
        if error is not None:
            if error.code() == KafkaError._PARTITION_EOF:
                ends.pop(message.partition(), None)  # at the end: nothing more to copy here
                continue
            raise KafkaException(error)
        partition, offset = message.partition(), message.offset()
        end = ends.get(partition)
        if end is None or offset >= end:
            ends.pop(partition, None)  # dead-lettered after this run started: the next run's
            continue
        key = message.key()
        placement = (
            {"partition": sarama_partition(key, target_partitions)}
            if key is not None and target_partitions
            else {}
        )
        while True:
            try:
                producer.produce(
                    target,
                    value=message.value(),
                    key=key,
                    headers=message.headers(),
                    on_delivery=delivered,
                    **placement,
                )
                break
            except BufferError:  # the local queue is full: let deliveries drain it
                producer.poll(0.5)
        producer.poll(0)
        progress.copied += 1
        progress.next_offsets[partition] = offset + 1
        if offset + 1 >= end:
            ends.pop(partition)


def _flush_then_commit(consumer: Any, producer: Any, source: str, progress: _Progress) -> None:
    """Commit the group's offsets only once every copy is acknowledged by the broker."""
    if not progress.copied:
        return
    unsent = int(producer.flush(FINISH_SECONDS))
    if unsent or progress.delivery_errors:
        reasons = "; ".join(sorted(set(progress.delivery_errors))) or f"{unsent} still queued"
        raise ReplayIncomplete(
            f"{progress.copied} message(s) copied but not all acknowledged ({reasons}); "
            "offsets not committed, the next run copies them again",
            replayed=0,
        )
    offsets = [TopicPartition(source, p, o) for p, o in sorted(progress.next_offsets.items())]
    try:
        committed = consumer.commit(offsets=offsets, asynchronous=False)
        failed = [tp.error for tp in committed or [] if tp.error is not None]
    except KafkaException as failure:
        failed = [failure]
    if failed:
        raise ReplayIncomplete(
            f"{progress.copied} message(s) replayed but committing the offsets failed "
            f"({failed[0]}); the next run copies them again",
            replayed=0,
        )


def replay_dead_letters(
    bootstrap: str,
    *,
    source: str = LESSON_GENERATED_DEADLETTER_TOPIC,
    target: str = LESSON_GENERATED_TOPIC,
    group: str = DEFAULT_GROUP,
    timeout_seconds: float = 30,
) -> int:
    """Copy every message on ``source`` not yet replayed by ``group`` to ``target``.

    Returns how many were replayed. Reading stops at the end of each partition as measured at
    the start, or after ``timeout_seconds``; flushing and committing take at most
    ``FINISH_SECONDS`` more. Raises ``ReplayIncomplete`` when it stopped before the end (what
    was copied and committed until then stays replayed) and ``ValueError`` for a broker that is
    not on loopback.
    """
    require_loopback(bootstrap)
    if source == target:
        raise ValueError("source and target must be different topics")
    deadline = time.monotonic() + timeout_seconds
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "auto.offset.reset": "earliest",
            "enable.partition.eof": True,
            "allow.auto.create.topics": False,
        }
    )
    try:
        ends = _pending(consumer, source, deadline)
        if not ends:
            return 0
        producer = Producer(
            {"bootstrap.servers": bootstrap, "enable.idempotence": True, "acks": "all"}
        )
        consumer.assign([TopicPartition(source, p, start) for p, (start, _) in ends.items()])
        unfinished = {partition: end for partition, (_, end) in ends.items()}
        progress = _Progress()
        try:
            target_partitions = _partition_count(producer, target, deadline)
            _copy(consumer, producer, target, target_partitions, unfinished, deadline, progress)
        except KafkaException as failure:
            _flush_then_commit(consumer, producer, source, progress)
            raise ReplayIncomplete(
                f"reading {source} failed after {progress.copied} message(s): {failure}",
                replayed=progress.copied,
            ) from failure
        _flush_then_commit(consumer, producer, source, progress)
        if unfinished:
            left = sum(
                end - progress.next_offsets.get(p, ends[p][0]) for p, end in unfinished.items()
            )
            raise ReplayIncomplete(
                f"stopped after {timeout_seconds:g}s with {progress.copied} message(s) replayed "
                f"and about {left} left on {source}; run it again to go on",
                replayed=progress.copied,
            )
        return progress.copied
    finally:
        consumer.close()
