# Table tests for the lenient server-stream decoder: every measured server quirk, fed
# whole, one byte at a time, in odd chunks, and concatenated with the other cases.
from __future__ import annotations

import json
import random
from datetime import datetime
from typing import Any, Dict, List, NamedTuple, Sequence

import pytest

from ktnchat.protocol.lenient import (
    ChatLine,
    HistoryShape,
    Notice,
    ServerEvent,
    ServerStreamDecoder,
    Unreadable,
    deleted_ids,
    display_timestamp,
    entered_room,
    event_name,
    events_from_value,
    features_of,
    history_encoding,
    history_shape_of_session,
    is_private,
    is_stream_ack,
    left_room,
    listed_rooms,
    parse_names_text,
    room_names_in,
    sender_text,
    usernames_in,
)

EPOCH = 1489149296  # 2017-03-10 12:34:56 UTC


def local_hms(epoch: float) -> str:
    return datetime.fromtimestamp(epoch).strftime("%H:%M:%S")


def obj(**fields: Any) -> bytes:
    return json.dumps(fields).encode()


def msg(sender: Any, text: str, ts: Any = "2017-03-10 12:34:56") -> dict[str, Any]:
    return {"timestamp": ts, "sender": sender, "response": "message", "content": text}


def line(kind: str, sender: Any, text: str, ts: Any = "12:34:56", **kw: Any) -> ChatLine:
    return ChatLine(kind, sender, text, ts, **kw)


def hist(
    sender: Any, text: str, ts: Any = "12:34:56", raw: Any = "2017-03-10 12:34:56"
) -> ChatLine:
    return ChatLine("history_item", sender, text, ts, raw)


M1 = msg("alice", "hi")
M2 = msg("bob", "yo")
H_ITEMS = [hist("alice", "hi"), hist("bob", "yo")]


class Case(NamedTuple):
    name: str
    data: bytes
    expected: Sequence[ServerEvent]
    expect_names: bool = False


def history_resp(content: Any, response: str = "history") -> bytes:
    return obj(timestamp="12:00:00", sender="server", response=response, content=content)


