# Properties of the codec under hostile input: arbitrary bytes split anywhere, valid JSON
# of every wrong shape, every request word with every content type, and the responses
# going the other way (strict encoder, lenient client decoder, 2014 translation).
#
# Invariants: nothing raises; every frame yields exactly one event; a fatal Rejected is
# the last event; memory held per connection stays within the frame cap (plus one recv
# chunk) and undelivered events stay bounded; decoding does not depend on how the stream
# was split.
from __future__ import annotations

import json
import math
from typing import Any, List, Sequence, Tuple

import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from ktnchat.protocol import (
    DEFAULT_MAX_DEPTH,
    HISTORY,
    MESSAGE,
    HistoryEncoding,
    Rejected,
    Request,
    RequestDecoder,
    RequestEvent,
    Response,
    encode_json,
    encode_request,
    encode_response,
    encode_response_frames,
    parse_json,
    response_to_dict,
    scrub_surrogates,
)
from ktnchat.protocol.edition2014 import (
    BacklogEncoding,
    Edition2014Writer,
    broadcast_object,
)
from ktnchat.protocol.lenient import ChatLine, Notice, ServerStreamDecoder, Unreadable
from tests.fuzz import (
    any_text,
    examples,
    huge_text,
    json_values,
    nested,
    request_words,
    tricky_text,
)

SMALL_FRAME = 512  # a small cap so that examples reach it


# --- helpers -----------------------------------------------------------------------------


def split_at(data: bytes, cuts: Sequence[int]) -> List[bytes]:
    """`data` cut at the given offsets (taken modulo its length, sorted, deduplicated)."""
    if not data:
        return [b""]
    points = sorted({0, len(data), *(c % (len(data) + 1) for c in cuts)})
    return [data[a:b] for a, b in zip(points, points[1:])]


def drain(decoder: RequestDecoder) -> List[RequestEvent]:
    """Every event ready now (bounded: each one consumes at least one buffered byte)."""
    out: List[RequestEvent] = []
    for _ in range(decoder.buffered + decoder.waiting + 2):
        event = decoder.next_event()
        if event is None:
            return out
        out.append(event)
    raise AssertionError("next_event() never returned None")


