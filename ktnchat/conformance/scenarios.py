# The conformance dialogues as data: what to send to a server (or type into a client), what
# must come back, and which seed rule each dialogue checks. No I/O here.
#
# Rules:
# - A Scenario is a list of Steps run by server_checks.py (and by our end-to-end tests);
#   a ClientCheck is a list of Steps run by client_checks.py against a scripted fake server.
# - Templates hold placeholders replaced at run time: "{a}", "{b}", ... are unique usernames
#   (letters and digits, distinct per run), "{t1}", "{t2}", ... unique tokens, "{big}" an
#   oversized text. Nothing else in a template is interpreted.
# - Each scenario is independent: its own connections and names. A failing step ends it;
#   its status is the step's level (FAIL for the seed's strict rules, WARN for robustness).
# - Quotes are verbatim from the seeds: 2017 = shared/seeds/001_5e28b4a67be0346d.txt,
#   2014 = shared/seeds/000_0052e0793e705b9c.txt.
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple, Union

from ktnchat.conformance.report import Rule, Status

SEED_2017 = "001_5e28b4a67be0346d"
SEED_2014 = "000_0052e0793e705b9c"
EDITIONS = ("2017", "2014")


def r17(quote: str) -> Rule:
    return Rule("2017", SEED_2017, quote)


def r14(quote: str) -> Rule:
    return Rule("2014", SEED_2014, quote)


# --- the seed rules quoted -----------------------------------------------------------------

R_INTEROP = r17(
    "your client must communicate with other people's servers, and other students' clients "
    "must be able to communicate with your server"
)
R_ENVELOPE = r17(
    "The server should handle all requests and send responses back to the client always "
    "(i.e. all messages from the server to the client) on the following format: "
    "{'timestamp': <timestampt>, 'sender': <username>, 'response': <response>, "
    "'content': <content>} ... The different types of responses are: error, info, message "
    "and history."
)
R_TIMESTAMP = r17(
    "The timestamp is the moment in which the server generates the response, it must be a string."
)
R_CHARS = r17(
    "the server must check that the username only contains characters that are the letters "
    "A-Z, a-z and numbers 0-9."
)
R_UNIQUE = r14(
    "A username must be unique, meaning that it must not be already in use by another "
    "logged-in user."
)
R_BEFORE_LOGIN = r17(
    "the only requests the server will accept when the client is not logged in are login and "
    "help. If the client is not logged in and sends an illegal request, the server must send "
    "back an error response."
)
R_HELP = r17(
    "help sends a request to the server to receive a help text containing all requests "
    "supported by the server."
)
R_HISTORY = r17(
    "if the login request is successful, the client should receive the chat history, so that "
    "the newly logged in user can see what have been written in the chat in the time before "
    "logging in."
)
R_HISTORY_FORMAT = r17(
    "History is a list of all the message responses that the server has previously issued. "
    "The sender is the server. The content is a list that contains all the message responses "
    "(as JSON objects) that the sender has previously sent."
)
R_BROADCAST = r17(
    "This response is broadcasted to all the connected clients, including the one who "
    "originated the message."
)
R_SENDER = r17("The sender is the username of the client who originated the message.")
R_NAMES = r17(
    "names should send a request to list all the usernames currently connected to the server."
)
R_LOGOUT = r17("logout sends a request to log out and disconnect from the server.")
R_RESPOND = r17(
    "After the server has performed the corresponding actions, it must send a response back "
    "to the client."
)
R_SEVERAL = r17("The server must be able to handle several clients.")

C_FORMAT = r17(
    "The payload from the client to the server (i.e. all messages from the client to the "
    "server) must be in the following format: {'request': <request>, 'content': <content>}"
)
C_NONE = r17("If the request does not require any input, the content should contain None.")
C_PRESENT = r17(
    "Additionally, the client must receive the server responses (the format is defined in the "
    "next subsection) and present them to the client."
)
C_HISTORY = r17(
    "When a client handles a history response, several JSON decodings are required: the first "
    "one is for the history response itself. Then each of the elements of the list in "
    "'content' are also a JSON object"
)

