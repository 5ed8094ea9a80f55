"""The readers' web app: Flask + htmx search over Chinese news.

``create_app()`` is the factory (``flask --app searchapp run``,
``gunicorn 'searchapp:create_app()'``). It reads the same environment variables
as the indexer (see ``searchcore.config``). Readers reach only search and
article pages; no operator action is routed here.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import Flask
from htmx_flask import Htmx

from searchcore.analysis import load_user_dict
from searchcore.config import load_settings
from searchcore.search import SearchRequest

from . import caching, errors, security, urls, views
from .jsonsafe import SafeJSONProvider
from .state import init_app as init_state

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"


class SearchApp(Flask):
    json_provider_class = SafeJSONProvider


def create_app(test_config: Mapping[str, Any] | None = None) -> Flask:
    app = SearchApp(__name__, template_folder=str(TEMPLATES))
    app.config.from_mapping(
        MAX_CONTENT_LENGTH=16 * 1024,  # readers send GETs; no uploads are accepted
        MAX_QUERY_STRING=4096,
        SETTINGS_OVERRIDES={},
    )
    if test_config:
        app.config.from_mapping(test_config)
    settings = load_settings(**app.config["SETTINGS_OVERRIDES"])
    app.config["SETTINGS"] = settings
    load_user_dict(settings.user_dict)
    Htmx(app)
    init_state(app)
    security.init_app(app)
    caching.init_app(app)
    errors.init_app(app)
    app.register_blueprint(views.bp)

    @app.get("/favicon.ico")
    def favicon():
        """Pages name their icon (static/favicon.svg), but a browser showing a JSON answer
        asks for /favicon.ico: the same icon, rather than a 404 in the reader's console."""
        return app.send_static_file("favicon.svg")

    app.jinja_env.trim_blocks = True
    app.jinja_env.lstrip_blocks = True
    # Pages without a search (errors) still render the search box, empty.
    app.jinja_env.globals["req"] = SearchRequest()
    app.jinja_env.globals["url_for"] = urls.link
    app.jinja_env.globals["tuple_without"] = lambda items, item: tuple(i for i in items if i != item)
    if not (Path(app.static_folder or "") / "vendor" / "htmx.min.js").exists():
        logging.getLogger(__name__).warning(
            "htmx is not installed (searchapp/static/vendor/htmx.min.js): pages work without JavaScript; run scripts/setup.sh"
        )
    return app
