"""The query as a neutral clause tree, built once here; each engine translates it.

A reader's terms become clauses over the token streams of ``searchcore.fields``
(which stream, which tokens, term or phrase, which boost): the matching and
ranking policy (substring over chars or pairs, whole words, titles above
bodies, words above substrings) is written here once and nowhere in an engine.
Filters are clauses too (a set of values, a date range); they decide membership
only and score nothing, in both engines.

Semantics every translation keeps: a ``Bool`` matches when every ``must`` and
``filter`` clause matches, no ``must_not`` clause does, and, when it has no
``must`` clause, at least one ``should`` clause does (with ``must`` clauses the
``should`` ones only add to the score). ``filter`` clauses score 0.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime

from .analysis import Term


@dataclass(frozen=True)
class Tokens:
    """Tokens of one stream: one token is a term lookup; several are a phrase
    (consecutive positions). ``at`` lists the positions that suffice to match the
    phrase (see ``substring``); an engine may look up only those."""

    field: str
    tokens: tuple[str, ...]
    boost: float = 1.0
    at: tuple[int, ...] = ()

    @property
    def phrase(self) -> bool:
        return len(self.tokens) > 1


@dataclass(frozen=True)
class Bool:
    must: tuple[Clause, ...] = ()
    should: tuple[Clause, ...] = ()
    must_not: tuple[Clause, ...] = ()
    filter: tuple[Clause, ...] = ()
    boost: float = 1.0


@dataclass(frozen=True)
class MatchAll:
    pass


@dataclass(frozen=True)
class Constant:
    """Matches what ``clause`` matches, scoring ``score`` whatever its own score:
    a tier, not evidence (see ``EXACT_TIER``)."""

    clause: Clause
    score: float


@dataclass(frozen=True)
class AnyValue:
    """Filter: the field holds any of ``values`` (a keyword field)."""

    field: str
    values: tuple[str, ...]


@dataclass(frozen=True)
class DateRange:
    """Filter: ``lo`` <= field < ``hi`` (aware datetimes); None leaves a side open."""

    field: str
    lo: datetime | None = None
    hi: datetime | None = None


Clause = Tokens | Bool | MatchAll | Constant | AnyValue | DateRange
Filter = AnyValue | DateRange


def substring(field: str, term: Term, boost: float = 1.0) -> Tokens:
    """``term`` as a substring of ``field`` (``title`` or ``body``): one character is
    a chars term; two are one pairs term; more a phrase of pairs. Pairs overlap,
    so every other pair and the last cover every character: 呼和@0 浩特@2 says
    呼和浩特 with two lookups instead of three."""
    stream, tokens = term.substring
    at: tuple[int, ...] = ()
    if len(tokens) > 1:
        every_other = list(range(0, len(tokens), 2))
        if every_other[-1] != len(tokens) - 1:
            every_other.append(len(tokens) - 1)
        at = tuple(every_other)
    return Tokens(f"{field}_{stream}", tokens, boost, at)


def words(field: str, term: Term, boost: float = 1.0) -> Clause:
    """All of ``term``'s dictionary words in the words stream ``field`` (spelled as
    ``analysis.joined`` indexes them: a space inside a token is ``_``)."""
    tokens = [w.replace(" ", "_") for w in term.words]
    if len(tokens) == 1:
        return Tokens(field, (tokens[0],), boost)
    return Bool(must=tuple(Tokens(field, (w,)) for w in tokens), boost=boost)


# What an exact match of a term adds to the score: more than any evidence the other
# clauses can give (a few hundred at most) times the largest recency multiplier
# (log2(2 + 1) ≈ 1.6), so every article containing the term as typed ranks above
# every article that only has its words, on every page of a relevance order.
EXACT_TIER = 10_000.0


def term_clause(term: Term, title_boost: float, body_words_only: bool = False) -> Bool:
    """One reader's term, as a reader means it: the characters as typed, in the
    title or the body; or all its dictionary words in the title (a headline with
    天津 and 产教融合 is about 天津产教融合 even though the string is not there).
    All its words scattered over a body are no match: 新冠 in one paragraph and
    疫苗 in another is not an article about 新冠疫苗.

    An exact match scores ``EXACT_TIER`` (in the title and in the body, twice), so
    exact matches come first; within a tier, whole words and titles rank higher.
    The substring over bodies (a phrase of pairs over every body, the costliest
    clause at scale) is read once: it decides the tier and scores nothing else;
    bodies' evidence is their whole words. ``body_words_only`` (related articles)
    matches any word of the title in titles or bodies instead, without it.
    """
    title = substring("title", term, title_boost)
    title_words = (words("title_words", term, title_boost * 2),) if term.words else ()
    body_words = (words("body_words", term, 2.0),) if term.words else ()
    if body_words_only:
        return Bool(should=(title, *title_words, *body_words))
    if not term.words or term.words == (term.text,):
        # One word (or a quoted phrase): every match is exact, there is no tier to
        # keep, and the plain union is what tantivy's top-k prunes best (a constant
        # clause costs common one-word queries half as much again).
        return Bool(should=(title, substring("body", term), *title_words, *body_words))
    accepted = (Constant(substring("title", term), EXACT_TIER), Constant(substring("body", term), EXACT_TIER), title)
    return Bool(must=(Bool(should=(*accepted, *title_words)),), should=body_words)


def text_query(terms: Iterable[Term], title_boost: float, any_terms: bool = False, body_words_only: bool = False) -> Clause:
    """The scored part of a search: every term (or, ``any_terms``, any of them)
    and none of the excluded ones; everything when there are no terms."""
    wanted, excluded = [], []
    for t in terms:
        (excluded if t.negate else wanted).append(term_clause(t, title_boost, body_words_only))
    if not wanted and not excluded:
        return MatchAll()
    if any_terms and wanted:
        return Bool(should=tuple(wanted), must_not=tuple(excluded))
    if not excluded and len(wanted) == 1:
        return wanted[0]
    return Bool(must=tuple(wanted) or (MatchAll(),), must_not=tuple(excluded))


def filtered(match: Clause, filters: tuple[Filter, ...]) -> Clause:
    """``match`` restricted by ``filters`` (scored 0), in one Bool where it can be."""
    if not filters:
        return match
    if isinstance(match, MatchAll):
        return Bool(filter=filters)
    if isinstance(match, Bool) and match.boost == 1.0 and not match.filter:
        return replace(match, filter=filters)
    return Bool(must=(match,), filter=filters)