R14_CHARS = r14("A username can only contain alphanumerical characters and underscores")
R14_LOGIN_OK = r14(
    "When logging in successfully, the server should return the username, as well as the "
    "message backlog ... {'response': 'login', 'username': <username>, 'messages': "
    "[<messages>]}"
)
R14_INVALID = r14("{'response': 'login', 'error': 'Invalid username!', 'username': <username>}")
R14_TAKEN = r14("{'response': 'login', 'error': 'Name already taken!', 'username': <username>")
R14_BROADCAST = r14(
    "The message is sent from a logged-in client, and then broadcasted from the server to all "
    "the logged-in clients ... {'response': 'message', 'message': <themessage>}"
)
R14_NOT_LOGGED_IN = r14("{'response': 'message', 'error': 'You are not logged in!'}")
R14_LOGOUT = r14("{'response': 'logout', 'username': <username>}")
R14_LOGOUT_ERROR = r14("{'response': 'logout', 'error': 'Not logged in!', 'username': <username>}")
R14_SEVERAL = r14(
    "The server must (evidently) be able to handle multiple connected clients at once."
)


# --- matching what arrives -----------------------------------------------------------------


@dataclass(frozen=True)
class Match:
    """A predicate on one received JSON value (all given conditions must hold).

    fields: key -> value, compared exactly (templates substituted).
    has / lacks: keys that must be present / absent.
    not_fields: key -> value that must NOT be the value.
    text: substrings that must all occur in the value's compact JSON text.
    string_of: keys whose value must be a string.
    any_of: alternatives; when given, at least one must match (in addition to the rest).
    """

    fields: Tuple[Tuple[str, Any], ...] = ()
    has: Tuple[str, ...] = ()
    lacks: Tuple[str, ...] = ()
    not_fields: Tuple[Tuple[str, Any], ...] = ()
    text: Tuple[str, ...] = ()
    string_of: Tuple[str, ...] = ()
    any_of: Tuple[Match, ...] = ()


def m(
    *,
    text: Tuple[str, ...] = (),
    has: Tuple[str, ...] = (),
    lacks: Tuple[str, ...] = (),
    not_fields: Optional[Dict[str, Any]] = None,
    string_of: Tuple[str, ...] = (),
    any_of: Tuple[Match, ...] = (),
    **fields: Any,
) -> Match:
    return Match(
        tuple(fields.items()),
        has,
        lacks,
        tuple((not_fields or {}).items()),
        text,
        string_of,
        any_of,
    )


# --- steps ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Connect:
    """Open a fresh TCP connection named `who`."""

    who: str


@dataclass(frozen=True)
class Send:
    """Send one JSON value (a template) as one segment."""

    who: str
    value: Any


@dataclass(frozen=True)
class SendRaw:
    """Send text parts (templates), each part its own segment, `gap` seconds apart."""

    who: str
    parts: Tuple[str, ...]
    gap: float = 0.3


@dataclass(frozen=True)
class Login:
    """Log `who` in as `name` (default: its own name) and wait until the answer settles."""

    who: str
    name: str = ""


@dataclass(frozen=True)
class LoginEventually:
    """Retry logging `who` in as `name` until accepted (for names freed asynchronously)."""

    who: str
    name: str
    what: str
    level: Optional[Status] = None


@dataclass(frozen=True)
class Expect:
    """The next value matching `match` must arrive on `who` within the timeout.

    eof_ok: the server closing the connection instead also passes.
    same: judge the value the previous Expect on `who` matched, without waiting.
    """

    who: str
    match: Match
    what: str
    eof_ok: bool = False
    level: Optional[Status] = None
    same: bool = False


@dataclass(frozen=True)
class ExpectNot:
    """No value matching `match` may arrive on `who` within the quiet period."""

    who: str
    match: Match
    what: str
    level: Optional[Status] = None


@dataclass(frozen=True)
class ExpectHistory:
    """After `who`'s login: the earlier messages (token, sender) arrive, as a history
    response (any known encoding) or replayed as ordinary message responses."""

    who: str
    messages: Tuple[Tuple[str, str], ...]


@dataclass(frozen=True)
class CheckAll:
    """Every value received on `who` so far passes `check` ("timestamps" or "envelope")."""

    who: str
    check: str