CASES: List[Case] = [
    Case(
        "standard message",
        obj(**M1),
        [line("message", "alice", "hi", raw_timestamp="2017-03-10 12:34:56")],
    ),
    Case(
        "two objects in one segment",
        obj(**M1) + obj(**M2),
        [
            line("message", "alice", "hi", raw_timestamp="2017-03-10 12:34:56"),
            line("message", "bob", "yo", raw_timestamp="2017-03-10 12:34:56"),
        ],
    ),
    Case(
        "newline after every object and whitespace between",
        obj(**M1) + b"\n  \r\n\t" + obj(**M2) + b"\n",
        [
            line("message", "alice", "hi", raw_timestamp="2017-03-10 12:34:56"),
            line("message", "bob", "yo", raw_timestamp="2017-03-10 12:34:56"),
        ],
    ),
    Case(
        "timestamp formats",
        b"".join(
            obj(timestamp=ts, sender="s", response="info", content=str(i))
            for i, ts in enumerate(
                [
                    "12:34:56",
                    "10.03.2017 12:34",
                    "2017-03-10T12:34:56.123456",
                    "2017-03-10T12:34:56+01:00",
                    "Fri Mar 10 12:34:56 2017",
                    "yesterday",
                ]
            )
        ),
        [
            line("info", "s", "0", "12:34:56", raw_timestamp="12:34:56"),
            line("info", "s", "1", "12:34", raw_timestamp="10.03.2017 12:34"),
            line("info", "s", "2", "12:34:56", raw_timestamp="2017-03-10T12:34:56.123456"),
            line("info", "s", "3", "12:34:56", raw_timestamp="2017-03-10T12:34:56+01:00"),
            line("info", "s", "4", "12:34:56", raw_timestamp="Fri Mar 10 12:34:56 2017"),
            line("info", "s", "5", "yesterday", raw_timestamp="yesterday"),
        ],
    ),
    Case(
        "epoch timestamps: int, float, milliseconds, numeric string, missing",
        obj(timestamp=EPOCH, sender="s", response="info", content="a")
        + obj(timestamp=EPOCH + 0.5, sender="s", response="info", content="b")
        + obj(timestamp=EPOCH * 1000, sender="s", response="info", content="c")
        + obj(timestamp=str(EPOCH), sender="s", response="info", content="d")
        + obj(sender="s", response="info", content="e"),
        [
            line("info", "s", "a", local_hms(EPOCH), raw_timestamp=EPOCH),
            line("info", "s", "b", local_hms(EPOCH), raw_timestamp=EPOCH + 0.5),
            line("info", "s", "c", local_hms(EPOCH), raw_timestamp=EPOCH * 1000),
            line("info", "s", "d", local_hms(EPOCH), raw_timestamp=str(EPOCH)),
            line("info", "s", "e", None),
        ],
    ),
    Case(
        "senders: list, null, missing, number",
        obj(timestamp="1:02", sender=["alice", "bob"], response="message", content="a")
        + obj(timestamp="1:02", sender=None, response="message", content="b")
        + obj(timestamp="1:02", response="message", content="c")
        + obj(timestamp="1:02", sender=7, response="message", content="d"),
        [
            line("message", "alice, bob", "a", "01:02", raw_timestamp="1:02"),
            line("message", None, "b", "01:02", raw_timestamp="1:02"),
            line("message", None, "c", "01:02", raw_timestamp="1:02"),
            line("message", "7", "d", "01:02", raw_timestamp="1:02"),
        ],
    ),
    Case(
        "double-encoded object",
        json.dumps(json.dumps(M1)).encode() + b"\n",
        [line("message", "alice", "hi", raw_timestamp="2017-03-10 12:34:56")],
    ),
    Case(
        "history (1): list of JSON strings",
        history_resp([json.dumps(M1), json.dumps(M2)]),
        H_ITEMS,
    ),
    Case(
        "history (2): list of [ts, sender, text]",
        history_resp(
            [["2017-03-10 12:34:56", "alice", "hi"], ["2017-03-10 12:34:56", "bob", "yo"]]
        ),
        H_ITEMS,
    ),
    Case(
        "history (3): JSON text of a list of objects", history_resp(json.dumps([M1, M2])), H_ITEMS
    ),
    Case(
        "history (3): JSON text of a list of JSON strings",
        history_resp(json.dumps([json.dumps(M1), json.dumps(M2)])),
        H_ITEMS,
    ),
    Case("history (4): info carrying a list", history_resp([M1, M2], "info"), H_ITEMS),
    Case(
        "history (5): one history response per message",
        history_resp(M1) + history_resp(json.dumps(M2)),
        H_ITEMS,
    ),
    Case(
        "history (6): header info then messages",
        history_resp("History:", "info") + obj(**M1),
        [
            line("info", "server", "History:", "12:00:00", raw_timestamp="12:00:00"),
            line("message", "alice", "hi", raw_timestamp="2017-03-10 12:34:56"),
        ],
    ),
    Case(
        "history (7): one plain string",
        history_resp("alice: hi\nbob: yo"),
        [ChatLine("history_item", None, "alice: hi\nbob: yo")],
    ),
    Case("history: list of objects", history_resp([M1, M2]), H_ITEMS),
    Case("history: empty list", history_resp([]), []),
    Case(
        "ktnchat extensions: id, login features, join event, stream ack",
        obj(**M1, id=5)
        + obj(
            timestamp="1:00",
            sender="server",
            response="info",
            content="Login successful",
            username="alice",
            server="ktnchat/0.1",
            features=["stream"],
        )
        + obj(
            timestamp="1:00",
            sender="server",
            response="info",
            content="bob joined",
            event="join",
            username="bob",
        )
        + obj(timestamp="1:00", sender="server", response="info", content="ok", stream=True),
        [
            line(
                "message",
                "alice",
                "hi",
                raw_timestamp="2017-03-10 12:34:56",
                msg_id=5,
                extra={"id": 5},
            ),
            line(
                "info",
                "server",
                "Login successful",
                "01:00",
                raw_timestamp="1:00",
                extra={"username": "alice", "server": "ktnchat/0.1", "features": ["stream"]},
            ),
            line(
                "info",
                "server",
                "bob joined",
                "01:00",
                raw_timestamp="1:00",
                extra={"event": "join", "username": "bob"},
            ),
            line("info", "server", "ok", "01:00", raw_timestamp="1:00", extra={"stream": True}),
        ],
    ),
    Case(
        "names: ktnchat names key",
        obj(
            timestamp="1:00",
            sender="server",
            response="info",
            content="alice, bob",
            names=["alice", "bob"],
        ),
        [
            Notice(
                ("alice", "bob"),
                "alice, bob",
                "server",
                "01:00",
                "1:00",
                {"names": ["alice", "bob"]},
            )
        ],
    ),
    Case(
        "names: JSON list content",
        obj(response="info", content=["alice", "bob"]),
        [Notice(("alice", "bob"), "alice, bob")],
    ),
    Case(
        "unknown response, missing keys, odd content",
        obj(response="shout", sender="x", content="HI")
        + obj(sender="x", content="no response key")
        + obj(foo=1)
        + obj(response="info", content=3)
        + obj(response="info", content={"a": 1})
        + obj(response="info", content=None)
        + obj(response="INFO", content="upper"),
        [
            ChatLine("other", "x", "HI", label="shout"),
            ChatLine("other", "x", "no response key", label="no response key"),
            ChatLine("other", None, '{"foo": 1}', extra={"foo": 1}, label="no response key"),
            ChatLine("info", None, "3"),
            ChatLine("info", None, '{"a": 1}'),
            ChatLine("info", None, ""),
            ChatLine("info", None, "upper"),
        ],
    ),
    Case(
        "non-object JSON values",
        b'42 [1, "a"] "just text" null true\n',
        [
            ChatLine("other", None, "42", label="number"),
            ChatLine("other", None, '[1, "a"]', label="list"),
            ChatLine("other", None, "just text", label="text"),
            ChatLine("other", None, "", label="null"),
            ChatLine("other", None, "true", label="boolean"),
        ],
    ),
    Case(
        "garbage between objects",
        obj(**M1) + b" garbage!! {not: json} " + obj(**M2),
        [
            line("message", "alice", "hi", raw_timestamp="2017-03-10 12:34:56"),
            Unreadable(b"garbage!!", "not JSON: Expecting value: line 1 column 1 (char 0)"),
            Unreadable(
                b"{not: json}",
                "not JSON: Expecting property name enclosed in double quotes: line 1 column 2 "
                "(char 1)",
            ),
            line("message", "bob", "yo", raw_timestamp="2017-03-10 12:34:56"),
        ],
    ),
    Case(
        "invalid UTF-8 and control characters pass through (renderer neutralises)",
        b'{"response": "message", "sender": "e\\u001b[31m", "content": "a\xffb\x1b"}',
        [ChatLine("message", "e\x1b[31m", "a\ufffdb\x1b")],
    ),
]

