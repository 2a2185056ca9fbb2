# `ktnchat check`: the conformance checker's command line (server and client modes).
#
# Rules:
# - `ktnchat check server HOST[:PORT]` and `ktnchat check client [OPTIONS] -- COMMAND...`.
# - Output: a readable table, or one JSON document with --json; a client report ends with
#   the history shapes the client survived. Exit status: 0 when no check FAILed, 1 when one
#   did, 2 for bad usage.
# - Never raises: bad arguments are reported with usage and status 2.
from __future__ import annotations

import argparse
import shutil
import sys
from typing import List, Optional, Sequence, Tuple

from ktnchat.conformance.client_checks import INPUT_STYLES, ClientOptions, run_client_checks
from ktnchat.conformance.history_shapes import survival, survival_summary
from ktnchat.conformance.report import exit_status, render_json, render_table
from ktnchat.conformance.scenarios import EDITIONS
from ktnchat.conformance.server_checks import Options, run_server_checks

DEFAULT_PORT = 9998
USAGE = """usage: ktnchat check server HOST[:PORT] [--edition 2017|2014] [OPTIONS]
       ktnchat check client [OPTIONS] -- COMMAND [ARGS...]

Checks a KTN chat server or client against the TTM4100 seed, requirement by requirement.
  server  runs scripted dialogues against a live server
  client  starts COMMAND ({host} and {port} are replaced; otherwise HOST PORT are appended)
          against a scripted fake server and types commands into it through a pty
Exit status: 0 when no check FAILed, 1 otherwise, 2 for bad usage.
`ktnchat check server --help` and `ktnchat check client --help` list the options.
"""


def parse_address(text: str) -> Tuple[str, int]:
    """HOST, HOST:PORT or [IPv6]:PORT."""
    text = text.strip()
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port_text = rest[1:] if rest.startswith(":") else ""
    elif text.count(":") == 1:
        host, port_text = text.split(":")
    else:
        host, port_text = text, ""
    port = int(port_text) if port_text else DEFAULT_PORT
    if not host or not 0 < port < 65536:
        raise ValueError(f"not an address: {text!r}")
    return host, port


def _common(parser: argparse.ArgumentParser, timeout: float, jobs: int) -> None:
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    parser.add_argument("--verbose", "-v", action="store_true", help="show rules of passes")
    parser.add_argument(
        "--timeout", type=float, default=timeout, help=f"seconds to wait for answers ({timeout})"
    )
    parser.add_argument("--jobs", type=int, default=jobs, help=f"checks run at once ({jobs})")
    parser.add_argument(
        "--only", action="append", metavar="ID", help="run the checks whose id starts with ID"
    )


def server_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ktnchat check server", description="Check a live KTN chat server."
    )
    parser.add_argument("address", help="HOST[:PORT] of the server (port 9998 if omitted)")
    parser.add_argument("port", nargs="?", type=int, help="the port, if not in ADDRESS")
    parser.add_argument("--edition", choices=EDITIONS, default="2017", help="seed edition")
    _common(parser, Options.timeout, 1)
    parser.add_argument(
        "--quiet", type=float, default=Options.quiet,
        help=f"seconds to watch for what must not arrive ({Options.quiet})",
    )  # fmt: skip
    parser.add_argument(
        "--settle", type=float, default=Options.settle,
        help=f"silence that ends a login's answer ({Options.settle})",
    )  # fmt: skip
    return parser


def client_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ktnchat check client",
        description="Check a KTN chat client: ktnchat check client [OPTIONS] -- COMMAND...",
    )
    parser.add_argument(
        "--input", choices=sorted(INPUT_STYLES), default="commands",
        help="how commands are typed: 'login alice' / 'msg hi' (commands), the first line "
        "is the username (username-first), or /login alice (slash)",
    )  # fmt: skip
    parser.add_argument(
        "--type", action="append", default=[], metavar="ACTION=LINE",
        help="override one typed line, e.g. --type 'names=/who' (ACTION: login, msg, names, "
        "help, logout; {name} and {text} are replaced)",
    )  # fmt: skip
    parser.add_argument(
        "--no-append", action="store_true",
        help="do not append HOST PORT to a command without {host}/{port} (use the "
        "environment: KTN_HOST, KTN_PORT)",
    )  # fmt: skip
    _common(parser, ClientOptions.timeout, ClientOptions.jobs)
    return parser


def _width() -> int:
    return max(60, min(120, shutil.get_terminal_size((100, 24)).columns))


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        print(USAGE, end="")
        return 0 if args else 2
    mode, rest = args[0], args[1:]
    try:
        if mode == "server":
            return _server(rest)
        if mode == "client":
            return _client(rest)
    except SystemExit as exc:  # argparse: --help is 0, errors are 2
        return exc.code if isinstance(exc.code, int) else 2
    print(f"ktnchat check: unknown mode {mode!r}\n\n{USAGE}", end="", file=sys.stderr)
    return 2


def _server(rest: List[str]) -> int:
    parser = server_parser()
    ns = parser.parse_args(rest)
    try:
        host, port = parse_address(ns.address)
        if ns.port is not None:
            port = ns.port
    except ValueError as exc:
        parser.error(str(exc))
    options = Options(timeout=ns.timeout, quiet=ns.quiet, settle=ns.settle, jobs=max(1, ns.jobs))
    results = run_server_checks((host, port), ns.edition, options, ns.only)
    target = f"{host}:{port}"
    if ns.json:
        print(render_json("server", target, ns.edition, results), end="")
    else:
        title = f"ktnchat check server {target} (seed edition {ns.edition})"
        print(render_table(title, results, verbose=ns.verbose, width=_width()), end="")
    return exit_status(results)


def _client(rest: List[str]) -> int:
    if "--" in rest:
        cut = rest.index("--")
        rest, command = rest[:cut], rest[cut + 1 :]
    else:
        command = []
    parser = client_parser()
    ns = parser.parse_args(rest)
    if not command:
        parser.error("give the client's command after --, e.g. -- python3 client.py {host} {port}")
    style = dict(INPUT_STYLES[ns.input])
    for override in ns.type:
        action, sep, line = override.partition("=")
        if not sep or action not in style:
            parser.error(f"--type wants ACTION=LINE with ACTION in {', '.join(style)}")
        style[action] = line
    options = ClientOptions(
        command=tuple(command),
        style=style,
        append_address=not ns.no_append,
        timeout=ns.timeout,
        jobs=max(1, ns.jobs),
    )
    results = run_client_checks(options, ns.only)
    target = " ".join(command)
    shapes = survival_summary(results)
    if ns.json:
        extra = {"history_shapes": survival(results)} if shapes else None
        print(render_json("client", target, "2017", results, extra), end="")
    else:
        title = f"ktnchat check client -- {target} (seed edition 2017, input style {ns.input})"
        notes = [shapes] if shapes else []
        print(
            render_table(title, results, verbose=ns.verbose, width=_width(), notes=notes),
            end="",
        )
    return exit_status(results)
