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

from .analysis import Term, query_words


@dataclass(frozen=True)
class Tokens:
    """Tokens of one stream: one token is a term lookup; several are a phrase
    (consecutive positions). ``at`` lists the positions that suffice to match the
    phrase (see ``substring``); an engine may look up only those. ``slop`` > 0
    makes the phrase a window: Lucene's sloppy phrase, which both engines share
    (each token may move that many positions in all, a swap of two costing 2)."""

    field: str
    tokens: tuple[str, ...]
    boost: float = 1.0
    at: tuple[int, ...] = ()
    slop: int = 0

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


def _positioned(term: Term) -> tuple[str, ...]:
    """``term``'s words as the words streams hold them (``analysis.joined``)."""
    return tuple(w.replace(" ", "_") for w in term.words)


def words(field: str, term: Term, boost: float = 1.0) -> Clause:
    """All of ``term``'s dictionary words in the words stream ``field`` (spelled as
    ``analysis.joined`` indexes them: a space inside a token is ``_``)."""
    tokens = _positioned(term)
    if len(tokens) == 1:
        return Tokens(field, tokens, boost)
    return Bool(must=tuple(Tokens(field, (w,)) for w in tokens), boost=boost)


# Tiers multiply: a kind of match multiplies its evidence by its tier, so each kind
# ranks above the next on every page of a relevance order, while within a kind the
# order is still evidence × priors (an added constant would leave only the priors to
# decide: a long article naming 芯片 once would beat the article about chips). A
# tier exceeds the ratio of the most to the least evidence two articles of adjacent
# kinds can have, times the largest ratio of priors (about 2.1 with the defaults).
# - EXACT: a term of several words as typed (its characters, in the title or the
#   body), above its words only in the title or near each other (a floor of 1 under
#   the evidence, since the evidence may be small);
# - WORD: a one-word term on word boundaries (its dictionary word) above the same
#   characters across words (台海 in 台海局势 above 台海军 = 台 | 海军, 舞台海报);
# - PROXIMITY: a spaced query's terms side by side in the order typed (香港 国安法
#   in …香港国安法…) above the same terms apart, as Meilisearch ranks by proximity;
#   it multiplies the window's own BM25 (see ``proximity``), which must outweigh
#   every term's tiers, hence its size (scores stay far inside float32's range).
EXACT_TIER = 10_000.0
WORD_TIER = 10_000.0
PROXIMITY_TIER = 100_000_000.0

# A term's words near each other in a body: a window of Lucene's sloppy phrase. 4
# takes them in order with up to four words between (HPV疫苗三剂接种 for 疫苗接种)
# or reversed with one between (接种狂犬疫苗); further apart is "in passing".
NEAR_SLOP = 4
# The terms of a spaced query next to each other: one word between, or two
# neighbours swapped.
PROXIMITY_SLOP = 2


def tier(condition: Clause, evidence: tuple[Clause, ...], times: float) -> Bool:
    """Articles matching ``condition``, scored ``times`` × (1 + ``evidence``)."""
    return Bool(must=(Constant(condition, 1.0),), should=evidence, boost=times)


# What a title naming the term adds, times SEARCH_TITLE_BOOST: a constant, about what
# a body that is about the term scores. Not BM25: over a few words its length
# normalization makes the shortest title win, and a one-line notice titled 碳中和
# would outrank every article about 碳中和 whatever their bodies say.
TITLE_POINTS = 2.0