NAMES_CASES: List[Case] = [
    Case(
        f"names text: {text!r}",
        obj(timestamp="1:00", sender="server", response="info", content=text),
        [Notice(names, text, "server", "01:00", "1:00")],
        expect_names=True,
    )
    for text, names in [
        ("alice, bob", ("alice", "bob")),
        ("alice\nbob", ("alice", "bob")),
        ("Users: alice bob", ("alice", "bob")),
        ("Connected users:\nalice\nbob\n", ("alice", "bob")),
    ]
] + [
    Case(
        "names text: Python list literal",
        obj(response="info", content="['alice', 'bob']"),
        [Notice(("alice", "bob"), "alice, bob")],
    ),
    Case(
        "names text: JSON text of a list",
        obj(response="info", content='["alice", "bob"]'),
        [Notice(("alice", "bob"), "alice, bob")],
        expect_names=True,
    ),
]


def decode_chunks(chunks: Sequence[bytes], expect_names: bool = False) -> List[ServerEvent]:
    decoder = ServerStreamDecoder()
    if expect_names:
        decoder.expect_names()
    out: List[ServerEvent] = []
    for chunk in chunks:
        out.extend(decoder.feed(chunk))
    out.extend(decoder.close())
    return out


ALL = CASES + NAMES_CASES


@pytest.mark.parametrize("case", ALL, ids=[c.name for c in ALL])
def test_whole(case: Case) -> None:
    assert decode_chunks([case.data], case.expect_names) == list(case.expected)


@pytest.mark.parametrize("case", ALL, ids=[c.name for c in ALL])
def test_byte_at_a_time(case: Case) -> None:
    chunks = [case.data[i : i + 1] for i in range(len(case.data))]
    assert decode_chunks(chunks, case.expect_names) == list(case.expected)


def test_all_cases_concatenated_in_random_chunks() -> None:
    data = b"".join(case.data for case in CASES)
    expected = [event for case in CASES for event in case.expected]
    assert decode_chunks([data]) == expected
    rng = random.Random(4100)
    for _ in range(20):
        chunks = []
        pos = 0
        while pos < len(data):
            size = rng.randint(1, 40)
            chunks.append(data[pos : pos + size])
            pos += size
        assert decode_chunks(chunks) == expected


def test_names_expectation_is_consumed_once() -> None:
    decoder = ServerStreamDecoder()
    decoder.expect_names()
    events = decoder.feed(
        obj(response="info", content="bob joined", event="join", username="bob")
        + obj(response="info", content="alice, bob")
        + obj(response="info", content="alice, bob")
    )
    assert events == [
        ChatLine("info", None, "bob joined", extra={"event": "join", "username": "bob"}),
        Notice(("alice", "bob"), "alice, bob"),
        ChatLine("info", None, "alice, bob"),
    ]


