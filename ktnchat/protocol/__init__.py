# The KTN protocol without I/O: framing, request/response events, encoding and decoding.
# Rules: nothing in this package touches a socket, a thread, a clock or storage.
from ktnchat.protocol.codec import (
    Rejected,
    RequestDecoder,
    RequestEvent,
    encode_history_content,
    encode_json,
    encode_request,
    encode_response,
    encode_response_frames,
    parse_json,
    request_from_value,
    response_to_dict,
    scrub_surrogates,
)
from ktnchat.protocol.errors import (
    FrameTooLarge,
    LocalProtocolError,
    ProtocolError,
    RemoteProtocolError,
)
from ktnchat.protocol.events import (
    ERROR,
    HISTORY,
    INFO,
    MESSAGE,
    RESPONSE_KINDS,
    HistoryEncoding,
    Request,
    Response,
)
from ktnchat.protocol.framing import (
    DEFAULT_MAX_DEPTH,
    DEFAULT_MAX_FRAME_BYTES,
    Frame,
    FrameSplitter,
)

__all__ = [
    "DEFAULT_MAX_DEPTH",
    "DEFAULT_MAX_FRAME_BYTES",
    "ERROR",
    "HISTORY",
    "INFO",
    "MESSAGE",
    "RESPONSE_KINDS",
    "Frame",
    "FrameSplitter",
    "FrameTooLarge",
    "HistoryEncoding",
    "LocalProtocolError",
    "ProtocolError",
    "Rejected",
    "RemoteProtocolError",
    "Request",
    "RequestDecoder",
    "RequestEvent",
    "Response",
    "encode_history_content",
    "encode_json",
    "encode_request",
    "encode_response",
    "encode_response_frames",
    "parse_json",
    "request_from_value",
    "response_to_dict",
    "scrub_surrogates",
]