def decode_stream(
    chunks: Sequence[bytes], max_frame_bytes: int = SMALL_FRAME, max_depth: int = 32
) -> List[RequestEvent]:
    """Feed the chunks as recv() would, draining after each; check the invariants."""
    decoder = RequestDecoder(max_frame_bytes=max_frame_bytes, max_depth=max_depth)
    biggest_chunk = max((len(c) for c in chunks), default=0)
    events: List[RequestEvent] = []
    for chunk in chunks:
        decoder.receive_data(chunk)
        # Memory bound: at most one frame's worth, plus the chunk just received.
        assert decoder.buffered <= max_frame_bytes + biggest_chunk
        # receive_data decodes eagerly only a chunk of whole objects: at most one event
        # per two bytes of the chunk ("{}" is the smallest object).
        assert decoder.waiting <= max(1, len(chunk) // 2)
        new = drain(decoder)
        assert decoder.waiting == 0
        if not decoder.broken:
            assert decoder.buffered <= max_frame_bytes
        events.extend(new)
    for event in events:
        check_event(event)
    fatal = [i for i, e in enumerate(events) if isinstance(e, Rejected) and e.fatal]
    assert fatal in ([], [len(events) - 1]), "a fatal rejection must be the last event"
    assert decoder.broken == bool(fatal)
    return events


def check_event(event: RequestEvent) -> None:
    assert isinstance(event, (Request, Rejected)), event
    if isinstance(event, Rejected):
        assert isinstance(event.message, str) and event.message
        encode_json({"response": "error", "content": event.message})
        return
    word = event.word
    assert isinstance(word, str) and word
    assert word == word.strip().lower() or event.edition == 2014
    assert scrub_surrogates(word) == word
    if isinstance(event.content, str) and event.edition == 2017:
        assert scrub_surrogates(event.content) == event.content
    assert event.edition in (2014, 2017)


def same_events(a: Sequence[RequestEvent], b: Sequence[RequestEvent]) -> bool:
    """Events equal, comparing contents as JSON (so NaN-free floats and -0.0 compare)."""

    def key(event: RequestEvent) -> Tuple[Any, ...]:
        if isinstance(event, Rejected):
            return ("rejected", event.message, event.fatal)
        content = encode_json(event.content)  # every decoded value is encodable again
        return ("request", event.word, content, event.edition, event.alias)

    return [key(e) for e in a] == [key(e) for e in b]


# --- strategies --------------------------------------------------------------------------

cuts = st.lists(st.integers(min_value=0, max_value=1 << 20), max_size=12)

# Raw JSON text of every wrong shape, as bytes.
wrong_shapes = st.one_of(
    json_values().map(lambda v: json.dumps(v).encode()),  # any value (mostly not a dict)
    json_values().map(lambda v: json.dumps(v, ensure_ascii=False).encode("utf-8", "surrogatepass")),
    st.sampled_from(
        [
            b"NaN",
            b"-Infinity",
            b'{"request": NaN}',
            b'{"request": "msg", "content": Infinity}',
            b'{"request": "msg", "content": [NaN]}',
            b"{1: 2}",
            b'{null: "x", "request": "help"}',
            b'{"request": "help",}',
            b"{'request': 'help'}",
            b'{"request": "\\ud800"}',
            b'{"request": "msg", "content": "\\udc00\\ud800"}',
            b'{"request": "msg", "content": "a\x00b"}',
            b'{"request": "msg\\u0000", "content": "x"}',
            b'{"request": "msg", "content": "\xed\xa0\x80"}',  # a surrogate in UTF-8: not UTF-8
            b'{"request": "msg", "content": "\xff\xfe"}',
            b'{"request": "msg", "content": "\xc3"}',
            b'{"request": "login", "username": ["a"]}',
            b'{"request": "message"}',
            b'{"request": "listUsers", "message": {}}',
            b'{"request": 1e999}',
            b'{"request": "msg", "content": 1e999}',
            b'{"request": "msg", "content": -0}',
            b'{"request": "msg", "content": 123456789012345678901234567890}',
            b'{"request": ' + b'"' + b"x" * 65 + b'"}',
            b'{"request": "help", "request": 5}',
            b"]]]]}}}}",
            b"[[[[{{{{",
            b'"unterminated',
            b"\\",
            b"\x00\x00\x00",
            b"\xef\xbb\xbf{}",  # a UTF-8 byte-order mark
        ]
    ),
    st.integers(1, 3000).map(lambda n: nested(n).encode()),
    st.integers(1, 3000).map(lambda n: ('{"request":"msg","content":' + nested(n) + "}").encode()),
    st.integers(1, 2000).map(lambda n: ('{"a":' * n + "1" + "}" * n).encode()),
    st.binary(max_size=64),
)

# A request envelope with any word and any content, and the 2014 edition's shapes.
envelopes = st.one_of(
    st.fixed_dictionaries({"request": request_words, "content": json_values()}),
    st.fixed_dictionaries({"request": request_words, "content": huge_text}),
    st.fixed_dictionaries({"request": request_words}, optional={"content": json_values()}),
    st.fixed_dictionaries(
        {"request": st.sampled_from(["login", "message", "users", "listUsers", "logout"])},
        optional={"username": json_values(), "message": json_values()},
    ),
    st.dictionaries(any_text, json_values(4), max_size=4),
)


# --- RequestDecoder: arbitrary bytes -----------------------------------------------------


@settings(max_examples=examples(150))
@given(st.binary(max_size=2048), cuts, st.integers(16, 1024))
@example(b"\x00" * 100 + b"{" * 600, [1, 2, 3], 16)
@example(b'"' + b"\\" * 999, [500], 600)
@example(b"1" * 700, [], 512)
def test_arbitrary_bytes_never_raise_and_stay_bounded(
    data: bytes, cut_points: List[int], cap: int
) -> None:
    decode_stream(split_at(data, cut_points), max_frame_bytes=cap)


@settings(max_examples=examples(100))
@given(st.lists(wrong_shapes, min_size=1, max_size=6), cuts)
def test_wrong_shapes_are_rejected_one_event_per_frame(
    frames: List[bytes], cut_points: List[int]
) -> None:
    # Newline-separated frames, each under the cap: exactly one event each, never fatal.
    stream = b"".join(f + b"\n" for f in frames)
    events = decode_stream(split_at(stream, cut_points), max_frame_bytes=1 << 20)
    assert not any(isinstance(e, Rejected) and e.fatal for e in events)
    # Bare tokens/garbage may hold several frames (e.g. "]]]]" or binary); values do not.
    if all(_is_one_value(f) for f in frames):
        assert len(events) == len(frames)
        for frame, event in zip(frames, events):
            if isinstance(event, Request):
                assert frame.lstrip().startswith(b"{"), (frame, event)


def _is_one_value(frame: bytes) -> bool:
    try:
        json.loads(frame.decode("utf-8", "surrogatepass"))
    except (ValueError, RecursionError):
        return False
    return True


@settings(max_examples=examples(100))
@given(st.lists(envelopes, min_size=1, max_size=6), cuts, st.booleans())
def test_every_envelope_decodes_to_one_event(
    values: List[Any], cut_points: List[int], newline: bool
) -> None:
    frames = [json.dumps(v).encode() + (b"\n" if newline else b"") for v in values]
    stream = b"".join(frames)
    events = decode_stream(split_at(stream, cut_points), max_frame_bytes=1 << 20)
    assert len(events) == len(values)
    for value, event in zip(values, events):
        word = value.get("request")
        if isinstance(event, Request):
            assert isinstance(word, str)
        elif isinstance(word, str) and "content" in value and 0 < len(word.strip().lower()) <= 64:
            raise AssertionError(f"a well-formed request was refused: {value!r} -> {event!r}")


@settings(max_examples=examples(150))
@given(request_words, json_values())
def test_every_request_round_trips(word: str, content: Any) -> None:
    """encode_request -> RequestDecoder gives the request back (words normalised)."""
    assume(0 < len(word.strip().lower()) <= 64)
    [event] = decode_stream([encode_request(word, content)], max_frame_bytes=1 << 22)
    assert isinstance(event, Request), event
    assert event.word == scrub_surrogates(word.strip().lower())
    expected = scrub_surrogates(content) if isinstance(content, str) else content
    assert encode_json(event.content) == encode_json(expected)
    assert event.edition == 2017


@settings(max_examples=examples(100))
@given(
    st.lists(st.one_of(envelopes.map(lambda v: json.dumps(v).encode()), wrong_shapes), max_size=8)
)
def test_decoding_does_not_depend_on_the_split(frames: List[bytes]) -> None:
    """Whole, or byte by byte: the same events, depth cap included."""
    stream = b"\n".join(frames)[: 8 * 1024] + b"\n"  # keep byte-by-byte feeding cheap
    depth = DEFAULT_MAX_DEPTH
    whole = decode_stream([stream], 1 << 20, depth)
    one_by_one = decode_stream([stream[i : i + 1] for i in range(len(stream))], 1 << 20, depth)
    assert same_events(whole, one_by_one), (whole, one_by_one)


@settings(max_examples=examples(60))
@given(st.binary(max_size=4096), cuts)
def test_the_frame_cap_is_enforced_however_the_bytes_arrive(
    data: bytes, cut_points: List[int]
) -> None:
    """A frame over the cap is always fatal, and nothing after it is decoded."""
    cap = 64
    oversized = b'{"request":"msg","content":"' + b"x" * (cap + 1) + b'"}'
    stream = data.replace(b"{", b"").replace(b"[", b"").replace(b'"', b"") + b"\n" + oversized
    stream += b'{"request":"help"}'
    events = decode_stream(split_at(stream, cut_points), max_frame_bytes=cap)
    assert events and isinstance(events[-1], Rejected) and events[-1].fatal


DEEP = b'{"request":"msg","content":' + nested(40).encode() + b"}"


def test_depth_cap_does_not_depend_on_the_split() -> None:
    whole = decode_stream([DEEP], max_depth=32)
    split = decode_stream([DEEP[:10], DEEP[10:]], max_depth=32)
    assert same_events(split, [Rejected("Invalid request: JSON nested too deeply")])
    assert same_events(whole, split), (whole, split)


@pytest.mark.parametrize(
    "frame",
    [
        b'{"request": "  ", "username": "alice"}',
        b'{"request": "\\ud800", "message": "hi"}',
        b'{"request": "' + b"x" * 100 + b'", "username": "alice"}',
    ],
)
def test_2014_requests_get_the_same_word_checks(frame: bytes) -> None:
    [event] = decode_stream([frame])
    assert isinstance(event, Rejected) or (
        event.word and len(event.word) <= 64 and scrub_surrogates(event.word) == event.word
    ), event


@pytest.mark.parametrize("number", [b"1e999", b"-1e999", b"[1e400]"])
def test_out_of_range_numbers_are_refused_like_infinity(number: bytes) -> None:
    [event] = decode_stream([b'{"request": "msg", "content": ' + number + b"}"])
    assert isinstance(event, Rejected) or encode_json(event.content), event


@settings(max_examples=examples(30))
@given(st.integers(1, 64), st.integers(0, 600))
def test_undelivered_events_stay_bounded_without_draining(chunks: int, junk: int) -> None:
    """A reader that stops calling next_event (a busy connection) holds at most one
    decoded event per chunk received; the rest waits as bytes, which the server caps
    with read_pause_bytes. Draining later yields one event per request, in order."""
    decoder = RequestDecoder(max_frame_bytes=SMALL_FRAME)
    sent = []
    for i in range(chunks):
        word = f"w{i}"
        sent.append(word)
        decoder.receive_data(b" " * (junk * (i % 2)) + encode_request(word))
        assert decoder.waiting <= i + 1
    got = drain(decoder)
    assert [e.word for e in got if isinstance(e, Request)] == sent


# --- responses: strict encoder, lenient reader, 2014 translation --------------------------

# Extension keys are the service's business (e.g. "names" is always a list); here the
# extras are free-form keys that neither the 2014 writer nor the lenient reader reads.
SERVICE_KEYS = {"timestamp", "sender", "response", "content", "names", "username", "server"}
SERVICE_KEYS |= {"event", "code", "request", "private", "id", "message", "msg", "text", "body"}
safe_extra = st.dictionaries(
    any_text.filter(lambda k: k.strip().lower() not in SERVICE_KEYS),
    json_values(4),
    max_size=3,
)
messages = st.builds(
    lambda text, sender, ts, extra: Response(MESSAGE, text, sender, ts, extra),
    tricky_text.map(lambda t: t[:2000]),
    any_text,
    any_text,
    safe_extra,
)
responses = st.one_of(
    messages,
    st.builds(
        Response,
        st.sampled_from(["error", "info"]),
        tricky_text.map(lambda t: t[:2000]),
        any_text,
        any_text,
        safe_extra,
    ),
    st.builds(
        lambda items, sender, ts: Response(HISTORY, tuple(items), sender, ts),
        st.lists(messages, max_size=8),
        any_text,
        any_text,
    ),
)


flat_extra = st.dictionaries(
    any_text.filter(lambda k: k not in {"timestamp", "sender", "response", "content"}),
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        any_text,
        st.floats(allow_nan=False, allow_infinity=False),
        json_values(2),
    ),
    max_size=4,
)