def test_names_error_consumes_expectation() -> None:
    decoder = ServerStreamDecoder()
    decoder.expect_names()
    events = decoder.feed(
        obj(response="error", content="Not logged in") + obj(response="info", content="a b")
    )
    assert events == [ChatLine("error", None, "Not logged in"), ChatLine("info", None, "a b")]


def test_oversized_frame_is_dropped_and_stream_recovers() -> None:
    decoder = ServerStreamDecoder(max_frame_bytes=100)
    events = decoder.feed(b'{"response": "info", "content": "' + b"x" * 200)
    assert events == [Unreadable(b"", "frame larger than 100 bytes")]
    events = decoder.feed(b'"}\n' + obj(**M1))
    assert events[-1] == line("message", "alice", "hi", raw_timestamp="2017-03-10 12:34:56")


def test_oversized_frame_in_one_chunk_with_neighbours() -> None:
    decoder = ServerStreamDecoder(max_frame_bytes=100)
    big = obj(response="info", content="x" * 200)
    events = decoder.feed(obj(**M1) + big + obj(**M2) + b"\n")
    expected_first = line("message", "alice", "hi", raw_timestamp="2017-03-10 12:34:56")
    assert events == [
        expected_first,
        Unreadable(b"", "frame larger than 100 bytes"),
        line("message", "bob", "yo", raw_timestamp="2017-03-10 12:34:56"),
    ]


def test_truncated_stream_reports_partial_frame() -> None:
    assert decode_chunks([b'{"response": "info"']) == [
        Unreadable(b"", "connection ended inside a JSON value")
    ]


def test_too_deep_is_unreadable_and_stream_continues() -> None:
    events = decode_chunks([b"[" * 100 + b"]" * 100 + obj(**M2)])
    assert isinstance(events[0], Unreadable)
    assert events[1] == line("message", "bob", "yo", raw_timestamp="2017-03-10 12:34:56")


def test_salvages_object_after_garbage_inside_frame() -> None:
    events = decode_chunks([b"{oops " + obj(**M1) + b"}\n"])
    assert isinstance(events[0], Unreadable)
    assert events[1] == line("message", "alice", "hi", raw_timestamp="2017-03-10 12:34:56")


@pytest.mark.parametrize(
    ("value", "shape"),
    [
        (json.loads(history_resp([json.dumps(M1)])), HistoryShape.JSON_STRINGS),
        (json.loads(history_resp([["t", "a", "x"]])), HistoryShape.TRIPLES),
        (json.loads(history_resp(json.dumps([M1]))), HistoryShape.JSON_TEXT),
        (json.loads(history_resp([M1], "info")), HistoryShape.INFO_LIST),
        (json.loads(history_resp(M1)), HistoryShape.PER_MESSAGE),
        (json.loads(history_resp(json.dumps(M1))), HistoryShape.PER_MESSAGE),
        (json.loads(history_resp("free text")), HistoryShape.PLAIN_STRING),
        (json.loads(history_resp([M1])), HistoryShape.OBJECTS),
        (json.loads(history_resp([])), HistoryShape.EMPTY),
        (json.loads(history_resp([M1, json.dumps(M2)])), HistoryShape.MIXED),
        (json.dumps(json.loads(history_resp([M1]))), HistoryShape.OBJECTS),
        (json.loads(history_resp(["alice", "bob"], "info")), None),
        (M1, None),
        (42, None),
    ],
)
def test_history_encoding(value: Any, shape: HistoryShape | None) -> None:
    assert history_encoding(value) is shape


def test_history_shape_of_session() -> None:
    info = {"response": "info", "content": "Login successful"}
    assert history_shape_of_session([info, M1, M2]) is HistoryShape.HEADER_THEN_MESSAGES
    assert history_shape_of_session([info]) is HistoryShape.ABSENT
    assert history_shape_of_session([info, json.loads(history_resp([]))]) is HistoryShape.EMPTY


