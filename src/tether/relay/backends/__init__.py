"""Relay backends: :mod:`.memory` (embedded, default) and :mod:`.redis` (many nodes)."""

from __future__ import annotations

from .base import Backend, BackendEvent


__all__ = ["Backend", "BackendEvent"]
