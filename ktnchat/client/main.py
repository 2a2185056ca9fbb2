# Entry point of the command-line client: arguments, mode choice, connection, exit code.
#
# Rules:
# - `HOST PORT` default to 127.0.0.1 9998. Terminal mode when stdin and stdout are
#   terminals and prompt_toolkit is installed (else plain line mode, with a notice if
#   prompt_toolkit is missing); `--plain` forces line mode.
# - Exit codes: 0 after quit, end of input, or the server closing after our logout;
#   1 for a lost connection; 2 when the first connection cannot be made (or bad usage).
# - `--dialect cs3560` hands over to ktnchat/client/cs3560.py (the CS3560 assignment's
#   commands and outputs, always line mode); --reconnect and --edition are refused with it.
# - `--edition auto|2017|2014` (ktnchat/client/edition.py): auto speaks 2017 and falls
#   back to 2014 when the server closes on, or answers in another shape, a 2017 login.
from __future__ import annotations

import argparse
import io
import sys
from typing import Callable, List, Optional

from ktnchat.client import cs3560, plain, tty
from ktnchat.client.edition import AUTO, EDITION_CHOICES
from ktnchat.client.render import Rendered
from ktnchat.client.session import ClientSession

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 9998


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 < port < 65536:
        raise argparse.ArgumentTypeError(f"port out of range: {port}")
    return port


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ktnchat-client",
        description="Chat client for the KTN JSON chat protocol (works with any KTN server).",
    )
    parser.add_argument("host", nargs="?", default=DEFAULT_HOST, help="server host")
    parser.add_argument("port", nargs="?", type=_port, default=DEFAULT_PORT, help="server port")
    parser.add_argument("--plain", action="store_true", help="line mode even on a terminal")
    parser.add_argument(
        "--reconnect",
        action="store_true",
        help="reconnect (bounded attempts, backoff) and log in again when the connection is lost",
    )
    parser.add_argument("--show-ids", action="store_true", help="show message ids (ktnchat)")
    parser.add_argument("--no-color", action="store_true", help="no colours in terminal mode")
    parser.add_argument(
        "--edition",
        choices=EDITION_CHOICES,
        default=AUTO,
        help="edition of the KTN protocol: 2017 (the standard), 2014 (seed 000: login "
        "with username, message, logout), or auto (default): 2017, falling back to 2014 "
        "when the server closes the connection on a 2017 login or answers it in another shape",
    )
    parser.add_argument(
        "--dialect",
        choices=("ktn", "cs3560"),
        default="ktn",
        help="ktn: this client's commands (default); cs3560: the CS3560 Chatroom assignment's "
        "commands and outputs (login, list, sendto, logout, exit), always in line mode",
    )
    return parser


def _tolerant_streams() -> None:
    """Never die on text the terminal encoding cannot show or on undecodable input."""
    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, io.TextIOWrapper):
            stream.reconfigure(errors="replace")
    if isinstance(sys.stdin, io.TextIOWrapper):
        sys.stdin.reconfigure(errors="replace")


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.dialect == "cs3560" and args.reconnect:
        parser.error("--reconnect is not available with --dialect cs3560")
    if args.dialect == "cs3560" and args.edition != AUTO:
        parser.error("--edition is not available with --dialect cs3560")
    _tolerant_streams()
    if args.dialect == "cs3560":
        return cs3560.run(args.host, args.port)
    use_tty = not args.plain and sys.stdin.isatty() and sys.stdout.isatty()
    if use_tty and not tty.available():
        print(
            "ktnchat: prompt_toolkit is not installed; using plain line mode "
            "(pip install 'ktnchat[client]' for the full terminal client)",
            file=sys.stderr,
        )
        use_tty = False
    output: Callable[[Rendered], None] = (
        tty.TtyPrinter(not args.no_color) if use_tty else plain.PlainPrinter(sys.stdout)
    )
    session = ClientSession(
        args.host,
        args.port,
        output,
        show_ids=args.show_ids,
        reconnect=args.reconnect,
        edition=args.edition,
    )
    try:
        session.connect()
    except OSError as exc:
        reason = exc.strerror or str(exc) or type(exc).__name__
        print(f"ktnchat: cannot connect to {args.host}:{args.port}: {reason}", file=sys.stderr)
        return 2
    try:
        if use_tty:
            return tty.run_tty(session)
        return plain.run_plain(session)
    except KeyboardInterrupt:
        session.stop()
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
