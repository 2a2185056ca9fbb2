# The web client's files, read once from the package (no build step, nothing fetched).
# Rules: only the files listed here are served, by exact path; the types are fixed.
from __future__ import annotations

from pathlib import Path
from typing import Dict

from ktnchat.web.endpoint import StaticFile

STATIC_DIR = Path(__file__).with_name("static")
FILES = {
    "/index.html": "text/html; charset=utf-8",
    "/app.js": "text/javascript; charset=utf-8",
    "/style.css": "text/css; charset=utf-8",
}


def load_static_files(directory: Path = STATIC_DIR) -> Dict[str, StaticFile]:
    """The web client's files by URL path.

    Raises:
        OSError: a file is missing (a broken installation).
    """
    return {
        path: StaticFile(content_type, (directory / path.lstrip("/")).read_bytes())
        for path, content_type in FILES.items()
    }
