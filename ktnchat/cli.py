# The `ktnchat` command: one entry point, subcommands for each tool.
# Rules: subcommand modules are imported only when chosen, so the server never imports
# the client's optional dependencies.
from __future__ import annotations

import sys
from typing import List, Optional

USAGE = """usage: ktnchat COMMAND [OPTIONS]

commands:
  server    run a chat server (ktnchat server --help)
  client    connect to a chat server (ktnchat client HOST PORT)
  check     test a server or client for conformance (ktnchat check --help)
  bench     fan-out benchmark against a server it starts (ktnchat bench --help)
  health    exit 0 if a server answers (ktnchat health [HOST] [PORT] [--timeout S])
  top       a live view of a server's /metrics (ktnchat top HOST:PORT)
  version   print the version
"""


def main(argv: Optional[List[str]] = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        print(USAGE, end="")
        return 0 if args else 2
    command, rest = args[0], args[1:]
    if command == "server":
        from ktnchat.server.main import main as server_main

        return server_main(rest)
    if command == "client":
        from ktnchat.client.main import main as client_main

        return int(client_main(rest))
    if command == "check":
        from ktnchat.conformance.main import main as check_main

        return check_main(rest)
    if command == "bench":
        from ktnchat.bench import main as bench_main

        return bench_main(rest)
    if command == "health":
        from ktnchat.health import main as health_main

        return health_main(rest)
    if command == "top":
        from ktnchat.top import main as top_main

        return top_main(rest)
    if command in ("version", "--version"):
        from ktnchat import __version__

        print(f"ktnchat {__version__}")
        return 0
    print(f"ktnchat: unknown command {command!r}\n\n{USAGE}", end="", file=sys.stderr)
    return 2
