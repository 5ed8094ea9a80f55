"""Text from the posts folder made safe for an operator's terminal.

File names and reasons come from whoever fills the posts folder: a name with a
newline could forge a ``REJECTED`` line, an escape sequence could recolour or
clear the screen, a bidi override could make one name read as another.
"""

from __future__ import annotations

import re

_UNSHOWABLE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_SHORT = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(m: re.Match) -> str:
    c = m.group()
    if c in _SHORT:
        return _SHORT[c]
    return f"\\x{ord(c):02x}" if ord(c) < 0x100 else f"\\u{ord(c):04x}"


def shown(text: str) -> str:
    """``text`` made safe for one line of a terminal: controls and bidi marks escaped
    (``\\n``, ``\\x1b``, ``\\u202e``), so no file name can forge a line or recolour
    the screen. Names that are not UTF-8 come out with ``\\udcxx`` escapes. For the
    screen only: the ledger and the JSON keep names exactly."""
    text = _UNSHOWABLE.sub(_escape, text)
    if not text.isascii():
        text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text
