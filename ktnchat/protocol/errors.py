# Protocol errors, split as h11 splits them: the peer's fault or ours.
# Rules: RemoteProtocolError carries a message fit to send back to the peer in an
# `error` response; `fatal` says the byte stream cannot be resynchronised and the
# connection must be closed after that response.
from __future__ import annotations


class ProtocolError(Exception):
    """Base class for every protocol error."""


class RemoteProtocolError(ProtocolError):
    """The peer sent something we cannot accept (bad JSON, wrong shape, too big).

    Attributes:
        fatal: True when the stream cannot be resynchronised (e.g. an oversized
            frame); the connection must be closed after answering.
    """

    def __init__(self, message: str, *, fatal: bool = False) -> None:
        super().__init__(message)
        self.fatal = fatal


class FrameTooLarge(RemoteProtocolError):
    """A frame (one JSON value) grew past the configured byte limit."""

    def __init__(self, limit: int) -> None:
        super().__init__(
            f"Request too large: the limit is {limit} bytes per JSON object; "
            "closing the connection",
            fatal=True,
        )
        self.limit = limit


class LocalProtocolError(ProtocolError):
    """We tried to emit something that is not valid on the wire: a bug in ktnchat."""