def term_clause(term: Term, title_boost: float, body_words_only: bool = False) -> Bool:
    """One reader's term, as a reader means it: the characters as typed, in the
    title or the body; all its dictionary words in the title (a headline with 天津
    and 产教融合 is about 天津产教融合 even though the string is not there); or its
    words near each other in the body (接种HPV疫苗 is about 疫苗接种). Its words
    scattered over a body are no match: 新冠 in one paragraph and 疫苗 in another is
    not an article about 新冠疫苗.

    Tiers order the kinds of match (see ``EXACT_TIER``); within a kind, the body's
    evidence (BM25 over its words) and a title naming the term (``TITLE_POINTS``).
    ``body_words_only`` (related articles) matches any word of the title in
    titles or bodies instead, without tiers.
    """
    if body_words_only:
        extra = (words("title_words", term, title_boost * 2), words("body_words", term, 2.0)) if term.words else ()
        return Bool(should=(substring("title", term, title_boost), *extra))
    title, body = substring("title", term), substring("body", term)
    in_title = Constant(title, title_boost * TITLE_POINTS)
    if not term.words:
        # A quoted phrase matches as typed only; its body evidence is its words
        # (BM25 over a phrase of pairs differs between the engines: tantivy reads
        # only the pairs of ``at``).
        evidence = replace(term, words=tuple(query_words(term.text)))
        found = Bool(should=(in_title, Constant(body, 1.0)))
        return Bool(must=(found,), should=(words("body_words", evidence, 2.0),) if evidence.words else ())
    if term.words == (term.text,):
        # One word: every match is as typed; on word boundaries its evidence is
        # multiplied (not for one character: 美 for 美国 is what a reader means).
        # Four term lookups in a plain union, what tantivy's top-k prunes (block-max
        # WAND): constant title clauses cost 经济 or 人数 ×1.35 in CPU at 100,000
        # articles, so the title is BM25 here, at a weight low enough that its
        # length normalization no longer outweighs the body (the graded set: 0.926
        # against 0.925 with constants).
        times = WORD_TIER if len(term.chars) > 1 else 1.0
        weight = title_boost * TITLE_POINTS / 4
        whole = (words("title_words", term, weight * times), words("body_words", term, 2.0 * times))
        return Bool(should=(substring("title", term, weight), body, *whole))
    words_in_title = Constant(words("title_words", term), title_boost * TITLE_POINTS)
    body_words = words("body_words", term, 2.0)
    exact = tier(Bool(should=(title, body)), (in_title, words_in_title, body_words), EXACT_TIER)
    # Below the tier, a title naming the term and words near each other score
    # constants: their order is the priors' (the body's BM25 again would read every
    # body's words a second time, ×1.15 in CPU, for no change in the graded set).
    near = Constant(Tokens("body_words", _positioned(term), slop=NEAR_SLOP), 1.0)
    return Bool(should=(exact, in_title, words_in_title, near))


def text_query(terms: Iterable[Term], title_boost: float, any_terms: bool = False, body_words_only: bool = False) -> Clause:
    """The scored part of a search: every term (or, ``any_terms``, any of them)
    and none of the excluded ones; everything when there are no terms."""
    terms = list(terms)
    positive = [t for t in terms if not t.negate]
    wanted = [term_clause(t, title_boost, body_words_only) for t in positive]
    excluded = [term_clause(t, title_boost, body_words_only) for t in terms if t.negate]
    if not wanted and not excluded:
        return MatchAll()
    if any_terms and wanted:
        return Bool(should=tuple(wanted), must_not=tuple(excluded))
    if not excluded and len(wanted) == 1:
        return wanted[0]
    return Bool(must=tuple(wanted) or (MatchAll(),), should=proximity(positive), must_not=tuple(excluded))


def proximity(wanted: list[Term]) -> tuple[Clause, ...]:
    """A spaced query's terms side by side, in the order typed (``香港 国安法`` is
    about 香港国安法 more than an article with 香港 in its first line and a British
    国安法 in its last): a window over the words of titles and bodies, its own BM25
    (how often the terms stand together) times ``PROXIMITY_TIER``. Not a copy of
    the terms' clauses as its evidence (``tier``): that read every term twice and
    cost 经济 发展 ×2 in CPU; nothing for one term or a quoted one."""
    if len(wanted) < 2 or any(not t.words for t in wanted):
        return ()
    tokens = tuple(w for t in wanted for w in _positioned(t))
    return tuple(Tokens(f, tokens, PROXIMITY_TIER, slop=PROXIMITY_SLOP) for f in ("title_words", "body_words"))


def filtered(match: Clause, filters: tuple[Filter, ...]) -> Clause:
    """``match`` restricted by ``filters`` (scored 0), in one Bool where it can be."""
    if not filters:
        return match
    if isinstance(match, MatchAll):
        return Bool(filter=filters)
    if isinstance(match, Bool) and match.boost == 1.0 and not match.filter:
        return replace(match, filter=filters)
    return Bool(must=(match,), filter=filters)
