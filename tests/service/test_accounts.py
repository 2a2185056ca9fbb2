# Accounts and privileges: register, login with a password, password, admin, attempt
# limiting; no privilege rests on a bare name; help by rank; aliases; needs_worker.
from __future__ import annotations

from typing import Any, List

import pytest

from ktnchat.protocol import Request
from ktnchat.service import ChatService
from ktnchat.storage import MemoryStorage
from tests.service.fixtures import (
    ADMIN_SECRET,
    PASSWORD,
    Chat,
    kinds,
    only_error,
    only_info,
)

NEW_PASSWORD = "n3w-passw0rd"


@pytest.fixture
def chat() -> Chat:
    return Chat()


def help_words(chat: Chat, session: Any) -> List[str]:
    """The request words `help` lists (each piece of a long help repeats the title)."""
    outcome = chat.send(session, "help")
    assert set(kinds(outcome)) == {"info"}
    lines = [line for r in outcome.replies for line in r.content.splitlines()]
    return [line.split()[0] for line in lines if not line.startswith("Requests you can")]


# --- register and login with the password -------------------------------------------------


def test_register_then_only_the_password_logs_in(chat: Chat) -> None:
    """One registration (a real hash) and the logins it allows or refuses."""
    alice = chat.login("Alice")
    info = only_info(chat.send(alice, "register", f"  {PASSWORD}  "))
    assert info.content == "Alice is registered: from now on log in with: login Alice <password>"
    assert info.extra == {"event": "registered", "username": "Alice"}
    assert alice.authenticated
    account = chat.storage.get_account("alice")
    assert account is not None and account.name == "Alice"
    assert PASSWORD not in account.password_hash
    assert only_error(chat.send(alice, "register", PASSWORD)) == "Alice is registered already"
    chat.send(alice, "logout")
    assert not alice.authenticated

    # A bare name, in any case, no longer gets in.
    for typed in ("Alice", "alice", "ALICE"):
        impostor = chat.connect()
        text = only_error(chat.send(impostor, "login", typed))
        assert text == f"{typed} is a registered name; log in with: login {typed} <password>"
        assert not impostor.logged_in
    impostor = chat.connect()
    assert only_error(chat.send(impostor, "login", "alice wrong-password")) == (
        "Wrong password for alice"
    )
    assert not impostor.logged_in

    # The password does, under any case of the name, with the registered display name.
    again = chat.connect()
    outcome = chat.send(again, "login", f"ALICE {PASSWORD}")
    assert kinds(outcome) == ["info", "history"]
    assert again.username == "Alice" and again.authenticated
    assert outcome.replies[0].extra["username"] == "Alice"


def test_a_registered_name_in_use_is_not_taken_over_by_its_password(chat: Chat) -> None:
    holder = chat.member("alice")
    other = chat.connect()
    assert only_error(chat.send(other, "login", f"alice {PASSWORD}")) == (
        "Username alice is taken; choose another"
    )
    assert chat.service.presence.holder("alice") is holder and not other.logged_in


def test_a_password_for_an_unregistered_name_is_refused(chat: Chat) -> None:
    session = chat.connect()
    text = only_error(chat.send(session, "login", "bob some-password"))
    assert "only for registered names" in text and not session.logged_in


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (None, "register needs a password"),
        ("", "register needs a password"),
        ("   ", "register needs a password"),
        ("short", "at least 8 characters"),
        ("has spaces inside", "spaces"),
        ("x" * 129, "at most 128 characters"),
        ("bell\x07-password", "control characters"),
    ],
)
def test_register_refusals(chat: Chat, content: Any, reason: str) -> None:
    alice = chat.login("alice")
    assert reason in only_error(chat.send(alice, "register", content))
    assert chat.storage.get_account("alice") is None and not alice.authenticated


def test_register_gives_the_creator_the_owner_rights_of_their_rooms(chat: Chat) -> None:
    alice = chat.login("alice")
    chat.create(alice, "games")
    assert "Only moderators" in only_error(chat.send(alice, "topic", "chess"))
    chat.send(alice, "register", PASSWORD)
    assert chat.send(alice, "topic", "chess").broadcasts
    assert chat.storage.get_room("games").topic == "chess"


# --- no privilege on a bare name -----------------------------------------------------------