def test_helpers() -> None:
    assert display_timestamp(None) is None
    assert display_timestamp(True) is None
    assert display_timestamp("") is None
    assert display_timestamp(float("nan")) is None
    assert display_timestamp(1e300) is not None  # overflow shown, not raised
    assert display_timestamp("x" * 100) == "x" * 23 + "…"
    assert sender_text(["a", None, ["b"]]) == "a, b"
    assert sender_text("") is None
    assert parse_names_text("") == ()
    assert parse_names_text(",,,") is None
    login = events_from_value(
        {"response": "info", "content": "ok", "features": ["stream", 3], "username": "al"}
    )[0]
    assert features_of(login) == ("stream",)
    assert features_of(ChatLine("message", "a", "b", extra={"features": ["stream"]})) == ()
    assert is_stream_ack(ChatLine("info", None, "", extra={"stream": True}))
    assert not is_stream_ack(Notice(None, ""))
    assert usernames_in(login) == ("al",)
    assert usernames_in(ChatLine("message", "bob", "hi")) == ("bob",)
    assert usernames_in(ChatLine("message", "two words", "hi")) == ()
    assert usernames_in(Notice(("a", "b"), "a, b")) == ("a", "b")


def test_never_raises_on_random_bytes() -> None:
    rng = random.Random(17)
    alphabet = b'{}[]":,\\ \n0123456789abcdefnulltrue\x00\xff\xc3'
    for _ in range(300):
        data = bytes(rng.choice(alphabet) for _ in range(rng.randint(0, 200)))
        decoder = ServerStreamDecoder(max_frame_bytes=150)
        for i in range(0, len(data), 7):
            decoder.feed(data[i : i + 7])
        decoder.close()


def test_usernames_with_control_characters_are_not_offered() -> None:
    assert usernames_in(ChatLine("message", "ev\x1bil", "hi")) == ()
    assert usernames_in(Notice(("ok", "b\x07ad"), "")) == ("ok",)


# --- ktnchat extension helpers -----------------------------------------------------------


def ext_info(**extra: Any) -> ServerEvent:
    [event] = events_from_value({"response": "info", "content": "x", **extra})
    return event


def test_event_and_room_helpers() -> None:
    joined = ext_info(event="Joined", room="games", topic="", owner=None)
    assert event_name(joined) == "joined"
    assert entered_room(joined) == "games" and left_room(joined) is None
    assert room_names_in(joined) == ("games",)
    login = ext_info(username="al", room="lobby", features=["stream"])
    assert event_name(login) is None and entered_room(login) == "lobby"
    join = ext_info(event="join", username="bob", room="games")
    assert entered_room(join) is None and room_names_in(join) == ("games",)
    kicked = ext_info(event="kicked", room="games", by="carol")
    assert left_room(kicked) == "games" and entered_room(kicked) is None
    assert entered_room(ext_info(event="joined", room="two words")) is None
    assert entered_room(ext_info(event="joined", room=7)) is None
    assert event_name(ChatLine("message", "a", "b", extra={"event": "joined"})) is None
    names = events_from_value(
        {"response": "info", "content": "Users in den: a", "names": ["a"], "room": "den"}
    )[0]
    assert isinstance(names, Notice) and entered_room(names) == "den"


def test_listed_rooms() -> None:
    listing = [{"name": "lobby", "members": 2}, {"name": " games "}, {"name": 3}, "den", None]
    rooms = ext_info(rooms=listing)
    assert listed_rooms(rooms) == ("lobby", "games", "den")
    assert room_names_in(rooms) == ("lobby", "games", "den")
    assert listed_rooms(ext_info(rooms="lobby")) is None
    assert listed_rooms(ext_info()) is None


def test_deleted_ids() -> None:
    assert deleted_ids(ext_info(event="removed", deleted=[42, "7", True, 8])) == (42, 8)
    assert deleted_ids(ext_info(event="removed", deleted=5)) == (5,)
    assert deleted_ids(ext_info(event="removed", deleted="5")) == ()
    assert deleted_ids(ext_info(event="topic", deleted=[1])) == ()


def test_private_messages_and_their_names() -> None:
    [private] = events_from_value(
        {"response": "message", "sender": "alice", "content": "psst", "private": True, "to": "bob"}
    )
    assert is_private(private)
    assert usernames_in(private) == ("alice", "bob")
    assert not is_private(ChatLine("message", "a", "b", extra={"private": 1}))
    assert not is_private(ChatLine("info", "a", "b", extra={"private": True}))
    assert usernames_in(ext_info(event="kick", username="bob", by="carol")) == ("bob", "carol")


def test_extension_infos_are_not_read_as_names_answers() -> None:
    extras: List[Dict[str, Any]] = [{"rooms": []}, {"bans": []}, {"entries": []}, {"event": "x"}]
    for extra in extras:
        [event] = events_from_value(
            {"response": "info", "content": "alice, bob", **extra}, expect_names=True
        )
        assert isinstance(event, ChatLine), extra
