# Terminal mode: a prompt_toolkit prompt that incoming messages never clobber.
#
# Rules:
# - prompt_toolkit is imported lazily (`available()`); without it main.py falls back to
#   plain mode with a notice.
# - The main thread runs the prompt; a dispatcher thread takes events from the session's
#   inbox and prints them above the prompt through patch_stdout(raw=True), so our own
#   ANSI colour codes pass while received text (already neutralised) cannot add any.
# - Completion: command words for the first word, usernames seen for later words.
# - Ctrl-D or `quit` leaves; Ctrl-C clears the line. A finished session (lost connection)
#   ends the prompt from the dispatcher thread.
from __future__ import annotations

import queue
import threading
from typing import Any, Iterator

from ktnchat.client.commands import COMMAND_WORDS
from ktnchat.client.render import Rendered
from ktnchat.client.session import ClientSession

_COLOURS = {
    "message": "",
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
            for name in sorted(session.usernames):
                if name.lower().startswith(word.lower()):
                    yield Completion(name, start_position=-len(word))

    return ChatCompleter()


def _exit_app(app: Any) -> None:
    future = getattr(app, "future", None)
    if app.is_running and future is not None and not future.done():
        app.exit(exception=EOFError())


def run_tty(session: ClientSession) -> int:
    """Run a connected session at the terminal until quit or the session ends."""
    from prompt_toolkit import PromptSession
    from prompt_toolkit.history import InMemoryHistory
    from prompt_toolkit.patch_stdout import patch_stdout

    prompt: Any = PromptSession(
        history=InMemoryHistory(), completer=_make_completer(session), complete_while_typing=False
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
                session.handle_item(item)
            if session.exit_code is not None:
                end_prompt()

    with patch_stdout(raw=True):
        dispatcher = threading.Thread(target=dispatch, name="ktnchat-dispatch", daemon=True)
        dispatcher.start()
        try:
            while session.exit_code is None:  # one iteration per typed line
                try:
                    line = prompt.prompt("> ")
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
