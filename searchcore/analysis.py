"""Chinese text analysis, shared by the indexer, the query path and every engine.

Engines never segment text themselves: they receive the tokens made here, so every
engine matches the same words and the highlighter marks the same text whichever
engine answered.

Two token streams are made from each field:

* **words**: rjieba (jieba's dictionary and algorithm, compiled) in search mode,
  which emits a long word and its dictionary sub-words (中华人民共和国, 中华, 人民 …),
  less those that straddle the long word's own split (华人 in 中华 | 人民: see
  ``_subwords``). Whole-word matches rank high.
* **chars**: one token per CJK character (and per run of Latin letters or digits),
  so single characters such as 津 are found.
* **pairs**: each two adjacent chars tokens as one token (经济, 济发, 2022_年). A
  two-character query is one term lookup, a longer one a phrase of pairs, so any
  substring is found (职教, and 国国 where segmentation split 中国|国债) at a
  fraction of the cost of a phrase of single characters: a pair is far rarer
  than either of its characters, and at a million articles that is the
  difference between reading every posting of 经 and 济 and reading those of 经济.

Normalization keeps the text's length, character for character (NFKC, lower-case,
traditional to simplified), so offsets found in normalized text are offsets in the
original: highlighting never cuts a character in half.
"""

from __future__ import annotations

import array
import re
import threading
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import opencc
import rjieba

Token = tuple[str, int, int]  # (text, start, end) in characters of the field text

_WORDISH = re.compile(r"[^\W_]")
_CHAR_TOKENS = re.compile(r"[0-9a-z]+|[^\W_]")
_QUERY_ITEMS = re.compile(r'(-?)"([^"]*)"?|(\S+)')

_t2s = opencc.OpenCC("t2s")
_t2s_lock = threading.Lock()
_user_dict_loaded: set[str] = set()


def _build_table() -> dict[int, str]:
    """NFKC + lower-case per character, only where the result is one character."""
    table: dict[int, str] = {}
    for cp in range(0x20, 0x30000):
        if 0xD800 <= cp <= 0xDFFF:
            continue
        ch = chr(cp)
        mapped = unicodedata.normalize("NFKC", ch).lower()
        if len(mapped) != 1:
            low = ch.lower()
            mapped = low if len(low) == 1 else ch
        if mapped != ch:
            table[cp] = mapped
    return table


_TABLE = _build_table()


@lru_cache(maxsize=8192)
def _t2s_char(ch: str) -> str:
    out = _t2s.convert(ch)
    return out if len(out) == 1 else ch


# Normalizing is on every hot path: each article's text at index time, and each
# hit's title and body when a page is highlighted. ``str.translate`` with a dict
# costs a dictionary look-up per character (about 110 ns: 240 µs for a 2,200-
# character body, against OpenCC's 60-100 µs), which made normalizing the ten
# bodies of a page the largest cost of a search after the engine itself. The
# same mapping as a lookup array over code points costs about 5 ns a character.
# (OpenCC itself cannot be skipped for texts that look simplified: its phrase
# table converts characters that it keeps when alone, 回覆 -> 回复.)
_FOLD = np.arange(0x110000, dtype=np.uint32)
_FOLD[np.fromiter(_TABLE, dtype=np.uint32)] = np.fromiter((ord(c) for c in _TABLE.values()), dtype=np.uint32)
_ARRAY_MIN_CHARS = 48  # below this, the arrays' fixed cost exceeds translate's


def to_simplified(text: str) -> str:
    """Traditional to simplified with OpenCC, keeping the length unchanged.

    OpenCC converts phrase by phrase (better than char by char); on the rare
    phrase where that changes the length we fall back to char by char for the
    whole string, because offsets must stay aligned with the original.
    """
    if text.isascii():
        return text
    with _t2s_lock:
        out = _t2s.convert(text)
    if len(out) == len(text):
        return out
    return "".join(_t2s_char(c) for c in text)


def normalize(text: str) -> str:
    """NFKC, lower-case, simplified; same length as ``text``."""
    if len(text) < _ARRAY_MIN_CHARS:
        return to_simplified(text.translate(_TABLE))
    folded = _FOLD[np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)]
    return to_simplified(folded.tobytes().decode("utf-32-le"))


