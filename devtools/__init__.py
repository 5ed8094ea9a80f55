"""Tools for developers, tests and benchmarks; never part of the product.

``tests/`` and ``bench/`` both import from here, and never from each other: what
they share (a free port, stopping a server's process group, the slow-client
attack, the graded ranking evaluation) is written once, here. The product
(``searchcore``, ``indexer``, ``searchapp``) never imports this package, and it is
not installed with it (pyproject's package list leaves it out; the image copies
only the product's folders). tests/test_layers.py checks both rules.

``devtools.esnode`` (behind ``scripts/es-node.sh``) uses the standard library only,
so it runs with any ``python3`` >= 3.11, before the project's venv exists.
"""
