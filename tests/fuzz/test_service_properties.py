# Properties of ChatService under hostile requests: every request word (known, aliased,
# 2014-edition, junk) with every content type (null, booleans, huge and float numbers,
# strings with NUL, lone surrogates, odd digits, huge strings, lists, nested objects), from
# every state (logged out, user, owner, moderator, admin), one at a time and as random
# multi-user sessions.
#
# Invariants: `handle` never raises; every request is answered (a reply, a broadcast that
# reaches the requester, or a close); everything the service emits encodes on the wire in
# every history encoding and in the 2014 edition; presence stays consistent.
from __future__ import annotations

import contextlib
import json
from typing import Any, Iterator, List

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    initialize,
    invariant,
    rule,
)

from ktnchat.protocol import (
    HistoryEncoding,
    Rejected,
    Request,
    RequestDecoder,
    Response,
    encode_json,
    encode_response_frames,
)
from ktnchat.protocol.edition2014 import Edition2014Writer, broadcast_object
from ktnchat.service import Outcome, Session
from ktnchat.service import passwords as passwords_module
from ktnchat.service.chat import split_first
from ktnchat.service.commands import ALIASES, COMMANDS
from tests.fuzz import KNOWN_WORDS, examples, json_values, request_words
from tests.service.fixtures import Chat

STATES = ("logged_out", "user", "owner", "moderator", "admin")


@contextlib.contextmanager
def cheap_hashing() -> Iterator[None]:
    """`register` and `password` hash at full cost (~50 ms); these tests send thousands
    of them, so make new hashes cheap (verification still honours the stored cost)."""
    saved = passwords_module.SCRYPT_N, passwords_module.PBKDF2_ITERATIONS
    passwords_module.SCRYPT_N, passwords_module.PBKDF2_ITERATIONS = 2, 1
    try:
        yield
    finally:
        passwords_module.SCRYPT_N, passwords_module.PBKDF2_ITERATIONS = saved


def check_response(response: Response) -> None:
    """A response goes on the wire in every encoding, 2017 and 2014, without error."""
    for encoding in HistoryEncoding:
        for frame in encode_response_frames(response, encoding, 1000):
            frame.decode("ascii")
            assert isinstance(json.loads(frame), dict)
    writer = Edition2014Writer()
    for obj in [*writer.reply_objects(response), broadcast_object(response) or {}]:
        encode_json(obj)


def check_outcome(outcome: Outcome, session: Session) -> None:
    assert isinstance(outcome, Outcome)
    for response in outcome.replies:
        check_response(response)
    for broadcast in outcome.broadcasts:
        check_response(broadcast.response)
    for target, reason in outcome.disconnect:
        assert isinstance(target, Session) and isinstance(reason, str)
    reaches_requester = any(
        b.recipients is not None and session in b.recipients and b.exclude is not session
        for b in outcome.broadcasts
    )
    assert outcome.replies or reaches_requester or outcome.close, (
        f"request not answered: {outcome!r}"
    )


def known_crash(word: str, content: Any) -> bool:
    """Inputs that hit the bug pinned by test_unicode_digits_are_refused_not_crashing:
    text that str.isdigit() accepts but int() refuses (e.g. superscript digits)."""
    word = ALIASES.get(word.strip().lower(), word.strip().lower())
    if word in ("history", "modlog") and isinstance(content, str):
        text = content.strip()
        return text.isdigit() and not text[:9].isdecimal()
    if word == "remove":
        raw = split_first(content)[0]
        return raw.isdigit() and not raw[:18].isdecimal()
    return False


def in_state(chat: Chat, state: str) -> Session:
    """A session in `state`, with a room, a registered moderator and a message around."""
    owner, mod = chat.owned_room("den")
    chat.say(owner, "hello")
    if state == "logged_out":
        return chat.connect()
    if state == "owner":
        return owner
    if state == "moderator":
        return mod
    if state == "admin":
        session = chat.admin("root")
        chat.join(session, "den")
        return session
    session = chat.login("ursula")
    chat.join(session, "den")
    return session


contents = st.one_of(
    json_values(),
    st.sampled_from(KNOWN_WORDS),
    st.builds(
        lambda a, b: f"{a} {b}",
        st.sampled_from(["olivia", "mike", "ursula", "root", "den", "lobby", "1", "0"]),
        json_values().map(lambda v: v if isinstance(v, str) else json.dumps(v)),
    ),
)


@settings(max_examples=examples(400))
@given(
    st.sampled_from(STATES),
    request_words,
    contents,
    st.sampled_from([2017, 2014]),
)
def test_every_request_with_every_content_in_every_state(
    state: str, word: str, content: Any, edition: int
) -> None:
    word = word.strip().lower()
    assume(word)
    assume(not known_crash(word, content))
    with cheap_hashing():
        chat = Chat()
        session = in_state(chat, state)
        outcome = chat.service.handle(session, Request(word, content, edition=edition))
        check_outcome(outcome, session)
        # The connection then goes away: that never raises either.
        check_outcome_of_close(chat.service.close_session(session, "gone"))