def test_someone_using_an_unregistered_owners_name_gets_no_rights(chat: Chat) -> None:
    carol = chat.login("carol")
    chat.create(carol, "den")
    chat.send(carol, "logout")
    victim = chat.login("victim")
    chat.join(victim, "den")
    impostor = chat.login("CAROL")
    chat.join(impostor, "den")
    hint = " (roles count only when you log in with your password)"
    assert only_error(chat.send(impostor, "kick", "victim")) == (
        "'kick' is for moderators of den" + hint
    )
    assert only_error(chat.send(impostor, "mod", "victim")) == "'mod' is for owners of den" + hint
    assert only_error(chat.send(impostor, "deleteroom", "den")).startswith(
        "'deleteroom' is for owners of den"
    )
    assert "Only moderators" in only_error(chat.send(impostor, "topic", "hijacked"))
    assert chat.storage.get_room("den") is not None and victim.room == "den"
    assert "kick" not in help_words(chat, impostor)


def test_a_moderators_name_cannot_be_used_without_the_password(chat: Chat) -> None:
    _, mod = chat.owned_room("den")
    chat.send(mod, "logout")
    impostor = chat.connect()
    assert "is a registered name" in only_error(chat.send(impostor, "login", "mike"))
    assert "Wrong password" in only_error(chat.send(impostor, "login", "MIKE not-his-pass"))
    assert not impostor.logged_in


# --- attempt limiting ----------------------------------------------------------------------


def test_five_wrong_passwords_lock_the_address_for_a_minute(chat: Chat) -> None:
    chat.account("alice")
    host = "192.0.2.7"
    for _ in range(5):
        attacker = chat.connect(host)
        assert "Wrong password" in only_error(chat.send(attacker, "login", "alice guess-guess"))
    locked = chat.connect(host)
    text = only_error(chat.send(locked, "login", f"alice {PASSWORD}"))  # even the right one
    assert text == "Too many failed attempts; wait a minute and try again"
    assert not locked.logged_in
    # Other addresses are not affected; the lock ends after the window.
    chat.member("alice", host="192.0.2.8")
    chat.send(chat.service.presence.holder("alice"), "logout")
    chat.clock.advance(60)
    assert kinds(chat.send(locked, "login", f"alice {PASSWORD}")) == ["info", "history"]


# --- password ----------------------------------------------------------------------------


def test_password_change(chat: Chat) -> None:
    alice = chat.member("alice")
    assert only_error(chat.send(alice, "password", "wrong-old-pass " + NEW_PASSWORD)) == (
        "Wrong password; password not changed"
    )
    assert "Password not accepted" in only_error(chat.send(alice, "password", f"{PASSWORD} short"))
    assert only_info(chat.send(alice, "password", f"{PASSWORD} {NEW_PASSWORD}")).content == (
        "Password changed"
    )
    chat.send(alice, "logout")
    session = chat.connect()
    assert "Wrong password" in only_error(chat.send(session, "login", f"alice {PASSWORD}"))
    assert kinds(chat.send(session, "login", f"alice {NEW_PASSWORD}")) == ["info", "history"]


@pytest.mark.parametrize("content", [None, "", "only-one-word"])
def test_password_needs_old_and_new(chat: Chat, content: Any) -> None:
    alice = chat.login("alice")
    assert "password <old> <new>" in only_error(chat.send(alice, "password", content))


def test_password_is_refused_without_a_password_login(chat: Chat) -> None:
    bob = chat.login("bob")
    assert only_error(chat.send(bob, "password", f"{PASSWORD} {NEW_PASSWORD}")) == (
        "Log in with your password first (login <name> <password>)"
    )


def test_wrong_old_passwords_count_towards_the_attempt_limit(chat: Chat) -> None:
    alice = chat.member("alice")
    for _ in range(5):
        assert "Wrong password" in only_error(
            chat.send(alice, "password", "bad-old-pass " + NEW_PASSWORD)
        )
    text = only_error(chat.send(alice, "password", f"{PASSWORD} {NEW_PASSWORD}"))
    assert text.startswith("Too many failed attempts")


# --- admin -------------------------------------------------------------------------------


def test_the_admin_secret_makes_an_admin_for_this_session_only(chat: Chat) -> None:
    root = chat.login("root")
    info = only_info(chat.send(root, "admin", f"  {ADMIN_SECRET} "))
    assert info.content == "You are a server admin for this session"
    assert root.admin
    [entry] = chat.storage.list_audit(10)
    assert (entry.actor, entry.action) == ("root", "admin")
    chat.send(root, "logout")
    assert not root.admin
    chat.send(root, "login", "root2")
    assert "'modlog' is for admins" in only_error(chat.send(root, "modlog"))


