# Socket-level properties of a real ChatServer on a loopback port 0: a connection that
# interleaves garbage with valid requests gets an answer to every request that survives
# the garbage (in order, judged by feeding the same bytes to a RequestDecoder), or is
# closed cleanly after a fatal error; and another logged-in client still chats afterwards.
# Few examples: each one is real sockets and threads. Every server is shut down.
from __future__ import annotations

import itertools
import json
from typing import Any, Dict, Iterator, List, Tuple

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from ktnchat.protocol import DEFAULT_MAX_DEPTH, Rejected, Request, RequestDecoder
from ktnchat.server import ChatServer
from tests.fuzz import examples
from tests.helpers import Peer, start_server

MAX_FRAME = 1024
_names = itertools.count()


@pytest.fixture(scope="module")
def chat_server() -> Iterator[ChatServer]:
    server = start_server(max_frame_bytes=MAX_FRAME, frame_timeout=2.0)
    try:
        yield server
    finally:
        server.shutdown()


# Junk drawn mostly from JSON's structural bytes, so it opens strings and brackets,
# closes them, escapes quotes and makes almost-objects, as well as plain binary.
junk = st.one_of(
    st.binary(max_size=120),
    st.lists(
        st.sampled_from([b"{", b"}", b"[", b"]", b'"', b"\\", b"\n", b" ", b"\x00", b"\xff"])
        | st.sampled_from([b"1", b"null", b"NaN", b'"request"', b":", b",", b"\xed\xa0\x80"]),
        max_size=40,
    ).map(b"".join),
    st.integers(MAX_FRAME - 10, MAX_FRAME + 200).map(lambda n: b"x" * n + b" "),
)
steps = st.lists(
    st.one_of(junk.map(lambda b: ("junk", b)), st.integers(0, 10**6).map(lambda i: ("probe", i))),
    min_size=1,
    max_size=10,
)


def probe(number: int) -> bytes:
    # An unknown request word: the answer is an error naming it (extra key "request").
    return json.dumps({"request": f"probe{number}", "content": None}).encode()


def expected_answers(stream: bytes) -> Tuple[List[Tuple[str, Any]], bool]:
    """What the server must answer, in order, and whether it must then close."""
    decoder = RequestDecoder(max_frame_bytes=MAX_FRAME, max_depth=DEFAULT_MAX_DEPTH)
    decoder.receive_data(stream)
    answers: List[Tuple[str, Any]] = []
    for _ in range(len(stream) + 2):
        event = decoder.next_event()
        if event is None:
            break
        if isinstance(event, Rejected):
            answers.append(("error", None))
        else:
            assert isinstance(event, Request)
            assume(event.word.startswith("probe"))  # junk that forms a real request: rare
            answers.append(("error", event.word))
    return answers, decoder.broken


@settings(max_examples=examples(15), deadline=None)
@given(steps, st.integers(1, 64))
def test_each_surviving_request_is_answered_and_others_still_chat(
    chat_server: ChatServer, plan: List[Tuple[str, Any]], segment: int
) -> None:
    stream = b"".join(probe(v) if kind == "probe" else v for kind, v in plan)
    answers, fatal = expected_answers(stream)
    name = f"watcher{next(_names)}"
    with Peer(chat_server.address, stream=True) as watcher, Peer(chat_server.address) as fuzz:
        watcher.login(name)
        fuzz.send("stream", "on")
        fuzz.expect(lambda r: r.get("stream") is True)
        for start in range(0, len(stream), segment * 16):  # several sends, split anywhere
            try:
                fuzz.send_raw(stream[start : start + segment * 16])
            except OSError:
                assert fatal, "the server closed a connection that sent nothing fatal"
                break
        got: List[Tuple[str, Any]] = []
        for _ in answers:
            obj: Dict[str, Any] = fuzz.expect(lambda r: True)
            got.append((obj.get("response"), obj.get("request")))
        assert got == answers
        if fatal:
            fuzz.wait_eof()
        # The rest of the server is unharmed: the watcher still chats.
        watcher.send("msg", f"still here {name}")
        watcher.expect_response("message", content=f"still here {name}")


def test_many_garbage_connections_at_once_leave_the_chat_working(
    chat_server: ChatServer,
) -> None:
    blobs = [
        b"\xff" * 100 + b"\n",
        b"{" * 40,
        b'"\\',
        b"]" * 10,
        b"x" * (MAX_FRAME + 1),
        b"\x00" * 50,
    ]
    with Peer(chat_server.address, stream=True) as watcher:
        watcher.login("steady")
        peers = [Peer(chat_server.address) for _ in blobs]
        try:
            for peer, blob in zip(peers, blobs):
                peer.send_raw(blob)
            peers[4].wait_eof()  # the oversized one is closed
            peers[0].expect_response("error")  # the binary one is told
        finally:
            for peer in peers:
                peer.close()
        watcher.send("msg", "after the storm")
        watcher.expect_response("message", content="after the storm")


def test_a_unicode_digit_history_count_does_not_take_the_server_down() -> None:
    server = start_server()
    try:
        with Peer(server.address, stream=True) as alice, Peer(
            server.address, stream=True
        ) as mallory:  # streaming: an empty history is still answered (paced: nothing)
            alice.login("alice")
            mallory.login("mallory")
            mallory.send("history", "\u00b2")
            mallory.expect(lambda r: r.get("response") in ("history", "error"), timeout=2.0)
            alice.send("msg", "still up?")
            alice.expect_response("message", content="still up?", timeout=2.0)
            assert not server.crashed
    finally:
        server.shutdown()
