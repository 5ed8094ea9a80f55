"""Per-process engine and searcher, opened lazily so the app starts (and reports
503) even when the engine is down, and recovers when it comes back."""

from __future__ import annotations

from flask import Flask, current_app

from searchcore.engines import Engine, open_engine
from searchcore.search import Searcher


def init_app(app: Flask) -> None:
    app.extensions["newsearch"] = {"engine": None, "searcher": None}


def get_searcher() -> Searcher:
    ext = current_app.extensions["newsearch"]
    if ext["searcher"] is None:
        settings = current_app.config["SETTINGS"]
        engine: Engine = open_engine(settings)
        ext["engine"] = engine
        ext["searcher"] = Searcher(engine, settings)
    return ext["searcher"]
