# `python -m ktnchat.client [HOST] [PORT] [options]` runs the chat client.
# Rules: nothing here but the entry point.
from ktnchat.client.main import main

raise SystemExit(main())
