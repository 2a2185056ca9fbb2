# The threaded TCP front-end: I/O loops, connections, outboxes and delivery.
from ktnchat.server.config import DEFAULT_HOST, DEFAULT_PORT, ServerConfig
from ktnchat.server.server import ChatServer

__all__ = ["DEFAULT_HOST", "DEFAULT_PORT", "ChatServer", "ServerConfig"]
