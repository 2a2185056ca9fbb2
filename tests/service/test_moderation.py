# Moderation: kick, mute, unmute, ban, unban, gban, gunban, ipban, ipunban, bans, remove,
# purge, mod, unmod, modlog; rank protection and the audit trail.
from __future__ import annotations

from typing import Any, Tuple

import pytest

from ktnchat.service import Session
from ktnchat.storage import Ban
from tests.service.fixtures import (
    Chat,
    audience,
    contents,
    delivered,
    events,
    kinds,
    only_error,
    only_info,
)

ROLES = " (roles count only when you log in with your password)"


@pytest.fixture
def chat() -> Chat:
    return Chat()


@pytest.fixture
def den(chat: Chat) -> Tuple[Session, Session, Session]:
    """olivia owns den, mike moderates it, bob (a plain user) is in it."""
    owner, mod = chat.owned_room("den")
    bob = chat.login("bob")
    chat.join(bob, "den")
    return owner, mod, bob


# --- who may send what ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("word", "rank"),
    [
        ("kick", "moderators"),
        ("mute", "moderators"),
        ("unmute", "moderators"),
        ("ban", "moderators"),
        ("unban", "moderators"),
        ("bans", "moderators"),
        ("remove", "moderators"),
        ("purge", "moderators"),
        ("mod", "owners"),
        ("unmod", "owners"),
        ("deleteroom", "owners"),
        ("gban", "admins"),
        ("gunban", "admins"),
        ("ipban", "admins"),
        ("ipunban", "admins"),
        ("modlog", "admins"),
    ],
)
def test_plain_users_are_refused(chat: Chat, den: Any, word: str, rank: str) -> None:
    _, _, bob = den
    assert only_error(chat.send(bob, word, "mike")) == f"'{word}' is for {rank} of den{ROLES}"
    assert chat.storage.list_bans() == []
    assert [e.action for e in chat.storage.list_audit(100)] == ["mod"]


@pytest.mark.parametrize("word", ["mod", "unmod", "deleteroom"])
def test_moderators_are_refused_owner_commands(chat: Chat, den: Any, word: str) -> None:
    _, mod, _ = den
    assert only_error(chat.send(mod, word, "den")) == f"'{word}' is for owners of den"


@pytest.mark.parametrize("word", ["gban", "gunban", "ipban", "ipunban", "modlog"])
def test_owners_are_refused_admin_commands(chat: Chat, den: Any, word: str) -> None:
    owner, _, _ = den
    assert only_error(chat.send(owner, word, "bob")) == f"'{word}' is for admins of den"
    assert chat.storage.list_bans() == []


def test_roles_are_per_room(chat: Chat, den: Any) -> None:
    _, mod, bob = den
    chat.send(mod, "leave")
    chat.send(bob, "leave")
    assert only_error(chat.send(mod, "kick", "bob")) == "'kick' is for moderators of lobby"
    assert bob.logged_in and bob.room == "lobby"


# --- kick --------------------------------------------------------------------------------


def test_kick_sends_the_user_back_to_the_lobby(chat: Chat, den: Any) -> None:
    owner, mod, bob = den
    carol = chat.login("carol")
    chat.say(carol, "lobby talk")
    outcome = chat.send(mod, "kick", "BOB spamming links")
    assert only_info(outcome).content == "Kicked BOB from den"
    told = delivered(outcome, bob)
    assert told[0].content == (
        "You were kicked from den by mike: spamming links; you are back in lobby"
    )
    assert told[0].extra == {"event": "kicked", "room": "den", "by": "mike"}
    assert [r.extra.get("event") for r in told[1:] if r.kind == "info"] == ["joined"]
    assert [contents(r) for r in told if r.kind == "history"] == [["lobby talk"]]
    assert bob.room == "lobby" and bob.logged_in
    assert audience(outcome, "kick") == {"olivia", "mike"}
    assert audience(outcome, "join") == {"carol"}
    [notice] = [r for r in delivered(outcome, owner) if r.extra.get("event") == "kick"]
    assert notice.content == "bob was kicked by mike: spamming links"
    # A kick is not a ban.
    chat.join(bob, "den")


