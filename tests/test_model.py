"""The article records built from the field table (``searchcore.model``): a wrong
type or a missing value fails where the record is made, naming the field, and never
reads as another value (a stored int once read 480 whenever it was missing)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from searchcore.clock import DEFAULT_OFFSET_MINUTES
from searchcore.fields import PARSED, STORED, Field, Show
from searchcore.model import Article, StoredDoc, record

WHEN = datetime(2024, 3, 15, 1, 30, tzinfo=UTC)


def _parsed(**changes) -> dict:
    values = dict(
        id="2024-03-15-a",
        title="标题",
        date=WHEN,
        categories=["finance"],
        tags=["经济"],
        body_html="<p>正文</p>",
        body_text="正文",
        source_url="https://www.example.com/a.html",
        path="2024-03-15-a.md",
        content_hash="h",
    )
    return {**values, **changes}


def test_records_have_the_fields_the_table_gives_them():
    article = Article(**_parsed())
    assert [f.name for f in PARSED] == [f for f in Article.__dataclass_fields__ if f != "warnings"]
    assert {f.name for f in STORED} == set(StoredDoc.__dataclass_fields__)
    assert article.offset == DEFAULT_OFFSET_MINUTES and article.warnings == () and article.site == "example.com"
    assert article.local_date.utcoffset() == timedelta(hours=8)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"title": 5}, "title"),
        ({"tags": "经济"}, "tags"),  # a string is not a list of tags
        ({"categories": ["a", None]}, "categories"),
        ({"date": datetime(2024, 3, 15)}, "date"),  # naive: which clock?
        ({"offset": "480"}, "offset"),
        ({"offset": True}, "offset"),
        ({"source_url": None}, "source_url"),
    ],
)
def test_a_wrong_type_is_an_error_that_names_the_field(changes, field):
    with pytest.raises(TypeError, match=rf"Article\.{field} must be"):
        Article(**_parsed(**changes))


def test_a_value_without_a_default_is_required():
    values = _parsed()
    del values["date"]
    with pytest.raises(TypeError, match="date"):
        Article(**values)


def test_stored_values_are_checked_too():
    stored = {"id": "a", "title": "t", "date": datetime(2024, 3, 15, 1, 30), "offset": 540}
    doc = StoredDoc.from_values(stored)
    assert doc.date.tzinfo is UTC and doc.offset == 540 and doc.body_html == "" and doc.categories == []
    assert StoredDoc.from_values({**stored, "offset": None}).offset == DEFAULT_OFFSET_MINUTES  # its declared default
    with pytest.raises(TypeError, match=r"StoredDoc\.offset must be int"):
        StoredDoc.from_values({**stored, "offset": "540"})


def test_a_new_int_field_without_a_default_is_never_read_as_480():
    """What an index lacks is an error, not the newsroom's offset: an int row
    declares its default, or a record without its value cannot be made."""

    @record((*STORED, Field("clicks", "int", lambda ia: 0, stored=True)))
    class WithClicks(StoredDoc):
        pass

    stored = {"id": "a", "title": "t", "date": WHEN}
    assert WithClicks.from_values({**stored, "clicks": 7}).clicks == 7
    with pytest.raises(TypeError, match="clicks"):
        WithClicks.from_values(stored)


def test_rows_that_cannot_work_are_refused_where_they_are_declared():
    with pytest.raises(ValueError, match="neither parsed nor given a value"):
        Field("x", "keyword")
    with pytest.raises(ValueError, match="must be stored"):
        Field("x", "keyword", parsed=True, show=Show())
    with pytest.raises(ValueError, match="in hits"):
        Field("x", "keyword", parsed=True, stored=True, in_hits=False, show=Show())