@dataclass(frozen=True)
class Close:
    """Close `who` gracefully (FIN)."""

    who: str


@dataclass(frozen=True)
class Abort:
    """Close `who` abruptly (RST, as a crashed or killed client)."""

    who: str


Step = Union[
    Connect, Send, SendRaw, Login, LoginEventually, Expect, ExpectNot, ExpectHistory, CheckAll,
    Close, Abort,
]  # fmt: skip


@dataclass(frozen=True)
class Scenario:
    """One independent dialogue checking one requirement."""

    check_id: str
    title: str
    edition: str
    level: Status
    rule: Rule
    steps: Tuple[Step, ...]
    names: Tuple[str, ...] = ("a", "b", "c", "d")


# --- 2017 server dialogues -----------------------------------------------------------------


def _req(word: str, content: Any = None) -> Dict[str, Any]:
    return {"request": word, "content": content}


def _login17(who: str, name: str = "") -> Dict[str, Any]:
    return _req("login", "{%s}" % (name or who))


ERROR = m(response="error")
NOT_ERROR = m(not_fields={"response": "error"})


def _msg_from(token: str) -> Match:
    return m(response="message", content=token)


def _scenarios_2017() -> List[Scenario]:
    S, F, W = Scenario, Status.FAIL, Status.WARN
    out = [
        S(
            "login.valid",
            "login with a valid name is accepted",
            "2017",
            F,
            R_HISTORY,
            (
                Connect("a"),
                Login("a"),
            ),
        ),
        S(
            "login.invalid-chars",
            "login with '!' and '?' in the name is refused",
            "2017",
            F,
            R_CHARS,
            (
                Connect("a"),
                Send("a", _req("login", "{a}!?")),
                Expect("a", ERROR, "an error response"),
            ),
        ),
        S(
            "login.underscore",
            "login with '_' in the name is refused (2017: A-Z a-z 0-9 only)",
            "2017",
            F,
            R_CHARS,
            (
                Connect("a"),
                Send("a", _req("login", "{a}_x")),
                Expect("a", ERROR, "an error response"),
            ),
        ),
        S(
            "login.taken",
            "login with a name in use is refused",
            "2017",
            F,
            R_UNIQUE,
            (
                Connect("a"),
                Login("a"),
                Connect("b"),
                Send("b", _login17("b", "a")),
                Expect("b", ERROR, "an error response"),
            ),
        ),
        S(
            "login.twice",
            "a second login on a logged-in connection is answered",
            "2017",
            W,
            R_RESPOND,
            (
                Connect("a"),
                Login("a"),
                Send("a", _login17("a", "b")),
                Expect("a", m(has=("response",)), "any response to the second login"),
                Send("a", _req("help")),
                Expect("a", m(response="info"), "the connection still works (help answered)"),
            ),
        ),
        S(
            "help.before-login",
            "help is answered before login",
            "2017",
            F,
            R_BEFORE_LOGIN,
            (
                Connect("a"),
                Send("a", _req("help")),
                Expect("a", m(response="info"), "an info response with the help text"),
            ),
        ),
    ]
    for word, content in (("msg", "{t1}"), ("names", None), ("logout", None)):
        steps: Tuple[Step, ...] = (
            Connect("a"),
            Send("a", _req(word, content)),
            Expect("a", ERROR, f"an error response to {word} before login"),
        )
        if word == "msg":
            steps = (
                Connect("b"),
                Login("b"),
                *steps,
                ExpectNot("b", m(text=("{t1}",)), "the message must not be delivered"),
            )
        out.append(
            S(
                f"before-login.{word}",
                f"{word} before login gets an error",
                "2017",
                F,
                R_BEFORE_LOGIN,
                steps,
            )
        )
    out += [
        S("msg.broadcast", "msg reaches the other logged-in users", "2017", F, R_BROADCAST, (
            Connect("a"), Login("a"), Connect("b"), Login("b"),
            Send("a", _req("msg", "{t1}")),
            Expect("b", _msg_from("{t1}"), "a message response with the text on the other user"),
        )),
        S("msg.echo", "msg is echoed to its sender", "2017", F, R_BROADCAST, (
            Connect("a"), Login("a"), Send("a", _req("msg", "{t1}")),
            Expect("a", _msg_from("{t1}"), "a message response with the text on the sender"),
        )),
        S("msg.sender", "a message's sender is the username of who sent it", "2017", F, R_SENDER, (
            Connect("a"), Login("a"), Connect("b"), Login("b"),
            Send("a", _req("msg", "{t1}")),
            Expect("b", m(response="message", content="{t1}", sender="{a}"),
                   "a message response with sender = the sender's name"),
        )),
        S("names", "names lists the users logged in", "2017", F, R_NAMES, (
            Connect("a"), Login("a"), Connect("b"), Login("b"), Send("a", _req("names")),
            Expect("a", m(not_fields={"response": "error"}, text=("{a}", "{b}")),
                   "an answer naming both users"),
        )),
        # We never say `stream on` (a ktnchat extension): this judges what naive clients get.
        S("history.on-login", "login brings the earlier messages (history or replayed)", "2017",
          F, R_HISTORY_FORMAT, (
            # Two senders, each msg followed by names: one request at a time on a connection.
            # The names answer (not an echo, which holds the name too) says the msg is done.
            Connect("a"), Login("a"), Connect("c"), Login("c"),
            Send("a", _req("msg", "{t1}")), Send("a", _req("names")),
            Expect("a", m(not_fields={"response": "message"}, text=("{a}",)),
                   "names (the msg is done)"),
            Send("c", _req("msg", "{t2}")), Send("c", _req("names")),
            Expect("c", m(not_fields={"response": "message"}, text=("{c}",)),
                   "names (the msg is done)"),
            Connect("b"), Send("b", _login17("b")),
            ExpectHistory("b", (("{t1}", "{a}"), ("{t2}", "{c}"))),
            Send("a", _req("msg", "{t3}")),
            Expect("b", _msg_from("{t3}"), "a live message after the earlier ones"),
        )),
        S("logout.answered", "logout is answered (or the connection closed)", "2017", F,
          R_RESPOND, (
            Connect("a"), Login("a"), Send("a", _req("logout")),
            Expect("a", NOT_ERROR, "a response to logout (or the connection closed)",
                   eof_ok=True),
        )),
        S("logout.relogin", "after logout the name is free to log in again", "2017", F, R_LOGOUT, (
            Connect("a"), Login("a"), Send("a", _req("logout")),
            Expect("a", NOT_ERROR, "a response to logout", eof_ok=True),
            Connect("c"), LoginEventually("c", "a", "a new login with the name accepted"),
        )),
        S("crash.delivery", "a client vanishing (RST) does not stop delivery to others", "2017",
          F, R_SEVERAL, (
            Connect("a"), Login("a"), Connect("b"), Login("b"), Connect("c"), Login("c"),
            Abort("c"), Send("a", _req("msg", "{t1}")),
            Expect("b", _msg_from("{t1}"), "the message on another user after the crash"),
            Send("b", _req("msg", "{t2}")),
            Expect("a", _msg_from("{t2}"), "a later message still delivered"),
        )),
        S("crash.name-freed", "a client vanishing (RST) does not keep its name taken", "2017", F,
          R_UNIQUE, (
            Connect("c"), Login("c"), Abort("c"),
            Connect("d"), LoginEventually("d", "c", "a new login with the crashed user's name"),
        )),
        S("framing.two-in-one", "two requests in one TCP segment are both served", "2017", W,
          R_INTEROP, (
            Connect("a"), Login("a"), Connect("b"), Login("b"),
            SendRaw("a", ('{"request": "msg", "content": "{t1}"}'
                          '{"request": "msg", "content": "{t2}"}',)),
            Expect("b", _msg_from("{t1}"), "the first message delivered"),
            Expect("b", _msg_from("{t2}"), "the second message delivered"),
        )),
        S("framing.split", "one request split across TCP segments is served", "2017", W,
          R_INTEROP, (
            Connect("a"), Login("a"), Connect("b"), Login("b"),
            SendRaw("a", ('{"request": "msg", "con', 'tent": "{t1}"}')),
            Expect("b", _msg_from("{t1}"), "the message delivered"),
        )),
        S("framing.newline", "a request ending in a newline is served", "2017", W, R_INTEROP, (
            Connect("a"), Login("a"), Connect("b"), Login("b"),
            SendRaw("a", ('{"request": "msg", "content": "{t1}"}\n',)),
            Expect("b", _msg_from("{t1}"), "the message delivered"),
            Send("a", _req("msg", "{t2}")),
            Expect("b", _msg_from("{t2}"), "the next request served too"),
        )),
        S("robust.invalid-json", "invalid JSON gets an error and the connection keeps working",
          "2017", W, R_INTEROP, (
            Connect("a"), Login("a"), Connect("b"), Login("b"),
            SendRaw("a", ('{"request": "msg", "content": }',)),
            Expect("a", ERROR, "an error response"),
            Send("a", _req("msg", "{t1}")),
            Expect("b", _msg_from("{t1}"), "the next request served (delivered)"),
        )),
        S("robust.unknown-request", "an unknown request gets an error", "2017", W, R_RESPOND, (
            Connect("a"), Login("a"), Connect("b"), Login("b"),
            Send("a", _req("frobnicate", "{t2}")),
            Expect("a", ERROR, "an error response"),
            Send("a", _req("msg", "{t1}")),
            Expect("b", _msg_from("{t1}"), "the next request served (delivered)"),
        )),
        S("robust.oversized", "an oversized msg (~70 kB) does not stop the server serving others",
          "2017", W, R_INTEROP, (
            Connect("a"), Login("a"), Connect("b"), Login("b"),
            Send("a", _req("msg", "{big}")),
            Connect("c"), Login("c"), Send("b", _req("msg", "{t2}")),
            Expect("c", _msg_from("{t2}"), "the server still serves other users"),
        )),
        S("envelope", "every response has timestamp, sender, response, content; "
          "response is error/info/message/history", "2017", F, R_ENVELOPE, (
            Connect("a"), Send("a", _req("help")), Expect("a", m(has=("response",)), "help"),
            Login("a"), Connect("b"), Login("b"), Send("b", _req("msg", "{t1}")),
            Expect("a", _msg_from("{t1}"), "a message"),
            Send("a", _req("names")), Expect("a", m(text=("{a}",)), "names"),
            Send("a", _req("login", "{a}")), Expect("a", m(has=("response",)), "2nd login"),
            CheckAll("a", "envelope"),
        )),
        S("timestamps", "every timestamp is a string (history entries too)", "2017", F,
          R_TIMESTAMP, (
            Connect("a"), Login("a"), Connect("c"), Login("c"), Send("c", _req("msg", "{t1}")),
            Expect("a", _msg_from("{t1}"), "a message"),
            Connect("b"), Login("b"), Send("c", _req("msg", "{t2}")),
            Expect("b", _msg_from("{t2}"), "a message"), Send("b", _req("names")),
            Expect("b", m(text=("{b}",)), "names"), Send("b", _req("help")),
            Expect("b", m(has=("response",)), "help"),
            CheckAll("a", "timestamps"), CheckAll("b", "timestamps"),
        )),
    ]  # fmt: skip
    return out


