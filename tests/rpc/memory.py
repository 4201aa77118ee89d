"""In-memory message stream pairs for RPC tests (``tether.testing`` at the REPE path)."""

from tether.testing import MemoryStream, memory_pair as _memory_pair


__all__ = ["MemoryStream", "memory_pair", "until"]


def memory_pair(capacity=0, path="/repe", query="", headers=None):
    """Return ``(client_end, server_end)``, the server end at the REPE path."""
    return _memory_pair(capacity, path, query, headers)


try:  # tests/utils.py, importable when the repository root is on sys.path
    from tests.utils import until
except ImportError:  # pragma: no cover - running one file with a bare `pytest`
    import importlib.util
    import pathlib

    _spec = importlib.util.spec_from_file_location(
        "_tether_test_utils", pathlib.Path(__file__).parent.parent / "utils.py"
    )
    _utils = importlib.util.module_from_spec(_spec)
    _spec.loader.exec_module(_utils)
    until = _utils.until
