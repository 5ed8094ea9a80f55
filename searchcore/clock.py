"""Beijing time: the one clock of the pages, the JSON API, the date facet and from/to.

Every time a reader sees is shown on it, and the date facet counts its calendar
days, so an article is listed under the day its hit shows. A post's own offset is
kept beside (``offset``: the article page shows the source's time too when it wrote
another). Kept apart from the article model so that the field table
(``searchcore.fields``), the model built from it and the facets all read it
without importing each other.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from datetime import time as dtime

# The newsroom's UTC offset in minutes (+08:00): the offset of a post that names
# none, and the zone of the date facet. Every default of 480 is this name.
DEFAULT_OFFSET_MINUTES = 480
SHANGHAI = timezone(timedelta(minutes=DEFAULT_OFFSET_MINUTES), "Asia/Shanghai")


def shanghai_day(dt: datetime) -> int:
    """The Asia/Shanghai calendar day of ``dt`` as YYYYMMDD: the date facet's key."""
    d = dt.astimezone(SHANGHAI)
    return d.year * 10000 + d.month * 100 + d.day


def day_start(d: date) -> datetime:
    """Midnight in Asia/Shanghai: the clock of the date facet and of from/to."""
    return datetime.combine(d, dtime(0, 0), tzinfo=SHANGHAI)