@settings(max_examples=examples(200))
@given(
    st.sampled_from(["message", "error", "info"]),
    tricky_text.map(lambda t: t[:500]),
    st.one_of(any_text, st.none(), st.integers()),
    any_text,
    flat_extra,
)
@example("info", "x", "s", "t", {"a": True, "b": False, "c": None, "d": -7, "e": "\u00e9\ud800"})
@example("message", "\x00\"\\", "s", "t", {"f": 1.5, "g": [1, {"h": True}]})
def test_the_flat_encoder_writes_what_the_general_encoder_writes(
    kind: str, content: str, sender: Any, stamp: str, extra: Any
) -> None:
    """encode_response's fast path (strings, ints, booleans, null) is byte for byte
    the general encoder's output; anything else falls back to the general encoder."""
    response = Response(kind, content, sender, stamp, extra)
    general = encode_json(response_to_dict(response, HistoryEncoding.JSON_STRINGS))
    assert encode_response(response) == (general + "\n").encode("ascii")


@settings(max_examples=examples(100))
@given(responses, st.sampled_from(list(HistoryEncoding)), st.integers(50, 3000))
def test_responses_encode_to_ascii_json_and_split_within_the_limit(
    response: Response, encoding: HistoryEncoding, limit: int
) -> None:
    frames = encode_response_frames(response, encoding, limit)
    assert frames
    for frame in frames:
        assert frame.endswith(b"\n") and frame.count(b"\n") == 1
        frame.decode("ascii")
        obj = parse_json(frame)
        assert isinstance(obj, dict)
        assert list(obj)[:4] == ["timestamp", "sender", "response", "content"]
    if response.kind == HISTORY:
        per_frame = [parse_json(f)["content"] for f in frames]
        for frame, content in zip(frames, per_frame):
            items = json.loads(content) if encoding is HistoryEncoding.JSON_TEXT else content
            assert len(frame) <= limit or len(items) <= 1
        got = [
            item
            for content in per_frame
            for item in (json.loads(content) if encoding is HistoryEncoding.JSON_TEXT else content)
        ]
        want = [
            json.loads(encode_json(response_to_dict(m, encoding)))
            if encoding is not HistoryEncoding.JSON_STRINGS
            else encode_json(response_to_dict(m, encoding))
            for m in response.content
        ]
        assert got == want
    else:
        assert frames == [encode_response(response, encoding)]