def test_kick_from_the_lobby_logs_out(chat: Chat) -> None:
    root = chat.admin("root")
    bob, carol = chat.login("bob"), chat.login("carol")
    outcome = chat.send(root, "kick", "bob")
    [told] = delivered(outcome, bob)
    assert told.content == "You were kicked from lobby by root; you are logged out"
    assert not bob.logged_in and chat.service.presence.holder("bob") is None
    assert "leave" in events(outcome, carol) and "kick" in events(outcome, carol)
    assert kinds(chat.send(bob, "login", "bob")) == ["info", "history"]


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("nobody", "nobody is not in den"),
        ("carol", "carol is not in den"),  # online, but in the lobby
        ("", "Name a user: kick <user> [reason]"),
        (None, "Name a user: kick <user> [reason]"),
        ("bad!name", "Invalid username"),
    ],
)
def test_kick_refusals(chat: Chat, den: Any, content: Any, expected: str) -> None:
    _, mod, _ = den
    chat.login("carol")
    assert only_error(chat.send(mod, "kick", content)).startswith(expected)


# --- rank protection -----------------------------------------------------------------------


@pytest.mark.parametrize("word", ["kick", "ban", "mute", "purge"])
def test_a_moderator_cannot_act_on_the_owner_or_another_moderator(
    chat: Chat, den: Any, word: str
) -> None:
    owner, mod, _ = den
    chat.account("mia")
    chat.send(owner, "mod", "mia")
    mia = chat.member("mia")
    chat.join(mia, "den")
    assert only_error(chat.send(mod, word, "olivia")) == "olivia is owner here; you cannot do that"
    assert only_error(chat.send(mod, word, "MIA")) == "MIA is moderator here; you cannot do that"
    assert only_error(chat.send(mod, word, "mike")) == "mike is moderator here; you cannot do that"
    assert owner.room == mia.room == mod.room == "den"
    assert chat.storage.list_bans() == [] and chat.service.rooms["den"].mutes == {}


def test_the_owner_protection_holds_while_the_owner_is_offline(chat: Chat, den: Any) -> None:
    owner, mod, _ = den
    chat.send(owner, "logout")
    assert "olivia is owner here" in only_error(chat.send(mod, "ban", "olivia"))


def test_the_owner_acts_on_moderators_and_admins_on_owners(chat: Chat, den: Any) -> None:
    owner, mod, _ = den
    assert only_info(chat.send(owner, "kick", "mike")).content == "Kicked mike from den"
    root = chat.admin("root")
    chat.join(root, "den")
    assert only_info(chat.send(root, "kick", "olivia")).content == "Kicked olivia from den"
    assert owner.room == mod.room == "lobby"


def test_nobody_acts_on_an_admin(chat: Chat, den: Any) -> None:
    owner, _, _ = den
    root = chat.admin("root")
    chat.join(root, "den")
    assert only_error(chat.send(owner, "kick", "root")) == "root is admin here; you cannot do that"
    other = chat.admin("boss")
    assert "root is admin here" in only_error(chat.send(other, "gban", "root"))


# --- mute / unmute -------------------------------------------------------------------------


def test_a_muted_user_reads_but_does_not_send_in_that_room(chat: Chat, den: Any) -> None:
    owner, mod, bob = den
    outcome = chat.send(mod, "mute", "bob 5")
    assert outcome.replies == []
    told = delivered(outcome, bob)
    assert told[0].content == (
        "You are muted in den for 5 minutes by mike: you may read but not send"
    )
    assert told[0].extra == {"event": "muted", "room": "den", "by": "mike"}
    assert audience(outcome, "mute") == {"olivia", "mike", "bob"}
    chat.say(owner, "still talking")
    assert only_error(chat.send(bob, "msg", "hello?")) == "You are muted in den; message not sent"
    assert chat.history(bob) == ["still talking"]  # reading still works
    assert kinds(chat.send(bob, "names")) == ["info"]
    assert chat.send(bob, "sendto", "olivia psst").broadcasts  # private messages still go
    chat.send(bob, "leave")
    assert chat.say(bob, "the lobby is fine") > 0  # a mute is per room
    chat.join(bob, "den")
    chat.clock.advance(5 * 60 - 1)
    only_error(chat.send(bob, "msg", "now?"))
    chat.clock.advance(1)
    assert chat.say(bob, "free again") > 0


