"""rosbag2 (sqlite3 and MCAP) reading and writing with ``rosbags``, with errors that name the bag."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

from rosbags.interfaces import Connection
from rosbags.rosbag2 import Reader, ReaderError, StoragePlugin, Writer, WriterError

from .message_types import typestore

STORAGES = {"sqlite3": StoragePlugin.SQLITE3, "mcap": StoragePlugin.MCAP}
BAG_VERSION = 8  # rosbag2 metadata version readable by Humble and later


class BagError(ValueError):
    """A bag that cannot be read or written, or a topic it does not have; the message names the bag."""


class BagReader:
    """An open rosbag2 (folder with metadata.yaml, or a single .db3/.mcap file); use as a context manager.

    ``topics`` maps topic -> message type; ``messages(topics)`` yields ``(topic, timestamp_ns,
    rawdata)`` in timestamp order; ``deserialize(rawdata, msgtype)`` gives the message.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not self.path.exists():
            raise FileNotFoundError(f"bag not found: {self.path}")
        try:
            self._reader = Reader(self.path)
            self._reader.open()
        except (ReaderError, OSError, KeyError, ValueError) as error:
            raise BagError(f"{self.path} is not a readable rosbag2: {error}") from None
        self.topics: dict[str, str] = {conn.topic: conn.msgtype for conn in self._reader.connections}
        self.storage = "mcap" if self._is_mcap() else "sqlite3"

    def _is_mcap(self) -> bool:
        path = self.path
        return path.suffix == ".mcap" or (path.is_dir() and any(path.glob("*.mcap")))

    def check_topic(self, topic: str, msgtypes: tuple[str, ...]) -> str:
        """The type of ``topic``; ``BagError`` listing the bag's topics when absent or not one of ``msgtypes``."""
        if topic not in self.topics:
            available = ", ".join(f"{name} ({kind})" for name, kind in sorted(self.topics.items())) or "none"
            raise BagError(f"{self.path} has no topic {topic!r}; its topics: {available}")
        if self.topics[topic] not in msgtypes:
            raise BagError(f"{self.path} topic {topic!r} is {self.topics[topic]}, expected one of {list(msgtypes)}")
        return self.topics[topic]

    def connections(self, topics: list[str]) -> list[Connection]:
        """The bag's connections of ``topics``."""
        return [conn for conn in self._reader.connections if conn.topic in topics]

    def messages(self, topics: list[str]) -> Iterator[tuple[Connection, int, bytes]]:
        """``(connection, timestamp_ns, rawdata)`` of ``topics`` in timestamp order; ``BagError`` if the storage is corrupt."""
        try:
            yield from self._reader.messages(self.connections(topics))
        except (ReaderError, OSError, ValueError) as error:
            raise BagError(f"{self.path}: reading messages failed: {error}") from None

    @staticmethod
    def deserialize(rawdata: bytes, msgtype: str) -> Any:
        """The message of CDR ``rawdata`` (our typestore, so our own messages too)."""
        return typestore().deserialize_cdr(rawdata, msgtype)

    def close(self) -> None:
        """Close the bag."""
        self._reader.close()

    def __enter__(self) -> "BagReader":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class BagWriter:
    """A new rosbag2 folder at ``path`` in ``storage`` (``STORAGES``); topics are added on first write."""

    def __init__(self, path: str | Path, storage: str = "sqlite3") -> None:
        if storage not in STORAGES:
            raise ValueError(f"bag storage {storage!r} is not one of {list(STORAGES)}")
        self.path = Path(path)
        try:
            self._writer = Writer(self.path, version=BAG_VERSION, storage_plugin=STORAGES[storage])
            self._writer.open()
        except (WriterError, OSError) as error:
            raise BagError(f"cannot create bag {self.path}: {error}") from None
        self._connections: dict[str, Connection] = {}
        self.counts: dict[str, int] = {}

    def write(self, topic: str, msgtype: str, timestamp_ns: int, message: Any) -> None:
        """Serialize ``message`` (a rosbags message of ``msgtype``) onto ``topic`` at ``timestamp_ns``."""
        self.write_raw(topic, msgtype, timestamp_ns, typestore().serialize_cdr(message, msgtype))

    def write_raw(self, topic: str, msgtype: str, timestamp_ns: int, rawdata: bytes | memoryview) -> None:
        """Write already serialized CDR ``rawdata`` of ``msgtype`` onto ``topic``."""
        if topic not in self._connections:
            self._connections[topic] = self._writer.add_connection(topic, msgtype, typestore=typestore())
            self.counts[topic] = 0
        self._writer.write(self._connections[topic], int(timestamp_ns), rawdata)
        self.counts[topic] += 1

    def close(self) -> None:
        """Finish the bag (writes metadata.yaml)."""
        self._writer.close()

    def __enter__(self) -> "BagWriter":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
