"""Reading URL parameters: bounded, one spelling per value, errors in words.

Shared by the search request, the facets (each reads its own parameters) and the
article page's ``part``. A RequestError's message is shown as it is by the search
page, its JSON twin and the operators' CLI (``indexer explain``, which may not
import the web app): that is why these words live in the core.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import date
from typing import Any, TypeVar

T = TypeVar("T")


class RequestError(ValueError):
    """A reader's request we cannot answer; the message is shown to them as it is
    (page, JSON API and CLI alike), and ``param`` names the parameter at fault."""

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param


def attempt(read: Callable[[], T], salvage: Callable[[], T], errors: list[RequestError] | None) -> T:
    """``read()``; on a RequestError, raise it (``errors`` None: a strict caller such as
    the JSON API or the CLI) or record it and return ``salvage()``, so the search page
    can answer with every other parameter and show this one's error beside it."""
    try:
        return read()
    except RequestError as exc:
        if errors is None:
            raise
        errors.append(exc)
        return salvage()


def getlist(args: Mapping[str, Any], key: str) -> list[str]:
    """Every value of ``key``: from a werkzeug MultiDict or a plain mapping."""
    if hasattr(args, "getlist"):
        return list(args.getlist(key))
    v = args.get(key)
    if v is None:
        return []
    return list(v) if isinstance(v, (list, tuple)) else [v]


def first(args: Mapping[str, Any], key: str, default: str = "") -> str:
    return (getlist(args, key) or [default])[0]


def clean(value: str, name: str, limit: int) -> str:
    if "\x00" in value:
        raise RequestError(f"参数 {name} 含有非法字符", name)
    value = value.strip()
    if len(value) > limit:
        raise RequestError(f"参数 {name} 过长（最多 {limit} 个字符）", name)
    return value


# ASCII digits only. ``\d`` and ``str.isdigit()`` also accept other scripts' digits
# (fullwidth １, Arabic-Indic ٣) and superscripts (², which isdigit() accepts and
# int() refuses: that was a 500); our links never contain them, and one spelling
# per number keeps URLs (and caches) canonical.
_DIGITS = re.compile(r"[0-9]+")
_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def parse_positive_int(value: str, name: str, label: str, maximum: int, too_big: str | None = None) -> int:
    """A whole number 1..maximum written in ASCII digits, or a RequestError in words.

    Shared by every numeric URL parameter (``page``, an article's ``part``), so
    none of them can reach ``int()`` with something it refuses or that is huge.
    """
    value = clean(value, name, 40)
    if not _DIGITS.fullmatch(value):
        shown = "".join(c for c in value[:20] if c.isprintable())
        raise RequestError(f"{label}应为正整数，请用半角数字 0–9 书写（收到：{shown}）", name)
    digits = value.lstrip("0")
    if not digits:
        raise RequestError(f"{label}应为正整数，从 1 开始", name)
    if len(digits) > 9 or int(digits) > maximum:
        raise RequestError(too_big or f"{label}最大为 {maximum}", name)
    return int(digits)


def parse_day(value: str, name: str, label: str) -> date | None:
    """A YYYY-MM-DD day in ASCII digits, 1900–2100; None when empty."""
    value = clean(value, name, 40)
    if not value:
        return None
    if not _DAY.fullmatch(value):
        raise RequestError(f"{label}应为 YYYY-MM-DD 格式，用半角数字，例如 2024-03-15", name)
    try:
        d = date.fromisoformat(value)
    except ValueError:
        raise RequestError(f"{label}不存在：{value}", name) from None
    if not 1900 <= d.year <= 2100:
        raise RequestError(f"{label}超出范围（1900 年至 2100 年）", name)
    return d
