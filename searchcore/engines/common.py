"""Helpers every engine shares, so no engine module imports another.

Index naming (``<alias>-<timestamp>``), the schema-version check and the recency
curve are the same for tantivy and Elasticsearch; they live here once.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import UTC, datetime

# A field every index of the current schema has: an index built by an older
# version lacks it and must be rebuilt (field ids are positional in tantivy).
SCHEMA_MARKER = "body_pairs"


def physical_name(alias: str, now: datetime | None = None) -> str:
    """A new versioned index's name: ``<alias>-<UTC timestamp to the microsecond>``,
    so names sort in the order they were made."""
    return f"{alias}-{(now or datetime.now(UTC)).astimezone(UTC):%Y%m%d%H%M%S%f}"


def is_current_schema(field_names: Collection[str]) -> bool:
    """Whether an index with these fields was built by this version's schema."""
    return SCHEMA_MARKER in field_names


def outdated(name: str, rebuild_hint: bool = True) -> str:
    """The message for an index built by an older version."""
    tail = " to rebuild it" if rebuild_hint else ""
    return f"the index {name} was built by an older version; run `indexer reindex PATH`{tail}"


def freshness(dt: datetime) -> float:
    """A static, monotonic recency signal in [0, 1]: 0 in 2000, 1 in 2040.

    tantivy's ``weight_by_field`` multiplies a score by log2(2 + stored value) and
    cannot scale it at query time, so tantivy stores ``SEARCH_RECENCY_WEIGHT *
    freshness`` at index time (change the weight, then reindex); Elasticsearch
    applies the same curve at query time. Weight 0 means no recency boost.
    """
    years = (dt.timestamp() - 946684800) / (365.25 * 86400)
    return min(1.0, max(0.0, years / 40.0))
