"""Tuning of a hub: :class:`HubConfig`, its fields' CLI metadata and its consistency check."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["HubConfig"]


@dataclass(frozen=True, slots=True)
class HubConfig:
    """Tuning of a hub.  Durations are float seconds; ``retry`` values are milliseconds.

    Each field's ``metadata`` names its command-line option and help text
    (plain strings: the hub knows nothing of the CLI); ``ssehub serve``, its
    environment variables and its config file are derived from them.
    """

    heartbeat_interval: float = field(
        default=15.0,
        metadata={
            "flag": "--heartbeat",
            "unit": "duration",
            "help": "Send a comment on idle streams this often (0 = never).",
        },
    )
    retry: int = field(
        default=3000,
        metadata={
            "unit": "ms",
            "min": 0,
            "help": "Reconnection delay sent to clients on connect, in ms.",
        },
    )
    max_queue_events: int = field(
        default=1000,
        metadata={
            "flag": "--max-queue",
            "min": 1,
            "help": "Events queued for one slow "
            "subscriber before it is closed (it then resumes from history).",
        },
    )
    max_queue_bytes: int = field(
        default=4 * 1024 * 1024,
        metadata={"min": 1, "help": "Bytes queued for one slow subscriber before it is closed."},
    )
    max_event_bytes: int = field(
        default=2 * 1024 * 1024,
        metadata={
            "min": 1,
            "help": "Largest event accepted, in bytes as encoded on the wire (each line of "
            "data costs a 'data: ' prefix); at most --max-queue-bytes.",
        },
    )
    write_timeout: float = field(
        default=30.0,
        metadata={"unit": "duration", "help": "Abort a stream whose write is blocked this long."},
    )
    drain_timeout: float = field(
        default=2.0,
        metadata={
            "unit": "duration",
            "help": "On SIGTERM, responses get this long to finish while new requests get "
            "503 shutting_down; streams whose final write is still blocked are then reset.",
        },
    )
    flush_interval: float = field(
        default=0.01,
        metadata={
            "unit": "duration",
            "help": "Under load, live events this close together "
            "share one write per subscriber (0 = write each at once). The first event "
            "after a quiet spell is never delayed.",
        },
    )
    replay_batch: int = field(
        default=500,
        metadata={"min": 1, "help": "Events read from history per step of a replay."},
    )
    prune_interval: float = field(
        default=60.0,
        metadata={"unit": "duration", "help": "How often age retention is applied."},
    )
    shutdown_retry_min: int = field(
        default=1000,
        metadata={
            "unit": "ms",
            "min": 0,
            "help": "On shutdown each stream gets a retry "
            "drawn from [min, max] ms, so clients come back spread out.",
        },
    )
    shutdown_retry_max: int = field(
        default=10_000,
        metadata={"unit": "ms", "min": 0, "help": "Upper end of the shutdown retry range, in ms."},
    )

    def __post_init__(self) -> None:
        problems = self.problems()
        if problems:
            raise ValueError("; ".join(problems))

    def problems(self) -> list[str]:
        """Settings that contradict one another (empty when consistent)."""
        found: list[str] = []
        if self.max_queue_events < 1 or self.max_queue_bytes < 1 or self.max_event_bytes < 1:
            found.append("queue and event bounds must be at least 1")
        if self.max_event_bytes > self.max_queue_bytes:
            found.append(
                f"max_event_bytes ({self.max_event_bytes}) exceeds max_queue_bytes "
                f"({self.max_queue_bytes}): one such event would close every subscriber"
            )
        if self.replay_batch < 1:
            found.append("replay_batch must be at least 1")
        if min(self.write_timeout, self.drain_timeout, self.prune_interval) <= 0:
            found.append("write_timeout, drain_timeout and prune_interval must be positive")
        if self.heartbeat_interval < 0 or self.flush_interval < 0:
            found.append("heartbeat_interval and flush_interval must not be negative")
        if not 0 <= self.shutdown_retry_min <= self.shutdown_retry_max:
            found.append("shutdown_retry_min must be between 0 and shutdown_retry_max")
        return found