# --- 2014 server dialogues -----------------------------------------------------------------


def _login14(who: str, name: str = "") -> Dict[str, Any]:
    return {"request": "login", "username": "{%s}" % (name or who)}


def _msg14(text: str) -> Dict[str, Any]:
    return {"request": "message", "message": text}


LOGOUT14 = {"request": "logout"}


def _echo14(token: str) -> Match:
    # The seed shows {'response': 'message', 'message': <themessage>} and suggests the text
    # may be formatted "<username> said @ <timestamp>: <message>": either form passes.
    return m(response="message", has=("message",), lacks=("error",), text=(token,))


def _scenarios_2014() -> List[Scenario]:
    S, F, W = Scenario, Status.FAIL, Status.WARN
    ok = m(response="login", username="{a}", has=("messages",), lacks=("error",))
    return [
        S("login.valid", "login answers with the username and the message backlog", "2014", F,
          R14_LOGIN_OK, (
            Connect("a"), Send("a", _login14("a")),
            Expect("a", ok, "{'response': 'login', 'username': <name>, 'messages': [...]}"),
        )),
        S("login.invalid-chars", "login with '!' and '?' in the name is refused", "2014", F,
          R14_INVALID, (
            Connect("a"), Send("a", {"request": "login", "username": "{a}!?"}),
            Expect("a", m(response="login", has=("error",)), "a login response with an error"),
            Expect("a", m(response="login", error="Invalid username!"),
                   "the error text 'Invalid username!'", level=Status.WARN, same=True),
        )),
        S("login.underscore", "login with '_' in the name is accepted (2014)", "2014", F,
          R14_CHARS, (
            Connect("a"), Send("a", {"request": "login", "username": "{a}_x"}),
            Expect("a", m(response="login", username="{a}_x", lacks=("error",)),
                   "a login response without error"),
        )),
        S("login.taken", "login with a name in use is refused", "2014", F, R14_TAKEN, (
            Connect("a"), Login("a"), Connect("b"), Send("b", _login14("b", "a")),
            Expect("b", m(response="login", has=("error",)), "a login response with an error"),
            Expect("b", m(response="login", error="Name already taken!"),
                   "the error text 'Name already taken!'", level=Status.WARN, same=True),
        )),
        S("message.before-login", "message before login gets the error", "2014", F,
          R14_NOT_LOGGED_IN, (
            Connect("b"), Login("b"), Connect("a"), Send("a", _msg14("{t1}")),
            Expect("a", m(response="message", has=("error",)), "a message response with an error"),
            ExpectNot("b", m(text=("{t1}",)), "the message must not be delivered"),
        )),
        S("logout.before-login", "logout before login gets the error", "2014", F,
          R14_LOGOUT_ERROR, (
            # A bare {"request": "logout"} is also a valid 2017 request; speak a 2014-only
            # request first, as a real 2014 client does, so a server serving both editions
            # knows which one this connection speaks.
            Connect("a"), Send("a", _msg14("{t1}")),
            Expect("a", m(response="message", has=("error",)), "the not-logged-in error"),
            Send("a", LOGOUT14),
            Expect("a", m(response="logout", has=("error",)), "a logout response with an error"),
        )),
        S("message.broadcast", "message reaches the other logged-in users", "2014", F,
          R14_BROADCAST, (
            Connect("a"), Login("a"), Connect("b"), Login("b"), Send("a", _msg14("{t1}")),
            Expect("b", _echo14("{t1}"), "{'response': 'message', 'message': <text>}"),
        )),
        S("message.echo", "message is sent back to its sender", "2014", F, R14_BROADCAST, (
            Connect("a"), Login("a"), Send("a", _msg14("{t1}")),
            Expect("a", _echo14("{t1}"), "{'response': 'message', 'message': <text>}"),
        )),
        S("login.backlog", "login's messages hold the earlier messages", "2014", F, R14_LOGIN_OK, (
            Connect("a"), Login("a"), Connect("c"), Login("c"), Send("a", _msg14("{t1}")),
            Expect("c", _echo14("{t1}"), "the message delivered"),
            Connect("b"), Send("b", _login14("b")),
            Expect("b", m(response="login", username="{b}", text=("{t1}",)),
                   "the login response's messages holding the earlier message"),
        )),
        S("logout", "logout answers with the username", "2014", F, R14_LOGOUT, (
            Connect("a"), Login("a"), Send("a", LOGOUT14),
            Expect("a", m(response="logout", username="{a}", lacks=("error",)),
                   "{'response': 'logout', 'username': <name>}"),
            Connect("c"), LoginEventually("c", "a", "a new login with the name accepted"),
        )),
        S("crash.delivery", "a client vanishing (RST) does not stop delivery to others", "2014",
          F, R14_SEVERAL, (
            Connect("a"), Login("a"), Connect("b"), Login("b"), Connect("c"), Login("c"),
            Abort("c"), Send("a", _msg14("{t1}")),
            Expect("b", _echo14("{t1}"), "the message on another user after the crash"),
            Send("b", _msg14("{t2}")),
            Expect("a", _echo14("{t2}"), "a later message still delivered"),
        )),
        S("crash.name-freed", "a client vanishing (RST) does not keep its name taken", "2014", F,
          R_UNIQUE, (
            Connect("c"), Login("c"), Abort("c"),
            Connect("d"), LoginEventually("d", "c", "a new login with the crashed user's name"),
        )),
        S("framing.two-in-one", "two requests in one TCP segment are both served", "2014", W,
          R_INTEROP, (
            Connect("a"), Login("a"), Connect("b"), Login("b"),
            SendRaw("a", ('{"request": "message", "message": "{t1}"}'
                          '{"request": "message", "message": "{t2}"}',)),
            Expect("b", _echo14("{t1}"), "the first message delivered"),
            Expect("b", _echo14("{t2}"), "the second message delivered"),
        )),
        S("framing.split", "one request split across TCP segments is served", "2014", W,
          R_INTEROP, (
            Connect("a"), Login("a"), Connect("b"), Login("b"),
            SendRaw("a", ('{"request": "message", "mes', 'sage": "{t1}"}')),
            Expect("b", _echo14("{t1}"), "the message delivered"),
        )),
        S("framing.newline", "a request ending in a newline is served", "2014", W, R_INTEROP, (
            Connect("a"), Login("a"), Connect("b"), Login("b"),
            SendRaw("a", ('{"request": "message", "message": "{t1}"}\n',)),
            Expect("b", _echo14("{t1}"), "the message delivered"),
            Send("a", _msg14("{t2}")), Expect("b", _echo14("{t2}"), "the next request served"),
        )),
        S("robust.invalid-json", "invalid JSON does not break the connection", "2014", W,
          R_INTEROP, (
            Connect("a"), Login("a"), Connect("b"), Login("b"),
            SendRaw("a", ('{"request": "message", "message": }',)),
            Send("a", _msg14("{t1}")), Expect("b", _echo14("{t1}"), "the next request served"),
        )),
    ]  # fmt: skip


