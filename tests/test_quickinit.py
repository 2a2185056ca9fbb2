# quick_init: the faster __init__ of the per-message frozen dataclasses must build exactly
# what dataclasses' own __init__ builds (defaults, factories, __post_init__, frozenness).
from __future__ import annotations

import dataclasses
from dataclasses import InitVar, dataclass, field
from typing import Any, List

import pytest

from ktnchat.protocol import Request, Response
from ktnchat.protocol.errors import LocalProtocolError
from ktnchat.quickinit import quick_init
from ktnchat.service.outcome import Broadcast
from ktnchat.storage.base import StoredMessage

checked: List[str] = []


@dataclass(frozen=True)
class Plain:
    a: int
    b: str = "b"
    c: List[int] = field(default_factory=list)
    d: int = field(default=4, compare=False)

    def __post_init__(self) -> None:
        checked.append(self.b)


Quick = quick_init(
    dataclass(frozen=True)(
        type(
            "Quick",
            (),
            {
                "__annotations__": dict(Plain.__annotations__),
                "b": "b",
                "c": field(default_factory=list),
                "d": field(default=4, compare=False),
                "__post_init__": Plain.__post_init__,
            },
        )
    )
)


def test_the_quick_init_builds_what_the_dataclass_init_builds() -> None:
    for args, kwargs in [((1,), {}), ((1, "x"), {"d": 9}), ((), {"a": 2, "c": [5]})]:
        checked.clear()
        plain, quick = Plain(*args, **kwargs), Quick(*args, **kwargs)
        assert checked == [plain.b, quick.b]  # __post_init__ ran for both
        assert vars(plain) == vars(quick)
    one, two = Quick(1), Quick(1)
    assert one.c == [] and one.c is not two.c  # a fresh default per instance
    with pytest.raises(dataclasses.FrozenInstanceError):
        one.a = 3  # type: ignore[misc]
    with pytest.raises(TypeError):
        Quick()  # a required field is still required


def test_the_chat_classes_keep_their_checks_and_values() -> None:
    assert vars(Request("msg", "hi")) == {
        "word": "msg",
        "content": "hi",
        "edition": 2017,
        "alias": None,
        "stream": None,
    }
    assert StoredMessage(1, "lobby", "bob", "hi", 1.0) == StoredMessage(
        1, "lobby", "bob", "hi", 1.0, 7
    )
    assert Broadcast("lobby", Response("info", "x", "s", "t")).recipients is None
    with pytest.raises(LocalProtocolError):
        Response("message", "x", "s", "t", {"content": "shadow"})
    with pytest.raises(LocalProtocolError):
        Response("nosuchkind", "x", "s", "t")
    assert Response("info", "x", "s", "t").extra == {}


def test_what_it_cannot_do_it_refuses() -> None:
    @dataclass
    class Mutable:
        a: int

    with pytest.raises(TypeError):
        quick_init(Mutable)

    @dataclass(frozen=True)
    class WithInitVar:
        a: int
        b: InitVar[int] = 0

    with pytest.raises(TypeError):
        quick_init(WithInitVar)

    @dataclass(frozen=True)
    class NotInInit:
        a: int
        b: Any = field(default=0, init=False)

    with pytest.raises(TypeError):
        quick_init(NotInInit)


def test_a_message_made_by_the_shortcut_is_the_checked_message() -> None:
    made = Response.message("hi", "bob", "t", {"id": 3})
    checked_one = Response("message", "hi", "bob", "t", {"id": 3})
    assert made == checked_one and vars(made) == vars(checked_one)
    with pytest.raises(dataclasses.FrozenInstanceError):
        made.content = "changed"  # type: ignore[misc]
    for content, timestamp in [(None, "t"), (42, "t"), ("hi", 1.5)]:
        with pytest.raises(LocalProtocolError):
            Response.message(content, "bob", timestamp, {})  # type: ignore[arg-type]
        with pytest.raises(LocalProtocolError):
            Response("message", content, "bob", timestamp)
    with pytest.raises(LocalProtocolError):
        Response.message("hi", "bob", "t", {"sender": "mallory"})