def test_mute_defaults_to_ten_minutes_and_zero_means_until_unmuted(chat: Chat, den: Any) -> None:
    _, mod, bob = den
    outcome = chat.send(mod, "mute", "bob")
    assert audience(outcome, "mute") == {"olivia", "mike", "bob"}
    chat.clock.advance(599)
    only_error(chat.send(bob, "msg", "x"))
    chat.clock.advance(1)
    assert chat.say(bob, "ok") > 0
    chat.send(mod, "mute", "bob 0")
    chat.clock.advance(10 * 365 * 86400)
    assert "muted in den" in only_error(chat.send(bob, "msg", "x"))
    outcome = chat.send(mod, "unmute", "BOB")
    [notice] = delivered(outcome, bob)
    assert notice.content == "BOB was unmuted by mike" and notice.extra["event"] == "unmute"
    assert chat.say(bob, "back") > 0


def test_mute_a_user_not_online_holds_when_they_come(chat: Chat, den: Any) -> None:
    _, mod, _ = den
    outcome = chat.send(mod, "mute", "Carol 10")
    assert audience(outcome, "mute") == {"olivia", "mike", "bob"}
    carol = chat.login("carol")
    chat.join(carol, "den")
    assert "muted in den" in only_error(chat.send(carol, "msg", "hi"))


@pytest.mark.parametrize("minutes", ["abc", "-1", "inf", "nan", "-inf"])
def test_mute_with_bad_minutes_is_refused(chat: Chat, den: Any, minutes: str) -> None:
    _, mod, bob = den
    text = only_error(chat.send(mod, "mute", f"bob {minutes}"))
    assert "minutes" in text
    assert chat.say(bob, "not muted") > 0


def test_unmute_someone_not_muted_is_refused(chat: Chat, den: Any) -> None:
    _, mod, _ = den
    assert only_error(chat.send(mod, "unmute", "bob")) == "bob is not muted in den"
    assert only_error(chat.send(mod, "unmute", "")).startswith("Name a user")


# --- room bans -----------------------------------------------------------------------------


def test_a_room_ban_sends_the_user_out_and_refuses_join(chat: Chat, den: Any) -> None:
    _, mod, bob = den
    outcome = chat.send(mod, "ban", "BOB rude")
    assert only_info(outcome).content == "Banned BOB from den"
    told = delivered(outcome, bob)
    assert told[0].content == "You are banned from den by mike: rude; you are back in lobby"
    assert bob.room == "lobby" and bob.logged_in
    assert audience(outcome, "ban") == {"olivia", "mike"}
    [ban] = chat.storage.list_bans()
    assert (ban.scope, ban.kind, ban.target, ban.by, ban.reason) == (
        "den",
        "name",
        "bob",
        "mike",
        "rude",
    )
    assert only_error(chat.send(bob, "join", "den")) == "You are banned from den: rude"
    # Another case of the name is the same name.
    chat.send(bob, "logout")
    chat.send(bob, "login", "BoB")
    assert only_error(chat.send(bob, "join", "DEN")) == "You are banned from den: rude"
    # unban lifts it.
    assert only_info(chat.send(mod, "unban", "bob")).content == "Lifted the ban of bob from den"
    assert chat.storage.list_bans() == []
    chat.join(bob, "den")


def test_a_ban_of_someone_elsewhere_keeps_them_out(chat: Chat, den: Any) -> None:
    _, mod, _ = den
    carol = chat.login("carol")
    outcome = chat.send(mod, "ban", "carol")
    assert delivered(outcome, carol) == [] and carol.room == "lobby"
    assert only_error(chat.send(carol, "join", "den")) == "You are banned from den"