def server_scenarios(edition: str = "2017") -> List[Scenario]:
    """The server dialogues of one seed edition ("2017" or "2014")."""
    if edition == "2017":
        return _scenarios_2017()
    if edition == "2014":
        return _scenarios_2014()
    raise ValueError(f"unknown edition {edition!r}; choose one of {', '.join(EDITIONS)}")


def login_request(edition: str, name: str) -> Dict[str, Any]:
    """The login request of an edition, for a concrete name."""
    if edition == "2014":
        return {"request": "login", "username": name}
    return {"request": "login", "content": name}


def login_accepted(edition: str) -> Match:
    """What a successful login's first answer looks like (2017: anything but an error)."""
    if edition == "2014":
        return m(response="login", lacks=("error",))
    return NOT_ERROR


def login_refused(edition: str) -> Match:
    if edition == "2014":
        return m(response="login", has=("error",))
    return ERROR


# --- client checks -------------------------------------------------------------------------
# A ClientCheck runs against a fresh client process and a fresh fake server. Actions are
# typed through the configured input style (see client_checks.INPUT_STYLES). Every check
# starts by typing the login and answering it (an info, and no history: what a ktnchat
# server sends into an empty chat, so a client that dies on `[]` is judged only by
# history.empty) unless `login_reply` says otherwise. The history shapes are in
# history_shapes.py.


