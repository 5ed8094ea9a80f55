"""Engines behind one protocol (``base.Engine``); ``open_engine`` picks one by name."""

from __future__ import annotations

from ..config import Settings
from .base import Engine, EngineError, EngineUnavailable, IndexMissing

__all__ = ["Engine", "EngineError", "EngineUnavailable", "IndexMissing", "open_engine"]


def open_engine(settings: Settings) -> Engine:
    """The configured engine; imports lazily so tantivy users never need the ES client."""
    if settings.engine == "elasticsearch":
        from .elasticsearch_engine import ElasticsearchEngine

        return ElasticsearchEngine(settings)
    from .tantivy_engine import TantivyEngine

    return TantivyEngine(settings)
