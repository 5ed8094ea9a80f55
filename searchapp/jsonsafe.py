"""JSON that is safe even where a browser might mis-sniff it as HTML.

Echoed input (the query, filter values) is returned verbatim in the API; escaping
``<``, ``>`` and ``&`` as ``\\u003c``-style sequences keeps the same JSON value while
no byte of it can open a tag, as Go's encoding/json does by default.
"""

from __future__ import annotations

from typing import Any

from flask.json.provider import DefaultJSONProvider

_ESCAPES = {ord("<"): "\\u003c", ord(">"): "\\u003e", ord("&"): "\\u0026"}


class SafeJSONProvider(DefaultJSONProvider):
    ensure_ascii = False
    sort_keys = False

    def dumps(self, obj: Any, **kwargs: Any) -> str:
        return super().dumps(obj, **kwargs).translate(_ESCAPES)