@dataclass(frozen=True)
class Type:
    """Type the input for `action` ("login", "msg", "names", "help", "logout")."""

    action: str
    text: str = ""


@dataclass(frozen=True)
class ExpectRequest:
    """The client sends a request with this word; `content` is what it must carry
    (None: JSON null). judge=False: any request with the word will do."""

    word: str
    content: Optional[str]
    what: str
    level: Optional[Status] = None
    judge: bool = True


@dataclass(frozen=True)
class Reply:
    """The fake server sends objects (templates), framed as `mode` says:
    "each" (one segment each, paced, ending in a newline as ktnchat's server sends
    them), "bare" (the same without the newline, as servers on the seed's skeleton send
    them), "together" (all in one segment, no newlines), "split" (each object cut in two
    segments), "newline" (each ending in a newline)."""

    values: Tuple[Any, ...]
    mode: str = "each"


@dataclass(frozen=True)
class ExpectOutput:
    """The client's terminal output shows every token. survival=True: this is the live
    message after a history shape; missing means the client did not survive the shape."""

    tokens: Tuple[str, ...]
    what: str
    level: Optional[Status] = None
    survival: bool = False


@dataclass(frozen=True)
class ExpectAlive:
    """The client process is still running."""

    what: str


ClientStep = Union[Type, ExpectRequest, Reply, ExpectOutput, ExpectAlive]