def load_user_dict(path: Path | None) -> int:
    """Add an operator's words (one per line: ``word [freq] [tag]``) to the segmenter.

    Missing files are not an error (the default is none); each file is loaded
    once per process. Returns how many words were added.
    """
    if path is None:
        return 0
    key = str(Path(path).resolve())
    if key in _user_dict_loaded or not Path(path).is_file():
        return 0
    added = 0
    for line in Path(path).read_text(encoding="utf-8-sig").splitlines():
        parts = line.split()
        if not parts or parts[0].startswith("#"):
            continue
        word = normalize(parts[0])
        freq = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None
        tag = parts[2] if len(parts) > 2 else None
        rjieba.add_word(word, freq, tag)
        added += 1
    _user_dict_loaded.add(key)
    return added


def word_tokens(norm: str) -> list[Token]:
    """``word_stream``'s tokens with character offsets: search-mode words, without
    punctuation, spaces and sub-words that straddle their word's split."""
    out: list[Token] = []
    for t in rjieba.tokenize(norm, mode="search"):
        if not _WORDISH.search(t[0]):
            continue
        if len(t[0]) > 2 and out:
            _drop_straddling(out, t[0], lambda x: x[0])
        out.append(t)
    return out


def char_tokens(norm: str) -> list[Token]:
    """One token per CJK character; one per run of ASCII letters or digits."""
    return [(m.group(), m.start(), m.end()) for m in _CHAR_TOKENS.finditer(norm)]


def query_words(norm: str) -> list[str]:
    """Precise-mode words of a query term (the index holds search-mode words,
    which include every precise-mode word)."""
    return [w for w in rjieba.cut(norm) if _WORDISH.search(w)]


@dataclass(frozen=True)
class Analysed:
    """A field's normalized text and its two token streams."""

    norm: str
    words: list[Token]
    chars: list[Token]


def joined(tokens: list[Token]) -> str:
    """Tokens as one space-separated string: what the engines index.

    Both engines split it on whitespace in native code (tantivy's whitespace
    tokenizer, Elasticsearch's whitespace analyzer), so positions are our token
    order and nothing is re-segmented; a string also crosses process boundaries
    far more cheaply than a list of tuples.
    """
    return " ".join(t.replace(" ", "_") for t, _, _ in tokens)


@lru_cache(maxsize=65536)
def _subwords(word: str) -> tuple[tuple[str, ...], tuple[bool, ...]]:
    """The sub-words search mode emits for ``word`` (before it), and which to keep:
    not one that straddles the word's own split. 中华人民共和国 splits 中华 | 人民 |
    共和国 (from the left, the longest sub-word each time), so 华人 is not in it:
    an article about the People's Republic is not about 华人 (overseas Chinese),
    though search mode emits it. Its characters still match as a substring."""
    toks = [t for t in rjieba.tokenize(word, mode="search") if t[0] != word]
    longest: dict[int, int] = {}
    for _, a, b in toks:
        longest[a] = max(longest.get(a, a), b)
    cuts, pos = [], 0
    while pos in longest and longest[pos] < len(word):
        pos = longest[pos]
        cuts.append(pos)
    return tuple(t[0] for t in toks), tuple(not any(a < c < b for c in cuts) for _, a, b in toks)


def _drop_straddling(out: list, word: str, text: Callable[[Any], str]) -> None:
    """When ``out`` (the tokens so far; ``text`` reads one) ends with the sub-words
    search mode emitted for ``word``, drop those that straddle its split."""
    last = text(out[-1])
    if len(last) >= len(word) or last not in word:
        return
    emitted, keep = _subwords(word)
    n = len(emitted)
    if all(keep) or tuple(text(x) for x in out[-n:]) != emitted:
        return
    out[-n:] = [x for x, k in zip(out[-n:], keep, strict=True) if k]


def word_stream(norm: str) -> str:
    """The words stream: search-mode words, without sub-words that straddle their
    word's own split (``_subwords``); ``word_tokens`` gives the same tokens with
    offsets. Strings only (no offset tuples): it runs for every article indexed."""
    out: list[str] = []
    for w in rjieba.cut_for_search(norm):
        if not (w.isalnum() or _WORDISH.search(w)):
            continue
        if len(w) > 2 and out and out[-1] in w:  # the common case decided without a call
            _drop_straddling(out, w, str)
        out.append(w.replace(" ", "_") if " " in w else w)
    return " ".join(out)


