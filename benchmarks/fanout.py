#!/usr/bin/env python3
"""Fan-out benchmark (performance issue): the generator and runner live in ktnchat/bench.py
so that `ktnchat bench ...` works from an installed package; this runs it from the repo.

    python3 benchmarks/fanout.py --shape bounded --clients 100 --runs 3
    python3 benchmarks/fanout.py --suite --markdown /tmp/fanout.md --json /tmp/fanout.json
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from ktnchat.bench import main

if __name__ == "__main__":
    raise SystemExit(main())