def test_unban_someone_not_banned_is_refused(chat: Chat, den: Any) -> None:
    _, mod, _ = den
    assert only_error(chat.send(mod, "unban", "bob")) == "bob is not banned from den"


def test_a_lobby_ban_logs_out_and_refuses_login(chat: Chat) -> None:
    root = chat.admin("root")
    mallory, carol = chat.login("mallory"), chat.login("carol")
    outcome = chat.send(root, "ban", "mallory trolling")
    assert only_info(outcome).content == "Banned mallory from lobby"
    [told] = delivered(outcome, mallory)
    assert told.content == "You are banned from lobby by root: trolling; you are logged out"
    assert not mallory.logged_in
    assert "leave" in events(outcome, carol)
    for name in ("mallory", "MALLORY", "Mallory"):
        session = chat.connect()
        text = only_error(chat.send(session, "login", name))
        assert text == "You are banned from this server: trolling"
        assert not session.logged_in


def test_a_lobby_ban_also_keeps_out_a_user_who_was_in_another_room(chat: Chat) -> None:
    """A lobby ban is a ban from the chat (it refuses login), wherever the user is."""
    root = chat.admin("root")
    mallory = chat.login("mallory")
    chat.create(mallory, "hideout")
    outcome = chat.send(root, "ban", "mallory")
    assert "you are logged out" in delivered(outcome, mallory)[0].content
    assert not mallory.logged_in and mallory.room is None
    again = chat.connect()
    assert "banned" in only_error(chat.send(again, "login", "mallory"))


def test_leave_and_kick_never_bring_a_lobby_banned_user_back(chat: Chat) -> None:
    root = chat.admin("root")
    mallory = chat.login("mallory")
    chat.create(mallory, "hideout")
    chat.service.bans.add(  # banned from the lobby while elsewhere (e.g. after a restart)
        Ban("lobby", "name", "mallory", "root", "", chat.clock())
    )
    assert only_error(chat.send(mallory, "leave")) == "You are banned from lobby"
    assert mallory.room == "hideout"
    chat.send(root, "join", "hideout")
    outcome = chat.send(root, "kick", "mallory")
    assert "you are logged out" in delivered(outcome, mallory)[0].content
    assert not mallory.logged_in


# --- bans listing ----------------------------------------------------------------------------


def test_bans_lists_this_rooms_bans_and_admins_see_all(chat: Chat, den: Any) -> None:
    _, mod, _ = den
    info = only_info(chat.send(mod, "bans"))
    assert info.content == "No bans" and info.extra["bans"] == []
    chat.send(mod, "ban", "bob flooding")
    root = chat.admin("root")
    chat.send(root, "gban", "eve spam")
    chat.send(root, "ipban", "192.0.2.66")
    info = only_info(chat.send(mod, "bans"))
    assert info.content == "Bans:\nname bob in den by mike: flooding"
    assert info.extra["bans"] == [
        {"scope": "den", "kind": "name", "target": "bob", "by": "mike", "reason": "flooding"}
    ]
    listing = only_info(chat.send(root, "bans")).extra["bans"]
    assert [(b["scope"], b["kind"], b["target"]) for b in listing] == [
        ("server", "address", "192.0.2.66"),
        ("server", "name", "eve"),
        ("den", "name", "bob"),
    ]


# --- server-wide bans --------------------------------------------------------------------


def test_gban_disconnects_and_refuses_login_by_any_case(chat: Chat, den: Any) -> None:
    _, _, bob = den
    root = chat.admin("root")
    outcome = chat.send(root, "gban", "BOB ban evasion")
    assert only_info(outcome).content == "Banned BOB from the server"
    assert outcome.disconnect == [(bob, "You are banned from this server: ban evasion")]
    for name in ("bob", "BOB"):
        session = chat.connect()
        text = only_error(chat.send(session, "login", name))
        assert text == "You are banned from this server: ban evasion"
    assert only_info(chat.send(root, "gunban", "Bob")).content == (
        "Lifted the ban of Bob from the server"
    )
    chat.service.close_session(bob, "banned")
    chat.login("bob")