@settings(max_examples=examples(60))
@given(st.lists(responses, min_size=1, max_size=5), cuts)
def test_lenient_reader_reads_what_the_server_writes(
    sent: List[Response], cut_points: List[int]
) -> None:
    stream = b"".join(
        b"".join(encode_response_frames(r, HistoryEncoding.JSON_STRINGS, 1000)) for r in sent
    )
    decoder = ServerStreamDecoder(max_frame_bytes=1 << 20)
    events = []
    for chunk in split_at(stream, cut_points):
        events.extend(decoder.feed(chunk))
    events.extend(decoder.close())
    assert not any(isinstance(e, Unreadable) for e in events), events
    texts = [e.text for e in events if isinstance(e, ChatLine)]
    for response in sent:
        if response.kind in ("error", "message"):
            assert scrub_surrogates(response.content) in texts


@settings(max_examples=examples(150))
@given(st.binary(max_size=4096), cuts, st.integers(8, 1024), st.booleans())
@example(b'{"response":"info","content":"' + b"\\" * 300, [7], 64, True)
@example(b"}\n{" * 200, [1, 2, 3, 4], 8, False)
def test_lenient_reader_never_raises_and_stays_bounded(
    data: bytes, cut_points: List[int], cap: int, names: bool
) -> None:
    decoder = ServerStreamDecoder(max_frame_bytes=cap)
    if names:
        decoder.expect_names()
    chunks = split_at(data, cut_points)
    biggest = max(len(c) for c in chunks)
    for chunk in chunks:
        for event in decoder.feed(chunk):
            assert isinstance(event, (ChatLine, Notice, Unreadable))
        assert decoder.buffered <= cap + biggest
    for event in decoder.close():
        assert isinstance(event, (ChatLine, Notice, Unreadable))
    assert decoder.buffered == 0


