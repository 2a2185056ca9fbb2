# Terminal mode: a prompt_toolkit prompt that incoming messages never clobber.
#
# Rules:
# - prompt_toolkit is imported lazily (`available()`); without it main.py falls back to
#   plain mode with a notice.
# - The main thread runs the prompt; a dispatcher thread takes events from the session's
#   inbox and prints them above the prompt through patch_stdout(raw=True), so our own
#   ANSI colour codes pass while received text (already neutralised) cannot add any.
# - Completion: command words for the first word; room names seen after `join` and
#   `deleteroom`; usernames seen for any other later word (so after sendto, kick, mute,
#   ban, mod, purge, ... and in chat text).
# - The prompt shows the current room ("[games]> ") and is redrawn when it changes.
# - Lines carrying a password (commands.is_secret_line) never enter the prompt history, and
#   the password part is shown as "*" while it is typed (and after).
# - Ctrl-D or `quit` leaves; Ctrl-C clears the line. A finished session (lost connection)
#   ends the prompt from the dispatcher thread.
from __future__ import annotations

import queue
import threading
from typing import Any, Iterator

from ktnchat.client.commands import COMMAND_WORDS, is_secret_line, secret_start
from ktnchat.client.render import Rendered, neutralise
from ktnchat.client.session import ClientSession

_COLOURS = {
    "message": "",
    "private": "\x1b[35m",
    "room": "\x1b[1;36m",
    "removed": "\x1b[2;33m",
    "history": "\x1b[2m",
    "info": "\x1b[36m",
    "notice": "\x1b[36m",
    "error": "\x1b[1;31m",
    "other": "\x1b[33m",
    "unreadable": "\x1b[35m",
    "local": "\x1b[2;32m",
    "warning": "\x1b[1;33m",
}
_RESET = "\x1b[0m"
_POLL_SECONDS = 0.2
_ROOM_WORDS = frozenset({"join", "deleteroom"})
_MAX_PROMPT_ROOM = 24


def available() -> bool:
    """True if prompt_toolkit can be imported."""
    try:
        import prompt_toolkit  # noqa: F401
    except ImportError:
        return False
    return True


class TtyPrinter:
    """Prints Rendered text with an optional colour (via the patched stdout)."""

    def __init__(self, color: bool) -> None:
        self._color = color
        self._lock = threading.Lock()

    def __call__(self, rendered: Rendered) -> None:
        code = _COLOURS.get(rendered.style, "") if self._color else ""
        text = f"{code}{rendered.text}{_RESET}" if code else rendered.text
        with self._lock:
            print(text, flush=True)


def _make_completer(session: ClientSession) -> Any:
    from prompt_toolkit.completion import Completer, Completion

    class ChatCompleter(Completer):
        def get_completions(self, document: Any, complete_event: Any) -> Iterator[Any]:
            before = document.text_before_cursor.lstrip()
            word = document.get_word_before_cursor(WORD=True)
            if " " not in before:
                for command in COMMAND_WORDS:
                    if command.startswith(word.lower()):
                        yield Completion(command, start_position=-len(word))
                return
            words = before.split()
            first = words[0].lower().lstrip("/")
            second = len(words) == 1 or (len(words) == 2 and not before[-1].isspace())
            rooms = second and first in _ROOM_WORDS
            for name in session.known_names(rooms=rooms):
                if name.lower().startswith(word.lower()):
                    yield Completion(name, start_position=-len(word))

    return ChatCompleter()


def _make_history() -> Any:
    """An in-memory prompt history that never keeps a line carrying a password."""
    from prompt_toolkit.history import InMemoryHistory

    class NoSecretsHistory(InMemoryHistory):
        def append_string(self, string: str) -> None:
            if not is_secret_line(string):
                super().append_string(string)

    return NoSecretsHistory()


def _make_masker() -> Any:
    """An input processor showing the secret part of a line (commands.secret_start) as "*"."""
    from prompt_toolkit.layout.processors import Processor, Transformation
    from prompt_toolkit.layout.utils import explode_text_fragments

    class MaskSecrets(Processor):
        def apply_transformation(self, transformation_input: Any) -> Any:
            start = secret_start(transformation_input.document.text)
            if start is None or transformation_input.lineno != 0:
                return Transformation(transformation_input.fragments)
            fragments = explode_text_fragments(transformation_input.fragments)
            return Transformation(
                [
                    (style, "*" if index >= start and text else text, *rest)
                    for index, (style, text, *rest) in enumerate(fragments)
                ]
            )

    return MaskSecrets()


def prompt_text(session: ClientSession) -> str:
    """The prompt: "[room]> " when the current room is known, else "> "."""
    room = session.room
    if not room:
        return "> "
    shown = neutralise(room, multiline=False)
    if len(shown) > _MAX_PROMPT_ROOM:
        shown = shown[: _MAX_PROMPT_ROOM - 1] + "…"
    return f"[{shown}]> "


def _exit_app(app: Any) -> None:
    future = getattr(app, "future", None)
    if app.is_running and future is not None and not future.done():
        app.exit(exception=EOFError())


def run_tty(session: ClientSession) -> int:
    """Run a connected session at the terminal until quit or the session ends."""
    from prompt_toolkit import PromptSession
    from prompt_toolkit.patch_stdout import patch_stdout

    prompt: Any = PromptSession(
        history=_make_history(),
        completer=_make_completer(session),
        complete_while_typing=False,
        input_processors=[_make_masker()],
    )
    done = threading.Event()

    def end_prompt() -> None:
        app = prompt.app
        if app.is_running and app.loop is not None:
            app.loop.call_soon_threadsafe(_exit_app, app)

    def dispatch() -> None:
        while not done.is_set():  # ends when the prompt loop ends
            try:
                item = session.inbox.get(timeout=_POLL_SECONDS)
            except queue.Empty:
                item = None
            if item is not None:
                room = session.room
                session.handle_item(item)
                if session.room != room:
                    prompt.app.invalidate()  # thread-safe: redraws the prompt's room
            if session.exit_code is not None:
                end_prompt()

    with patch_stdout(raw=True):
        dispatcher = threading.Thread(target=dispatch, name="ktnchat-dispatch", daemon=True)
        dispatcher.start()
        try:
            while session.exit_code is None:  # one iteration per typed line
                try:
                    line = prompt.prompt(lambda: prompt_text(session))
                except KeyboardInterrupt:
                    continue
                except EOFError:
                    if session.exit_code is None:
                        session.quit()
                    break
                session.handle_line(line)
        finally:
            done.set()
            dispatcher.join(2.0)
            session.stop()
    return session.exit_code if session.exit_code is not None else 0
