"""Helpers every engine shares, so no engine module imports another.

Index naming (``<alias>-<timestamp>``) and the message for an index built by an
older version are the same for tantivy and Elasticsearch; they live here once.
(What a current index holds is ``searchcore.fields``' business: ``is_current_schema``.)
"""

from __future__ import annotations

from datetime import UTC, datetime


def physical_name(alias: str, now: datetime | None = None) -> str:
    """A new versioned index's name: ``<alias>-<UTC timestamp to the microsecond>``,
    so names sort in the order they were made."""
    return f"{alias}-{(now or datetime.now(UTC)).astimezone(UTC):%Y%m%d%H%M%S%f}"


def outdated(name: str, rebuild_hint: bool = True) -> str:
    """The message for an index built by an older version."""
    tail = " to rebuild it" if rebuild_hint else ""
    return f"the index {name} was built by an older version; run `indexer reindex PATH`{tail}"