@settings(max_examples=examples(100))
@given(
    st.lists(st.one_of(wrong_shapes, envelopes.map(lambda v: json.dumps(v).encode())), max_size=6),
    cuts,
)
def test_lenient_reader_takes_any_json_shape(frames: List[bytes], cut_points: List[int]) -> None:
    decoder = ServerStreamDecoder()
    decoder.expect_names()
    for chunk in split_at(b"\n".join(frames), cut_points):
        for event in decoder.feed(chunk):
            assert isinstance(event, (ChatLine, Notice, Unreadable))
    decoder.close()


@settings(max_examples=examples(60))
@given(st.lists(responses, max_size=6), st.sampled_from(list(BacklogEncoding)))
def test_2014_translation_never_raises_and_is_json(
    sequence: List[Response], backlog: BacklogEncoding
) -> None:
    writer = Edition2014Writer(backlog)
    for response in sequence:
        for obj in [*writer.reply_objects(response), broadcast_object(response) or {}]:
            assert isinstance(obj, dict)
            text = encode_json(obj)
            assert isinstance(json.loads(text), dict)


def test_float_contents_survive_exactly() -> None:
    for value in (0.1, -0.0, 1e308, 5e-324, math.pi):
        [event] = decode_stream([encode_request("msg", value)])
        assert isinstance(event, Request) and event.content == value
