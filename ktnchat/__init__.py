"""ktnchat: a chat server and command-line client for the KTN JSON chat protocol."""

__version__ = "0.1.0"
__all__ = ["__version__"]
