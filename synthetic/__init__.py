"""Synthetic Chinese news posts in the target site's Jekyll format, for tests, benchmarks and the demo.

A development tool, kept out of ``searchcore``: nothing the product runs imports it.
The generator lives in :mod:`synthetic.generator`; the command line is
``python -m synthetic OUT_DIR -n 3000 --seed 1 --broken 0.01`` (``--help`` for the rest).
"""

from __future__ import annotations

from synthetic.generator import (
    ACCEPTED_KINDS,
    CATEGORIES,
    REJECTED_KINDS,
    SHARD_THRESHOLD,
    SyntheticPost,
    main,
    make_posts,
    write_corpus,
)

__all__ = [
    "ACCEPTED_KINDS",
    "CATEGORIES",
    "REJECTED_KINDS",
    "SHARD_THRESHOLD",
    "SyntheticPost",
    "main",
    "make_posts",
    "write_corpus",
]