def char_stream(norm: str) -> str:
    """joined(char_tokens(norm)), without building offset tuples."""
    return " ".join(_CHAR_TOKENS.findall(norm))


def pair(a: str, b: str) -> str:
    """Two adjacent chars tokens as one token: ``a`` and ``b`` joined, with ``_``
    after ``a`` when ``a`` is a Latin or digit run (no token holds ``_``), so
    ``1.23`` (1, 23) and ``12.3`` (12, 3) make different pairs: 123 and 12_3."""
    return f"{a}_{b}" if len(a) > 1 else a + b


_RUN = re.compile(r"(\S\S+)")  # a chars token of two or more characters: a Latin or digit run


def _interleave(t: str) -> str:
    """``"abcd"`` → ``"ab bc cd"``: the pairs of a run of one-character tokens,
    made by strided copies of UTF-32 code units (no Python object per pair)."""
    src = array.array("I", t.encode("utf-32-le"))
    out = array.array("I", b" \0\0\0" * (3 * (len(t) - 1)))
    out[0::3] = src[:-1]
    out[1::3] = src[1:]
    return out.tobytes()[:-4].decode("utf-32-le")


def pair_stream(chars: str) -> str:
    """The pairs of a space-joined chars stream, space-joined: the same tokens as
    ``pair`` over each two neighbours.

    Runs for every article indexed, so it avoids one Python object per
    token: runs of one-character tokens (nearly all of Chinese text) are paired
    by ``_interleave``; only the few Latin and digit runs are handled one by one.
    """
    out: list[str] = []
    prev: str | None = None
    for i, part in enumerate(_RUN.split(chars)):
        if i % 2:  # a Latin or digit run
            if prev is not None:
                out.append(pair(prev, part))
            prev = part
            continue
        seg = part.strip(" ")
        if not seg:
            continue
        singles = seg[::2]  # "a b c" → "abc": one-character tokens, one space apart
        if prev is not None:
            out.append(pair(prev, singles[0]))
        if len(singles) > 1:
            out.append(_interleave(singles))
        prev = singles[-1]
    return " ".join(out)


def analyse(text: str) -> Analysed:
    norm = normalize(text)
    return Analysed(norm, word_tokens(norm), char_tokens(norm))


@dataclass(frozen=True)
class Term:
    """One item of a reader's query, ready for any engine.

    ``chars`` is the phrase that must appear as a substring; ``words`` the
    dictionary words that also match when all are present. A quoted phrase
    (``exact``) matches by ``chars`` only.
    """

    text: str
    chars: tuple[str, ...]
    words: tuple[str, ...]
    exact: bool = False
    negate: bool = False

    @property
    def pairs(self) -> tuple[str, ...]:
        """The term as pairs (see ``pair``): one for two characters, n-1 for n."""
        return tuple(pair(a, b) for a, b in zip(self.chars, self.chars[1:], strict=False))

    @property
    def substring(self) -> tuple[str, tuple[str, ...]]:
        """Where the engines look for the term as a substring: ``("chars", (c,))``
        for one character, else ``("pairs", pairs)``; one token is a term lookup,
        more are a phrase."""
        if len(self.chars) == 1:
            return "chars", self.chars
        return "pairs", self.pairs


MAX_TERMS = 16


def parse_query(q: str) -> list[Term]:
    """Split a query into terms: ``"quoted phrase"``, ``-excluded``, plain words.

    Whitespace separates terms (all must match); a term of mixed Chinese,
    Latin and digits (GDP增长6.5%, COVID-19) stays one term. Terms with no
    letters, digits or characters (lone punctuation) are dropped, so hostile
    syntax never reaches an engine as syntax.
    """
    terms: list[Term] = []
    for m in _QUERY_ITEMS.finditer(normalize(q)):
        if m.group(3) is not None:
            raw, exact, negate = m.group(3), False, False
            if raw.startswith("-") and len(raw) > 1:
                raw, negate = raw[1:], True
        else:
            raw, exact, negate = m.group(2), True, m.group(1) == "-"
        chars = tuple(t for t, _, _ in char_tokens(raw))
        if not chars:
            continue
        text = raw.strip()
        words = () if exact else tuple(query_words(text))
        terms.append(Term(text=text, chars=chars, words=words, exact=exact, negate=negate))
        if len(terms) >= MAX_TERMS:
            break
    return terms
