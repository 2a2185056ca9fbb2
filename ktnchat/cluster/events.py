# What crosses the bus between worker processes, as JSON.
# Rules: an event is a dict with "w" (the publishing worker) and "t" (its type):
#   room  - {"room": key, "r": response}          deliver to that room's local members;
#           with "id" and "p" (prev) it is a stored message, delivered through the
#           room's sequencer (ktnchat/cluster/order.py)
#   head  - {"room": key, "id": n}                the room has messages up to n: catch up
#   user  - {"to": name key, "r": response}       deliver to that user if local
#   act   - {"to": name key, "kind": ..., ...}     do something to that user if local
#   state - {"kind": ..., ...}                     update a cache every worker keeps
#   batch - {"e": [event, ...]}                    several events for one channel, in order,
#           each without its own "w" (one PUBLISH instead of many; see link.py)
# room/head go on the room's channel, user/act on the holder's worker channel, the rest
# on the control channel (ClusterLink.publish_many).
# Responses travel as dicts of their fields (never history, which is never broadcast).
from __future__ import annotations

import json
from typing import Any, Dict

from ktnchat.protocol import Response


def response_to_wire(response: Response) -> Dict[str, Any]:
    return {
        "k": response.kind,
        "c": response.content,
        "s": response.sender,
        "ts": response.timestamp,
        "x": dict(response.extra),
    }


def response_from_wire(data: Dict[str, Any]) -> Response:
    return Response(data["k"], data["c"], data["s"], data["ts"], data.get("x") or {})


def dumps(event: Any) -> str:
    return json.dumps(event, separators=(",", ":"), ensure_ascii=False)


def loads(raw: Any) -> Dict[str, Any]:
    text = raw.decode("utf-8") if isinstance(raw, bytes) else str(raw)
    value = json.loads(text)
    if not isinstance(value, dict):
        raise ValueError("bus event is not an object")
    return value
