# Log output: the human format (the default) or one JSON object per line for Loki/ELK.
#
# Rules:
# - JSON lines always carry the same field names: time (ISO 8601, UTC), level, logger,
#   event, message, and, when the log call knows them, conn (connection id), user, room,
#   peer (address:port), by (who did a moderation action), action and target (what was
#   done, to whom), worker (in a cluster), plus the exception text.
# - conn, user and peer always describe one connection: the one the line is about (for a
#   moderation action, the moderator's; `target` names the user acted on).
# - Log calls pass the structured fields with `extra=log_fields(...)`; the human format
#   ignores them (its message already says the same), so both formats read one call.
# - Nothing here may raise while logging: values that JSON cannot hold become strings.
from __future__ import annotations

import json
import logging
import time
from typing import Any, Dict, Optional

FIELDS = ("event", "conn", "user", "room", "peer", "by", "action", "target", "worker")
HUMAN_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def log_fields(
    event: str,
    conn: Optional[int] = None,
    user: Optional[str] = None,
    room: Optional[str] = None,
    peer: Optional[str] = None,
    by: Optional[str] = None,
    action: Optional[str] = None,
    target: Optional[str] = None,
) -> Dict[str, Any]:
    """The `extra=` of a log call: its stable structured fields (None ones left out)."""
    values = {
        "event": event,
        "conn": conn,
        "user": user,
        "room": room,
        "peer": peer,
        "by": by,
        "action": action,
        "target": target,
    }
    return {f"ktn_{key}": value for key, value in values.items() if value is not None}


class JsonFormatter(logging.Formatter):
    """One JSON object per record, one record per line."""

    def __init__(self, worker: Optional[str] = None) -> None:
        super().__init__()
        self.worker = worker

    def format(self, record: logging.LogRecord) -> str:
        out: Dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": getattr(record, "ktn_event", None) or _event_from(record),
            "message": record.getMessage(),
        }
        for name in FIELDS[1:]:
            value = getattr(record, f"ktn_{name}", None)
            if value is not None:
                out[name] = value
        if self.worker is not None and "worker" not in out:
            out["worker"] = self.worker
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False, default=str)


def _event_from(record: logging.LogRecord) -> str:
    """A stable event name for a record that gave none: its logger and message template."""
    template = str(record.msg)
    words = [w for w in template.replace("%s", " ").replace("%d", " ").split() if w.isalpha()]
    return "_".join(words[:4]).lower() or record.name


def configure(level: str = "INFO", fmt: str = "human", worker: Optional[str] = None) -> None:
    """Set up the root logger once, for the server's process."""
    handler = logging.StreamHandler()
    if fmt == "json":
        handler.setFormatter(JsonFormatter(worker))
    else:
        handler.setFormatter(logging.Formatter(HUMAN_FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