def test_gban_of_someone_offline_disconnects_nobody(chat: Chat) -> None:
    root = chat.admin("root")
    outcome = chat.send(root, "gban", "eve")
    assert outcome.disconnect == [] and kinds(outcome) == ["info"]
    assert "banned from this server" in only_error(chat.send(chat.connect(), "login", "eve"))


def test_gunban_someone_not_banned_is_refused(chat: Chat) -> None:
    root = chat.admin("root")
    assert only_error(chat.send(root, "gunban", "eve")) == "eve is not banned from the server"


def test_ipban_disconnects_that_hosts_sessions_and_refuses_its_logins(chat: Chat) -> None:
    root = chat.admin("root", host="192.0.2.1")
    first = chat.login("bad1", host="192.0.2.66")
    second = chat.login("bad2", host="192.0.2.66")
    other = chat.login("good", host="192.0.2.67")
    outcome = chat.send(root, "ipban", "192.0.2.66 botnet")
    assert only_info(outcome).content == "Banned address 192.0.2.66 (2 disconnected)"
    assert sorted(outcome.disconnect, key=lambda pair: pair[0].username) == [
        (first, "You are banned from this server: botnet"),
        (second, "You are banned from this server: botnet"),
    ]
    assert other not in [s for s, _ in outcome.disconnect]
    newcomer = chat.connect("192.0.2.66")
    assert only_error(chat.send(newcomer, "login", "fresh")) == (
        "You are banned from this server: botnet"
    )
    chat.login("fresh", host="192.0.2.68")
    assert only_info(chat.send(root, "ipunban", "192.0.2.66")).content == (
        "Lifted the ban of 192.0.2.66 from the server"
    )
    assert kinds(chat.send(newcomer, "login", "fresh2")) == ["info", "history"]


def test_ipban_does_not_disconnect_the_admin_who_sent_it(chat: Chat) -> None:
    root = chat.admin("root", host="192.0.2.66")
    outcome = chat.send(root, "ipban", "192.0.2.66")
    assert outcome.disconnect == []
    assert only_info(outcome).content == "Banned address 192.0.2.66 (0 disconnected)"


@pytest.mark.parametrize("word", ["ipban", "ipunban"])
def test_ipban_and_ipunban_need_an_address(chat: Chat, word: str) -> None:
    root = chat.admin("root")
    assert only_error(chat.send(root, word, "  ")).startswith(word)
    assert chat.storage.list_bans() == []


def test_ipunban_an_address_not_banned_is_refused(chat: Chat) -> None:
    root = chat.admin("root")
    assert only_error(chat.send(root, "ipunban", "192.0.2.9")) == (
        "192.0.2.9 is not banned from the server"
    )


# --- remove / purge ----------------------------------------------------------------------


def test_remove_deletes_a_message_from_every_later_history(chat: Chat, den: Any) -> None:
    owner, mod, bob = den
    keep = chat.say(owner, "keep me")
    doomed = chat.say(bob, "doomed")
    outcome = chat.send(mod, "remove", f" {doomed} ")
    assert outcome.replies == []
    assert audience(outcome, "removed") == {"olivia", "mike", "bob"}
    [notice] = delivered(outcome, bob)
    assert notice.content == "A message from bob was removed by mike"
    assert notice.extra == {"event": "removed", "deleted": [doomed], "by": "mike", "room": "den"}
    assert chat.storage.get_message(doomed) is None
    assert [m.id for m in chat.storage.recent_messages("den", 10)] == [keep]
    carol = chat.login("carol")
    assert contents(chat.join(carol, "den").replies[1]) == ["keep me"]
    assert only_error(chat.send(mod, "remove", str(doomed))) == f"No message {doomed}"


@pytest.mark.parametrize("content", [None, "", "abc", "-3", "1.5"])
def test_remove_needs_a_message_id(chat: Chat, den: Any, content: Any) -> None:
    _, mod, _ = den
    assert only_error(chat.send(mod, "remove", content)).startswith("remove <message id>")