def check_outcome_of_close(outcome: Outcome) -> None:
    for broadcast in outcome.broadcasts:
        check_response(broadcast.response)


@settings(max_examples=examples(40))
@given(st.lists(st.binary(max_size=300), max_size=6))
def test_decoded_garbage_never_reaches_the_service_as_a_crash(chunks: List[bytes]) -> None:
    """Bytes -> RequestDecoder -> ChatService, as the server wires them."""
    chat = Chat()
    session = chat.connect()
    decoder = RequestDecoder(max_frame_bytes=1024)
    for chunk in chunks:
        decoder.receive_data(chunk)
        for _ in range(len(chunk) + 2):
            event = decoder.next_event()
            if event is None:
                break
            if isinstance(event, Rejected):
                check_response(chat.service.error(event.message))
                continue
            assume(not known_crash(event.word, event.content))
            check_outcome(chat.service.handle(session, event), session)


# --- random multi-user sessions ----------------------------------------------------------

NAMES = ["olivia", "mike", "ursula", "Ursula", "root", "x" * 21, "bad name", "_u"]


class ChatMachine(RuleBasedStateMachine):
    """Several connections send random requests; the service keeps its books straight."""

    sessions = Bundle("sessions")

    def __init__(self) -> None:
        super().__init__()
        self._hashing = cheap_hashing()
        self._hashing.__enter__()
        self.chat = Chat()
        self.open: List[Session] = []

    def teardown(self) -> None:
        self._hashing.__exit__(None, None, None)

    @initialize(target=sessions)
    def first(self) -> Session:
        return self.connect()

    @rule(target=sessions)
    def connect(self) -> Session:
        session = self.chat.connect()
        self.open.append(session)
        return session

    @rule(
        session=sessions,
        word=st.sampled_from(sorted(COMMANDS)),
        content=st.one_of(
            st.sampled_from(NAMES),
            st.builds(
                lambda a, b: f"{a} {b}",
                st.sampled_from(
                    [*NAMES, "den", "lobby", "1", "s3cret-pass", "correct-horse-battery"]
                ),
                st.sampled_from(["den", "topic", "5", "0", "1e308", "s3cret-pass", "all", ""]),
            ),
            json_values(4),
        ),
        edition=st.sampled_from([2017, 2014]),
    )
    def send(self, session: Session, word: str, content: Any, edition: int) -> None:
        assume(not known_crash(word, content))
        outcome = self.chat.service.handle(session, Request(word, content, edition=edition))
        if session.closed:
            return  # a closed session's late request: nothing is promised about it
        check_outcome(outcome, session)
        for target, _ in outcome.disconnect:  # the server would close these
            check_outcome_of_close(self.chat.service.close_session(target, "banned"))

    @rule(
        session=sessions,
        name=st.sampled_from(NAMES),
        password=st.sampled_from(["", " s3cret-pass", " wrong-password"]),
    )
    def login(self, session: Session, name: str, password: str) -> None:
        self.send(session, "login", name + password, 2017)

    @rule(session=consumes(sessions))
    def close(self, session: Session) -> None:
        check_outcome_of_close(self.chat.service.close_session(session, "gone"))
        check_outcome_of_close(self.chat.service.close_session(session, "twice"))
        if session in self.open:
            self.open.remove(session)

    @rule(seconds=st.sampled_from([0.5, 61.0, 3600.0]))
    def wait(self, seconds: float) -> None:
        self.chat.clock.advance(seconds)

    @invariant()
    def presence_is_consistent(self) -> None:
        presence = self.chat.service.presence
        live = [s for s in self.open if s.username is not None and not s.closed]
        assert presence.online_count() == len(live)
        keys = [s.username.lower() for s in live if s.username]
        assert len(keys) == len(set(keys)), "two connections hold the same name"
        for s in live:
            assert presence.holder(s.username) is s


TestChatMachine = ChatMachine.TestCase
TestChatMachine.settings = settings(
    max_examples=examples(40), stateful_step_count=40, deadline=None
)


# --- bugs found --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("state", "word", "content"),
    [
        ("user", "history", "\u00b2"),
        ("admin", "modlog", "\u00b9"),
        ("moderator", "remove", "\u00b3"),
    ],
)
def test_unicode_digits_are_refused_not_crashing(state: str, word: str, content: str) -> None:
    chat = Chat()
    session = in_state(chat, state)
    outcome = chat.service.handle(session, Request(word, content))
    check_outcome(outcome, session)


def test_known_crash_filter_is_narrow() -> None:
    assert known_crash("history", "\u00b2")
    assert known_crash("remove", "1\u00b2 x")
    assert not known_crash("history", "\u0663")  # int()-able: answered fine
    assert not known_crash("msg", "\u00b2")
    assert not known_crash("history", "12")
