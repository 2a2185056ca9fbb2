"""Coverage-guided fuzzing (atheris/libFuzzer) of ktnchat's wire codec.

One input drives, in turn:
- the server's RequestDecoder, fed in the random splits the input chooses, with a small
  frame cap and depth cap so that the fatal and too-deep paths are reached;
- the 2014-edition translation of every decoded object (is_2014_request,
  request_from_2014, and Edition2014Writer on responses built from the input);
- the client's lenient ServerStreamDecoder, fed the same bytes in the same splits.

Nothing here may raise. The documented outcomes are events (Request / Rejected, and
ChatLine / Notice / Unreadable); any exception is a crash and libFuzzer saves the input.
Invariants checked as assertions: memory held stays within the frame cap plus one chunk;
a fatal Rejected is the last event; every decoded Request has a clean word.

Run (see fuzz/README.md):
    python fuzz/fuzz_codec.py -runs=1000000 -max_total_time=1800 -timeout=10 CORPUS_DIR
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any, List

import atheris

# Run from a checkout without installing: the repository root holds the package.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

with atheris.instrument_imports(include=["ktnchat"]):
    from ktnchat.protocol import (
        Rejected,
        Request,
        RequestDecoder,
        Response,
        encode_json,
        encode_response,
        scrub_surrogates,
    )
    from ktnchat.protocol.edition2014 import (
        Edition2014Writer,
        broadcast_object,
        is_2014_request,
        request_from_2014,
    )
    from ktnchat.protocol.lenient import (
        ChatLine,
        Notice,
        ServerStreamDecoder,
        Unreadable,
        events_from_value,
    )

MAX_FRAME = 512  # small caps so that short inputs reach the limits
MAX_DEPTH = 16
LENIENT_MAX_FRAME = 1024
MAX_CUTS = 16


def chunks_of(fdp: atheris.FuzzedDataProvider) -> List[bytes]:
    """The rest of the input, cut at offsets the input chose first."""
    count = fdp.ConsumeIntInRange(0, MAX_CUTS)
    cuts = [fdp.ConsumeIntInRange(0, 1 << 16) for _ in range(count)]
    data = fdp.ConsumeBytes(fdp.remaining_bytes())
    points = sorted({0, len(data), *(c % (len(data) + 1) for c in cuts)})
    return [data[a:b] for a, b in zip(points, points[1:])] or [b""]


def decode(chunks: List[bytes], max_depth: int = MAX_DEPTH) -> List[Any]:
    decoder = RequestDecoder(max_frame_bytes=MAX_FRAME, max_depth=max_depth)
    biggest = max(len(c) for c in chunks)
    events: List[Any] = []
    for chunk in chunks:
        decoder.receive_data(chunk)
        assert decoder.buffered <= MAX_FRAME + biggest, decoder.buffered
        assert decoder.waiting <= 1
        for _ in range(len(chunk) + 2):  # each event consumes at least one byte
            event = decoder.next_event()
            if event is None:
                break
            events.append(event)
        else:
            raise AssertionError("next_event() did not run dry")
        if not decoder.broken:
            assert decoder.buffered <= MAX_FRAME
    for index, event in enumerate(events):
        if isinstance(event, Rejected):
            assert event.message and isinstance(event.message, str)
            if event.fatal:
                assert index == len(events) - 1, "events after a fatal rejection"
        else:
            assert isinstance(event, Request), event
            assert event.word and isinstance(event.word, str)
            if event.edition == 2017:
                assert event.word == event.word.strip().lower()
                assert len(event.word) <= 64
                assert scrub_surrogates(event.word) == event.word
            encode_json({"request": event.word})
    return events


def translate_2014(events: List[Any]) -> None:
    """The 2014 edition both ways, for every request the input decoded to."""
    writer = Edition2014Writer()
    for event in events:
        if not isinstance(event, Request):
            continue
        value = {"request": event.word, "username": event.content, "message": event.content}
        if is_2014_request(value):
            request_from_2014(value)
        text = event.content if isinstance(event.content, str) else json.dumps(event.content)
        extra = {"code": event.word, "request": event.word, "username": text[:20]}
        for kind in ("error", "info", "message"):
            response = Response(kind, text, event.word, text[:19], extra)
            encode_response(response)
            for obj in [*writer.reply_objects(response), broadcast_object(response) or {}]:
                encode_json(obj)


def lenient(chunks: List[bytes], names: bool) -> None:
    decoder = ServerStreamDecoder(max_frame_bytes=LENIENT_MAX_FRAME)
    if names:
        decoder.expect_names()
    biggest = max(len(c) for c in chunks)
    for chunk in chunks:
        for event in decoder.feed(chunk):
            assert isinstance(event, (ChatLine, Notice, Unreadable)), event
        assert decoder.buffered <= LENIENT_MAX_FRAME + biggest
    for event in decoder.close():
        assert isinstance(event, (ChatLine, Notice, Unreadable)), event


def key(event: Any) -> Any:
    if isinstance(event, Rejected):
        return ("rejected", event.message, event.fatal)
    return ("request", event.word, encode_json(event.content), event.edition)


def TestOneInput(data: bytes) -> None:  # the name atheris calls
    fdp = atheris.FuzzedDataProvider(data)
    names = fdp.ConsumeBool()
    chunks = chunks_of(fdp)
    events = decode(chunks)
    if len(chunks) > 1:  # decoding does not depend on how the bytes were split
        whole = decode([b"".join(chunks)])
        assert [key(e) for e in whole] == [key(e) for e in events], (whole, events)
    translate_2014(events)
    lenient(chunks, names)
    # Values the lenient reader gets after JSON parsing, with any shape at all.
    try:
        value = json.loads(b"".join(chunks).decode("utf-8", "replace"))
    except (ValueError, RecursionError):
        return
    events_from_value(value, expect_names=names)


def main() -> None:
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