def test_remove_an_unknown_message_is_refused(chat: Chat, den: Any) -> None:
    _, mod, _ = den
    assert only_error(chat.send(mod, "remove", "999")) == "No message 999"


def test_a_moderator_removes_only_messages_of_their_room(chat: Chat, den: Any) -> None:
    _, mod, _ = den
    carol = chat.login("carol")
    elsewhere = chat.say(carol, "lobby message")
    assert only_error(chat.send(mod, "remove", str(elsewhere))) == (
        "Only moderators of lobby may remove its messages"
    )
    assert chat.storage.get_message(elsewhere) is not None
    root = chat.admin("root")
    chat.join(root, "den")
    outcome = chat.send(root, "remove", str(elsewhere))  # admins: any room
    assert audience(outcome, "removed") == {"carol"}
    assert chat.storage.get_message(elsewhere) is None


def test_purge_removes_a_users_messages_in_this_room(chat: Chat, den: Any) -> None:
    owner, mod, bob = den
    ids = [chat.say(bob, f"spam {i}") for i in range(3)]
    keep = chat.say(owner, "hello")
    chat.send(bob, "leave")
    lobby_id = chat.say(bob, "lobby spam")
    outcome = chat.send(mod, "purge", "BOB")
    assert only_info(outcome).content == "Removed 3 message(s) of BOB in den"
    assert audience(outcome, "removed") == {"olivia", "mike"}
    [notice] = delivered(outcome, owner)
    assert notice.extra["deleted"] == ids
    assert [m.id for m in chat.storage.recent_messages("den", 10)] == [keep]
    assert chat.storage.get_message(lobby_id) is not None
    again = chat.send(mod, "purge", "bob")
    assert only_info(again).content == "Removed 0 message(s) of bob in den"
    assert again.broadcasts == []


def test_purge_all_is_for_admins(chat: Chat, den: Any) -> None:
    owner, mod, bob = den
    in_den = chat.say(bob, "spam here")
    chat.send(bob, "leave")
    in_lobby = chat.say(bob, "spam there")
    for actor in (mod, owner):
        text = only_error(chat.send(actor, "purge", "bob all"))
        assert text == "Only admins may purge a user's messages in every room"
    assert chat.storage.get_message(in_den) is not None
    root = chat.admin("root")
    outcome = chat.send(root, "purge", "bob ALL")
    assert only_info(outcome).content == "Removed 2 message(s) of bob in every room"
    assert audience(outcome, "removed") == {"olivia", "mike", "bob", "root"}
    for broadcast in outcome.broadcasts:
        assert broadcast.response.extra["deleted"] == [in_den, in_lobby]
    assert chat.storage.get_message(in_den) is None and chat.storage.get_message(in_lobby) is None


# --- mod / unmod -----------------------------------------------------------------------------


def test_mod_names_a_registered_moderator_who_then_has_the_role(chat: Chat, den: Any) -> None:
    owner, _, bob = den
    chat.account("Rita")
    rita = chat.member("rita")
    chat.join(rita, "den")
    assert "'kick' is for moderators" in only_error(chat.send(rita, "kick", "bob"))
    outcome = chat.send(owner, "mod", "RITA")
    assert outcome.replies == []
    [notice] = delivered(outcome, bob)
    assert notice.content == "Rita is now a moderator of den"
    assert notice.extra == {"event": "mod", "username": "Rita", "room": "den"}
    assert chat.storage.moderators("den") == {"mike", "rita"}
    assert only_info(chat.send(rita, "kick", "bob")).content == "Kicked bob from den"
    assert only_error(chat.send(owner, "mod", "rita")) == "Rita is a moderator of den already"
    info = only_info(chat.send(owner, "unmod", "rita"))
    assert info.content == "rita is no longer a moderator of den"
    assert chat.storage.moderators("den") == {"mike"}
    assert "'ban' is for moderators" in only_error(chat.send(rita, "ban", "bob"))
    assert only_error(chat.send(owner, "unmod", "rita")) == "rita is not a moderator of den"


