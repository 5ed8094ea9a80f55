"""The search core: analysis, the article and search models, the engine protocol and
the engines.

It imports neither Flask nor click, so the indexer (operators) and the web app
(readers) share one definition of what an article is and how Chinese text is
matched, and either can be tested without the other.
"""
