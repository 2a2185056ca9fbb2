# The request decoder against a table of (bytes, expected events), each case fed whole,
# one byte at a time, split at every position, and concatenated with the others (h11's tr()).
from __future__ import annotations

import json
from typing import Any, List

import pytest

from ktnchat.protocol import (
    HistoryEncoding,
    Rejected,
    Request,
    RequestDecoder,
    Response,
    encode_request,
    encode_response,
    encode_response_frames,
)

R = Request

# (wire bytes, expected events). Content quirks of real clients are all accepted as-is:
# it is the service that decides which requests ignore their content.
CASES: List[Any] = [
    (b'{"request": "login", "content": "alice"}', [R("login", "alice")]),
    (b'{"request": "logout", "content": null}', [R("logout", None)]),
    (b'{"request": "logout", "content": ""}', [R("logout", "")]),
    (b'{"request": "names", "content": "None"}', [R("names", "None")]),
    (b'{"request": "names"}', [R("names", None)]),
    (b'{"request": "help", "content": "stale text"}', [R("help", "stale text")]),
    (b'{"request": "msg", "content": "hi"}\n', [R("msg", "hi")]),
    (b'{"request": "msg", "content": "hi"}\r\n', [R("msg", "hi")]),
    (b'  \n{"content": "x", "request": "MSG "}', [R("msg", "x")]),
    (
        b'{"request":"msg","content":"br{ace}s [and] \\"quotes\\""}',
        [R("msg", 'br{ace}s [and] "quotes"')],
    ),
    ('{"request":"msg","content":"blåbærsyltetøy ☃"}'.encode(), [R("msg", "blåbærsyltetøy ☃")]),
    (b'{"request":"msg","content":"\\u00e6\\ud83d\\ude00"}', [R("msg", "æ\U0001f600")]),
    (b'{"request":"msg","content":"lone \\ud800"}', [R("msg", "lone \ufffd")]),
    (b'{"request":"msg","content":"nul\\u0000"}', [R("msg", "nul\x00")]),
    (b'{"request":"msg","content":42}', [R("msg", 42)]),
    (b'{"request":"msg","content":{"nested":[1,2]}}', [R("msg", {"nested": [1, 2]})]),
    # Wrong shapes: answered, and the stream goes on.
    (b"[1, 2]", [Rejected]),
    (b'"just a string"', [Rejected]),
    (b'{"content": "no request"}', [Rejected]),
    (b'{"request": 5}', [Rejected]),
    (b'{"request": ""}', [Rejected]),
    (b'{"request": ["login"]}', [Rejected]),
    (b'{"request": "msg", "content": NaN}', [Rejected]),
    (b'{"request": "msg", "content": Infinity}', [Rejected]),
    (b'{"request": "msg", "content": }', [Rejected]),
    (b"{\"request\": 'single quotes'}", [Rejected]),
    (b'{"request": "msg", "content": "\xff\xfe"}', [Rejected]),
    (b"hello\n", [Rejected]),
    (b"[" * 40 + b"]" * 40, [Rejected]),
]


def feed_all(chunks: List[bytes], decoder: RequestDecoder) -> List[Any]:
    events: List[Any] = []
    for chunk in chunks:
        decoder.receive_data(chunk)
        while True:
            event = decoder.next_event()
            if event is None:
                break
            events.append(event)
    return events


def normalise(events: List[Any]) -> List[Any]:
    return [Rejected if isinstance(e, Rejected) else e for e in events]


@pytest.mark.parametrize(("data", "expected"), CASES)
def test_whole(data: bytes, expected: List[Any]) -> None:
    # A trailing space ends a bare token; JSON values need nothing after them.
    assert normalise(feed_all([data + b" "], RequestDecoder())) == expected


@pytest.mark.parametrize(("data", "expected"), CASES)
def test_byte_at_a_time(data: bytes, expected: List[Any]) -> None:
    chunks = [data[i : i + 1] for i in range(len(data))] + [b" "]
    assert normalise(feed_all(chunks, RequestDecoder())) == expected


@pytest.mark.parametrize(("data", "expected"), CASES)
def test_split_at_every_position(data: bytes, expected: List[Any]) -> None:
    for cut in range(1, len(data)):
        got = feed_all([data[:cut], data[cut:], b" "], RequestDecoder())
        assert normalise(got) == expected, cut


def test_all_cases_concatenated_in_one_segment() -> None:
    stream = b"".join(data + b" " for data, _ in CASES)
    expected = [event for _, events in CASES for event in events]
    assert normalise(feed_all([stream], RequestDecoder())) == expected


def test_all_cases_concatenated_byte_at_a_time() -> None:
    stream = b"".join(data + b" " for data, _ in CASES)
    expected = [event for _, events in CASES for event in events]
    chunks = [stream[i : i + 1] for i in range(len(stream))]
    assert normalise(feed_all(chunks, RequestDecoder())) == expected


# Whole objects back to back in one chunk, as clients pipeline them (the decoder's fast
# path, which asks the depth and escape questions of the whole chunk first).
PLAIN = b'{"request":"msg","content":"plain"}'
ESCAPED = b'{"request":"msg","content":"lone \\ud800 and \\"quotes\\""}'
DEEP = b'{"request":"msg","content":' + b"[" * 40 + b"]" * 40 + b"}"
WIDE = b'{"request":"msg","content":[' + b",".join([b"[1]"] * 40) + b"]}"


