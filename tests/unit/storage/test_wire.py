"""The worker link's frames: every value and every store error survives the trip."""

from __future__ import annotations

import marshal
import struct
from typing import Any

import pytest

from kubeboot.storage.interface import (
    CompactedError,
    EventType,
    KeyExistsError,
    KeyNotFoundError,
    KeyValue,
    RevisionMismatch,
    StoreError,
    StoreUnavailable,
    WatcherLaggingError,
    WatchEvent,
)
from kubeboot.storage.wire import (
    MAX_FRAME,
    FrameReader,
    decode_error,
    decode_event,
    encode_error,
    encode_event,
    frame,
)

KV = KeyValue("/core/configmaps/default/a", b'{"data":{"k":"\\u00e9"}}', 3, 7)


def test_frames_split_anywhere_are_reassembled() -> None:
    messages = [(1, "get", "/k"), (2, "ok", None), (3, "create", "/k", b"\x00\xff" * 1000)]
    stream = b"".join(frame(m) for m in messages)
    reader = FrameReader()
    got = []
    for i in range(len(stream)):  # one byte at a time: the worst split there is
        got += reader.feed(stream[i : i + 1])
    assert got == messages
    assert reader.feed(stream) == messages  # and all at once


@pytest.mark.parametrize(
    "event",
    [
        WatchEvent(EventType.PUT, KV, None),
        WatchEvent(EventType.PUT, KV, KeyValue(KV.key, b"{}", 3, 5)),
        WatchEvent(EventType.DELETE, KeyValue(KV.key, KV.value, 3, 9), None),
    ],
)
def test_events_round_trip(event: WatchEvent) -> None:
    (message,) = FrameReader().feed(frame((5, "event", encode_event(event))))
    assert decode_event(message[2]) == event


@pytest.mark.parametrize(
    "error",
    [
        KeyExistsError("/a"),
        KeyNotFoundError("/b"),
        RevisionMismatch("/c", KV),
        CompactedError(4, 10),
        WatcherLaggingError("fell behind"),
        StoreUnavailable("etcd has no leader"),
    ],
)
def test_store_errors_round_trip_with_their_fields(error: StoreError) -> None:
    (message,) = FrameReader().feed(frame((9, "err", *encode_error(error))))
    back = decode_error(message[2:])
    assert type(back) is type(error)
    assert str(back) == str(error)
    assert vars(back) == vars(error)


def test_an_unexpected_failure_in_the_primary_is_a_plain_store_error() -> None:
    back = decode_error(encode_error(RuntimeError("boom")))
    assert type(back) is StoreError
    assert "RuntimeError: boom" in str(back)


def test_a_length_beyond_the_limit_is_refused_before_reading_it() -> None:
    with pytest.raises(ValueError, match="exceeds"):
        FrameReader().feed(struct.pack(">I", MAX_FRAME + 1))


@pytest.mark.parametrize("value", [[1, "get"], (1,), "text"])
def test_a_frame_that_is_not_an_id_kind_tuple_is_refused(
    value: list[Any] | tuple[int] | str,
) -> None:
    body = marshal.dumps(value)
    with pytest.raises(ValueError, match="tuple"):
        FrameReader().feed(struct.pack(">I", len(body)) + body)