@dataclass(frozen=True)
class ClientCheck:
    """One client dialogue. `shape`: the history shape it probes (history_shapes.py)."""

    check_id: str
    title: str
    level: Status
    rule: Rule
    steps: Tuple[ClientStep, ...]
    login_reply: Tuple[Any, ...] = field(default_factory=tuple)
    login_mode: str = "each"
    shape: str = ""


def resp(kind: str, content: Any, sender: str = "server", **extra: Any) -> Dict[str, Any]:
    """A response template in the 2017 envelope ("{time}" becomes the current time)."""
    return {
        "timestamp": "{time}", "sender": sender, "response": kind, "content": content, **extra,
    }  # fmt: skip


LATER = Reply((resp("message", "{t9}", "{b}"),))
SEE_LATER = ExpectOutput(("{t9}",), "a later message is still shown")
LOGIN_OK = (resp("info", "Login successful"),)


def client_checks() -> List[ClientCheck]:
    """The request, show and framing checks (the history shapes: history_shapes.py)."""
    C, F, W = ClientCheck, Status.FAIL, Status.WARN
    return [
        C("request.login", "login sends {'request': 'login', 'content': <name>}", F, C_FORMAT, (
            ExpectRequest("login", "{a}", "the login request"),
        )),
        C("request.msg", "msg sends {'request': 'msg', 'content': <text>}", F, C_FORMAT, (
            Type("msg", "{t1}"), ExpectRequest("msg", "{t1}", "the msg request"),
        )),
        C("request.names", "names sends {'request': 'names', 'content': None}", F, C_FORMAT, (
            Type("names"), ExpectRequest("names", None, "the names request"),
        )),
        C("request.help", "help sends {'request': 'help', 'content': None}", F, C_FORMAT, (
            Type("help"), ExpectRequest("help", None, "the help request"),
        )),
        C("request.logout", "logout sends {'request': 'logout', 'content': None}", F, C_FORMAT, (
            Type("logout"), ExpectRequest("logout", None, "the logout request"),
        )),
        C("show.info", "an info response is shown", F, C_PRESENT, (
            Reply((resp("info", "{t1}"),)), ExpectOutput(("{t1}",), "the info's content"),
        )),
        C("show.error", "an error response is shown, and later messages too", F, C_PRESENT, (
            Reply((resp("error", "{t1}"),)), ExpectOutput(("{t1}",), "the error's content"),
            LATER, SEE_LATER,
        )),
        C("show.message", "a message response is shown with its sender", F, C_PRESENT, (
            Reply((resp("message", "{t1}", "{b}"),)),
            ExpectOutput(("{t1}",), "the message's content"),
            ExpectOutput(("{b}",), "the message's sender"),
        )),
        C("framing.two-in-one", "two responses in one TCP segment are both shown", W, R_INTEROP, (
            Reply((resp("message", "{t1}", "{b}"), resp("message", "{t2}", "{b}")),
                  "together"),
            ExpectOutput(("{t1}", "{t2}"), "both messages"), LATER, SEE_LATER,
        )),
        C("framing.split", "a response split across TCP segments is shown", W, R_INTEROP, (
            Reply((resp("message", "{t1}", "{b}"),), "split"),
            ExpectOutput(("{t1}",), "the message"), LATER, SEE_LATER,
        )),
        C("framing.newline", "a response ending in a newline is shown", W, R_INTEROP, (
            Reply((resp("message", "{t1}", "{b}"),), "newline"),
            ExpectOutput(("{t1}",), "the message"), LATER, SEE_LATER,
        )),
        C("framing.bare", "a response with no newline after it is shown", W, R_INTEROP, (
            Reply((resp("message", "{t1}", "{b}"),), "bare"),
            ExpectOutput(("{t1}",), "the message"), LATER, SEE_LATER,
        )),
    ]  # fmt: skip