@pytest.mark.parametrize(
    "objects",
    [
        [PLAIN, PLAIN, PLAIN],
        [PLAIN, ESCAPED, PLAIN],
        [ESCAPED, PLAIN, ESCAPED],
        [PLAIN, DEEP, PLAIN],
        [PLAIN, WIDE, ESCAPED, PLAIN],
        [WIDE, WIDE],
        [PLAIN, b"\n", ESCAPED, b"\r\n", PLAIN, b"\n"],
    ],
)
def test_a_pipelined_chunk_reads_as_its_objects_one_by_one(objects: List[bytes]) -> None:
    chunk = b"".join(objects)
    one_by_one = feed_all([chunk[i : i + 1] for i in range(len(chunk))], RequestDecoder())
    assert feed_all([chunk], RequestDecoder()) == one_by_one
    requests = [event for event in one_by_one if isinstance(event, Request)]
    texts = [event.content for event in requests if isinstance(event.content, str)]
    assert all("\ud800" not in text for text in texts)
    assert len(one_by_one) == sum(1 for obj in objects if obj.startswith(b"{"))


def test_rejections_say_what_was_wrong() -> None:
    events = feed_all([b'[1] {"request": 5} {"x" 1}'], RequestDecoder())
    messages = [e.message for e in events]
    assert "got an array" in messages[0]
    assert '"request" must be a string' in messages[1]
    assert messages[2].startswith("Invalid JSON")
    assert not any(e.fatal for e in events)


def test_oversized_frame_is_fatal_and_stops_decoding() -> None:
    decoder = RequestDecoder(max_frame_bytes=100)
    events = feed_all([b'{"request": "msg", "content": "' + b"x" * 200], decoder)
    assert len(events) == 1 and events[0].fatal and "too large" in events[0].message
    decoder.receive_data(b'"}{"request": "names"}')
    assert decoder.next_event() is None  # nothing after a fatal frame


def test_oversized_complete_frame_in_one_chunk_is_fatal() -> None:
    decoder = RequestDecoder(max_frame_bytes=100)
    events = feed_all([encode_request("msg", "y" * 300) + b"[1"], decoder)
    assert [e.fatal for e in events] == [True]


def test_buffer_does_not_grow_past_one_frame() -> None:
    decoder = RequestDecoder(max_frame_bytes=1000)
    request = encode_request("msg", "z" * 50)
    for _ in range(2000):  # a long stream always ending mid-frame
        decoder.receive_data(request + request[:10])
        while decoder.next_event() is not None:
            pass
        decoder.receive_data(request[10:])
        while decoder.next_event() is not None:
            pass
        assert decoder.buffered <= len(request)


def test_deep_nesting_is_rejected_without_recursion_error() -> None:
    deep = b'{"request": "msg", "content": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    events = feed_all([deep, b'{"request": "names"}'], RequestDecoder(max_frame_bytes=1 << 20))
    assert isinstance(events[0], Rejected) and "deeply" in events[0].message
    assert events[1] == R("names", None)


def test_encode_request_has_no_delimiter() -> None:
    assert encode_request("login", "alice") == b'{"request":"login","content":"alice"}'
    assert encode_request("logout") == b'{"request":"logout","content":null}'


def message(text: str, sender: str = "alice", id: int = 1) -> Response:
    return Response("message", text, sender, "2017-03-10 12:00:00", {"id": id})


def test_encode_response_is_ascii_with_string_timestamp_and_newline() -> None:
    data = encode_response(message("blåbær"))
    assert data.endswith(b"\n") and data.count(b"\n") == 1
    data.decode("ascii")
    obj = json.loads(data)
    assert list(obj)[:4] == ["timestamp", "sender", "response", "content"]
    assert obj == {
        "timestamp": "2017-03-10 12:00:00",
        "sender": "alice",
        "response": "message",
        "content": "blåbær",
        "id": 1,
    }


@pytest.mark.parametrize("encoding", list(HistoryEncoding))
def test_history_encodings(encoding: HistoryEncoding) -> None:
    history = Response("history", (message("a"), message("b", "bob", 2)), "server", "t")
    obj = json.loads(encode_response(history, encoding))
    content = obj["content"]
    if encoding is HistoryEncoding.JSON_STRINGS:
        entries = [json.loads(item) for item in content]
    elif encoding is HistoryEncoding.OBJECTS:
        entries = content
    else:
        assert isinstance(content, str)
        entries = json.loads(content)
    assert [(e["sender"], e["content"], e["response"]) for e in entries] == [
        ("alice", "a", "message"),
        ("bob", "b", "message"),
    ]


def test_empty_history_is_an_empty_list() -> None:
    obj = json.loads(encode_response(Response("history", (), "server", "t")))
    assert obj["content"] == []


@pytest.mark.parametrize("encoding", list(HistoryEncoding))
def test_long_history_is_split_into_small_objects_in_order(encoding: HistoryEncoding) -> None:
    messages = tuple(message(f"message number {i} " + "x" * (i % 90), id=i) for i in range(50))
    frames = encode_response_frames(Response("history", messages, "server", "t"), encoding, 1000)
    assert len(frames) > 1
    assert all(len(frame) <= 1000 for frame in frames)
    texts = []
    for frame in frames:
        content = json.loads(frame)["content"]
        if encoding is HistoryEncoding.JSON_TEXT:
            content = json.loads(content)
        for entry in content:
            texts.append((json.loads(entry) if isinstance(entry, str) else entry)["content"])
    assert texts == [m.content for m in messages]


def test_one_huge_history_entry_travels_alone() -> None:
    messages = (message("s"), message("L" * 3000), message("t"))
    frames = encode_response_frames(
        Response("history", messages, "server", "t"), HistoryEncoding.JSON_STRINGS, 1000
    )
    assert len(frames) == 3 and len(frames[1]) > 3000


def test_frame_cap_holds_for_a_whole_object_in_one_chunk() -> None:
    decoder = RequestDecoder(max_frame_bytes=100)
    decoder.receive_data(encode_request("msg", "x" * 200))
    event = decoder.next_event()
    assert isinstance(event, Rejected) and event.fatal
