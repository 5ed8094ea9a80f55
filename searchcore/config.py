"""Settings, read from the environment in one place.

The indexer, the web app and docker-compose all read the same variables, so an
operator configures a deployment once.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

ENGINES = ("tantivy", "elasticsearch")


class ConfigError(ValueError):
    """A setting has a value we cannot use; the message says how to fix it."""


def _int(env: Mapping[str, str], name: str, default: int, lo: int, hi: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a whole number; use e.g. {name}={default}") from None
    if not lo <= value <= hi:
        raise ConfigError(f"{name}={value} is out of range; use a number from {lo} to {hi}")
    return value


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a number; use e.g. {name}={default}") from None


def _secret(env: Mapping[str, str], name: str) -> str | None:
    """``name``, or the contents of the file that ``name_FILE`` names (a Docker secret
    under /run/secrets, a systemd credential): a secret in a file shows neither in
    `docker inspect` nor in the process environment. One trailing newline (or any
    surrounding white space) is not part of it."""
    value = env.get(name) or None
    path = env.get(f"{name}_FILE") or None
    if path is None:
        return value
    if value is not None:
        raise ConfigError(f"both {name} and {name}_FILE are set: keep one")
    try:
        text = Path(path).read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError(f"{name}_FILE={path}: cannot read it ({exc.strerror}); check the path and who may read it") from None
    if not text:
        raise ConfigError(f"{name}_FILE={path} is empty: put the secret in it")
    return text


def _default_threads() -> int:
    return min(4, os.cpu_count() or 1)


@dataclass(frozen=True)
class Settings:
    """Everything configurable, with defaults that run on a fresh machine."""

    engine: str = "tantivy"
    data_dir: Path = Path("data")
    index: str = "news"
    elasticsearch_url: str = "http://127.0.0.1:9200"
    elasticsearch_api_key: str | None = None
    elasticsearch_username: str | None = None
    elasticsearch_password: str | None = None
    elasticsearch_ca_certs: str | None = None
    user_dict: Path | None = None
    page_size: int = 20
    max_page: int = 50
    title_boost: float = 3.0
    recency_weight: float = 0.1
    # how much an article's substance (its own text, boilerplate left out) weighs
    # against a one-line notice (× 2 at most; with recency's 0.1, × 2.14): the tiers
    # of searchcore.query multiply evidence by far more, so no prior overturns a tier
    substance_weight: float = 2.0
    facet_cache: int = 2048  # facet-count sets kept per process; 0 turns the cache off
    # threads one tantivy search may use (slices of a large query, facet counts); 1 = none
    search_threads: int = field(default_factory=_default_threads)
    # Elasticsearch index layout (SEARCH_SHARDS, SEARCH_REPLICAS). Replicas of a live
    # index: a rebuild loads with 0, restores this number, and swaps the alias only
    # once the new index is green (every replica allocated), or not at all: it
    # gives up after elasticsearch_green_timeout seconds without progress.
    search_shards: int = 1
    elasticsearch_replicas: int = 0
    elasticsearch_green_timeout: float = 120.0
    # The index's max_result_window: from+size beyond it walks with search_after
    # (deep pages stay cheap for the node).
    elasticsearch_max_result_window: int = 10000

    @property
    def elasticsearch_hosts(self) -> list[str]:
        """ELASTICSEARCH_URL as a list of nodes (comma-separated): the client spreads
        requests over them and retries another node when one cannot be reached."""
        return [u.strip() for u in self.elasticsearch_url.split(",") if u.strip()]

    def with_(self, **changes: Any) -> Settings:
        return replace(self, **changes)


def load_settings(env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
    """Build Settings from environment variables (prefix ``SEARCH_`` / ``ELASTICSEARCH_``).

    Explicit ``overrides`` (from command-line flags or test config) win over the
    environment; ``None`` values are ignored so unset flags fall through.
    """
    env = os.environ if env is None else env
    engine = (env.get("SEARCH_ENGINE") or "tantivy").strip().lower()
    user_dict = env.get("SEARCH_USER_DICT")
    settings = Settings(
        engine=engine,
        data_dir=Path(env.get("SEARCH_DATA_DIR") or "data"),
        index=(env.get("SEARCH_INDEX") or "news").strip(),
        elasticsearch_url=env.get("ELASTICSEARCH_URL") or "http://127.0.0.1:9200",
        elasticsearch_api_key=_secret(env, "ELASTICSEARCH_API_KEY"),
        elasticsearch_username=env.get("ELASTICSEARCH_USERNAME") or None,
        elasticsearch_password=_secret(env, "ELASTICSEARCH_PASSWORD"),
        elasticsearch_ca_certs=env.get("ELASTICSEARCH_CA_CERTS") or None,
        user_dict=Path(user_dict) if user_dict else None,
        page_size=_int(env, "SEARCH_PAGE_SIZE", 20, 1, 100),
        max_page=_int(env, "SEARCH_MAX_PAGE", 50, 1, 1000),
        title_boost=_float(env, "SEARCH_TITLE_BOOST", 3.0),
        recency_weight=_float(env, "SEARCH_RECENCY_WEIGHT", 0.1),
        substance_weight=_float(env, "SEARCH_SUBSTANCE_WEIGHT", 2.0),
        facet_cache=_int(env, "SEARCH_FACET_CACHE", 2048, 0, 1_000_000),
        search_threads=_int(env, "SEARCH_THREADS", _default_threads(), 1, 64),
        search_shards=_int(env, "SEARCH_SHARDS", 1, 1, 1024),
        elasticsearch_replicas=_int(env, "SEARCH_REPLICAS", 0, 0, 16),
        elasticsearch_green_timeout=_float(env, "SEARCH_GREEN_TIMEOUT", 120.0),
    )
    clean = {k: v for k, v in overrides.items() if v is not None}
    if "data_dir" in clean:
        clean["data_dir"] = Path(clean["data_dir"])
    if "user_dict" in clean:
        clean["user_dict"] = Path(clean["user_dict"])
    settings = replace(settings, **clean)
    if settings.engine not in ENGINES:
        raise ConfigError(f"unknown engine {settings.engine!r}: set SEARCH_ENGINE (or --engine) to one of {', '.join(ENGINES)}")
    if (
        not settings.index
        or not all(c.isalnum() or c in "-_" for c in settings.index)
        or settings.index != settings.index.lower()
    ):
        raise ConfigError(
            f"SEARCH_INDEX={settings.index!r} is not a usable index name: use lower-case letters, digits, '-' and '_'"
        )
    return settings
