"""In-memory MessageStream pairs for relay tests (``tether.testing`` at the relay path)."""

from tether.testing import MemoryStream, memory_pair as _memory_pair


__all__ = ["MemoryStream", "memory_pair"]


def memory_pair(capacity=0, path="/ws", query="", headers=None):
    """Return ``(client_end, server_end)``, the server end at the relay path."""
    return _memory_pair(capacity, path, query, headers)
