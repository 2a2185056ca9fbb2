# `python -m ktnchat ...` is the same as the `ktnchat` console script.
from ktnchat.cli import main

raise SystemExit(main())
