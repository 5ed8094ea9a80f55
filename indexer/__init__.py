"""The operators' indexer: a folder of Jekyll posts into a search engine.

``indexer index PATH`` (incremental), ``indexer reindex PATH`` (full rebuild with
zero downtime) and ``indexer status``; see ``indexer --help``.
"""