@pytest.mark.parametrize("given", [None, "", "wrong", ADMIN_SECRET.upper(), ADMIN_SECRET + "x"])
def test_a_wrong_admin_secret_is_refused(chat: Chat, given: Any) -> None:
    bob = chat.login("bob")
    assert only_error(chat.send(bob, "admin", given)) == "That is not the admin secret"
    assert not bob.admin
    assert chat.storage.list_audit(10) == []


@pytest.mark.parametrize("given", ["", "None", "anything"])
def test_no_admin_without_a_configured_secret(given: str) -> None:
    chat = Chat(admin_secret=None)
    bob = chat.login("bob")
    assert only_error(chat.send(bob, "admin", given)) == "That is not the admin secret"
    assert not bob.admin


def test_five_wrong_admin_secrets_lock_the_address(chat: Chat) -> None:
    bob = chat.login("bob", host="192.0.2.9")
    for _ in range(5):
        only_error(chat.send(bob, "admin", "guess"))
    assert only_error(chat.send(bob, "admin", ADMIN_SECRET)).startswith("Too many failed")
    assert not bob.admin
    other = chat.login("carol", host="192.0.2.10")
    assert chat.send(other, "admin", ADMIN_SECRET).replies[0].kind == "info"
    chat.clock.advance(60)
    assert only_info(chat.send(bob, "admin", ADMIN_SECRET)).extra["event"] == "admin"


# --- help by rank ------------------------------------------------------------------------

MODERATION = ["kick", "mute", "unmute", "ban", "unban", "bans", "remove", "purge"]
OWNING = ["mod", "unmod", "deleteroom"]
ADMINS = ["gban", "gunban", "ipban", "ipunban", "modlog"]
# fmt: off
EVERYONE = ["login", "logout", "msg", "names", "history", "help", "who", "sendto", "stream",
            "rooms", "join", "leave", "create", "topic", "register", "password", "admin"]
# fmt: on


def test_help_before_login_lists_only_what_works_before_login(chat: Chat) -> None:
    assert help_words(chat, chat.connect()) == ["login", "help", "who", "stream"]


def test_help_lists_moderation_commands_only_to_those_who_may_use_them(chat: Chat) -> None:
    owner, mod = chat.owned_room("den")
    bob = chat.login("bob")
    chat.join(bob, "den")
    root = chat.admin("root")
    assert help_words(chat, bob) == EVERYONE
    assert help_words(chat, mod) == EVERYONE + MODERATION
    assert set(help_words(chat, owner)) == set(EVERYONE + MODERATION + OWNING)
    assert set(help_words(chat, root)) == set(EVERYONE + MODERATION + OWNING + ADMINS)
    # Roles are per room: the moderator of den is a plain user in the lobby.
    chat.send(mod, "leave")
    assert help_words(chat, mod) == EVERYONE


# --- aliases -----------------------------------------------------------------------------


@pytest.mark.parametrize("alias", ["users", "listusers", "list"])
def test_aliases_of_names(chat: Chat, alias: str) -> None:
    alice = chat.login("alice")
    chat.login("bob")
    [info] = chat.send(alice, alias, "junk").replies
    assert info.kind == "info" and info.extra == {"names": ["alice", "bob"], "room": "lobby"}
    text = only_error(chat.send(chat.connect(), alias))
    assert text.startswith("You must log in before 'names'")


# --- needs_worker ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("word", "content", "expected"),
    [
        ("register", PASSWORD, True),
        ("password", f"{PASSWORD} {NEW_PASSWORD}", True),
        ("login", f"alice {PASSWORD}", True),
        ("login", "alice", False),
        ("login", None, False),
        ("msg", "hi", False),
        ("join", "games", False),
        ("users", None, False),
        ("nonsense", "x", False),
    ],
)
def test_needs_worker_with_memory_storage(word: str, content: Any, expected: bool) -> None:
    service = ChatService(MemoryStorage())
    assert service.needs_worker(Request(word, content)) is expected


class BlockingStorage(MemoryStorage):
    """Stands for a store whose calls may block (SQLite, MongoDB)."""

    INLINE_SAFE = False


@pytest.mark.parametrize(
    ("word", "content", "expected"),
    [
        ("login", "alice", True),
        ("msg", "hi", True),
        ("kick", "bob", True),
        ("names", None, False),
        ("help", None, False),
        ("sendto", "bob hi", False),
    ],
)
def test_needs_worker_with_a_store_that_may_block(word: str, content: Any, expected: bool) -> None:
    service = ChatService(BlockingStorage())
    assert service.needs_worker(Request(word, content)) is expected