def test_mod_refuses_unregistered_names(chat: Chat, den: Any) -> None:
    owner, _, _ = den
    text = only_error(chat.send(owner, "mod", "bob"))
    assert text.startswith("bob must register first")
    assert chat.storage.moderators("den") == {"mike"}


def test_an_admin_names_moderators_of_the_lobby(chat: Chat) -> None:
    root = chat.admin("root")
    chat.account("mike")
    assert chat.send(root, "mod", "mike").broadcasts
    mike = chat.member("mike")
    bob = chat.login("bob")
    assert only_info(chat.send(mike, "kick", "bob")).content == "Kicked bob from lobby"
    assert not bob.logged_in


# --- modlog and the audit trail ------------------------------------------------------------


def test_every_moderation_action_is_in_the_modlog(chat: Chat, den: Any) -> None:
    owner, mod, bob = den
    chat.account("rita")
    root = chat.admin("root")
    chat.join(root, "den")
    message_id = chat.say(bob, "spam")
    chat.clock.advance(1)
    steps = [
        (owner, "topic", "rules"),
        (mod, "mute", "bob 1"),
        (mod, "unmute", "bob"),
        (mod, "remove", str(message_id)),
        (mod, "purge", "bob"),
        (mod, "kick", "bob off-topic"),
        (mod, "ban", "bob rude"),
        (mod, "unban", "bob"),
        (owner, "mod", "rita"),
        (owner, "unmod", "rita"),
        (root, "gban", "eve"),
        (root, "gunban", "eve"),
        (root, "ipban", "192.0.2.66 bots"),
        (root, "ipunban", "192.0.2.66"),
        (owner, "deleteroom", "den"),
    ]
    for actor, word, content in steps:
        outcome = chat.send(actor, word, content)
        assert "error" not in kinds(outcome), (word, outcome)
    info = only_info(chat.send(root, "modlog", "200"))
    entries = info.extra["entries"]
    done = [(e["actor"], e["action"], e["target"], e["room"]) for e in reversed(entries)]
    assert done == [
        ("olivia", "mod", "mike", "den"),
        ("root", "admin", "root", ""),
        ("olivia", "topic", "den", "den"),
        ("mike", "mute", "bob", "den"),
        ("mike", "unmute", "bob", "den"),
        ("mike", "remove", str(message_id), "den"),
        ("mike", "purge", "bob", "den"),
        ("mike", "kick", "bob", "den"),
        ("mike", "ban", "bob", "den"),
        ("mike", "unban", "bob", "den"),
        ("olivia", "mod", "rita", "den"),
        ("olivia", "unmod", "rita", "den"),
        ("root", "gban", "eve", ""),
        ("root", "gunban", "eve", ""),
        ("root", "ipban", "192.0.2.66", ""),
        ("root", "ipunban", "192.0.2.66", ""),
        ("olivia", "deleteroom", "den", "den"),
    ]
    assert entries[0]["created"] == "2017-03-10 12:34:57"
    assert info.content.startswith("Moderation log:\n#")
    assert "olivia deleteroom den in den" in info.content.splitlines()[1]
    assert [e["detail"] for e in entries if e["action"] == "kick"] == ["off-topic"]


def test_modlog_count_and_newest_first(chat: Chat) -> None:
    root = chat.admin("root")
    for name in ("a", "b", "c"):
        chat.send(root, "gban", name)
    entries = only_info(chat.send(root, "modlog", "2")).extra["entries"]
    assert [e["target"] for e in entries] == ["c", "b"]
    entries = only_info(chat.send(root, "modlog", "junk")).extra["entries"]
    assert [e["target"] for e in entries] == ["c", "b", "a", "root"]


def test_refused_actions_leave_no_audit_entry(chat: Chat, den: Any) -> None:
    _, mod, bob = den
    before = len(chat.storage.list_audit(100))
    only_error(chat.send(mod, "kick", "olivia"))
    only_error(chat.send(bob, "ban", "mike"))
    only_error(chat.send(mod, "unmute", "bob"))
    assert len(chat.storage.list_audit(100)) == before
