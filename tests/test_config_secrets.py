"""Secrets from files (ELASTICSEARCH_PASSWORD_FILE, ELASTICSEARCH_API_KEY_FILE): how
docker-compose.yml hands the app and the indexer their credentials (Docker secrets
under /run/secrets), so that `docker inspect` shows a path, never a password."""

from __future__ import annotations

from pathlib import Path

import pytest

from searchcore.config import ConfigError, load_settings


@pytest.mark.parametrize(
    "name, field", [("ELASTICSEARCH_PASSWORD", "elasticsearch_password"), ("ELASTICSEARCH_API_KEY", "elasticsearch_api_key")]
)
def test_a_secret_is_read_from_the_file_its_variable_names(tmp_path: Path, name: str, field: str) -> None:
    secret = tmp_path / "secret"
    secret.write_text("s3cret-value\n", encoding="utf-8")  # as `openssl rand -hex 24 > file` writes it
    assert getattr(load_settings({f"{name}_FILE": str(secret)}), field) == "s3cret-value"
    # The plain variable still works, and neither means no secret.
    assert getattr(load_settings({name: "plain"}), field) == "plain"
    assert getattr(load_settings({}), field) is None


def test_a_secret_file_that_cannot_be_used_is_an_error_that_says_why(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    with pytest.raises(ConfigError, match="ELASTICSEARCH_PASSWORD_FILE=.*nope.*cannot read"):
        load_settings({"ELASTICSEARCH_PASSWORD_FILE": str(missing)})
    empty = tmp_path / "empty"
    empty.write_text("\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="is empty"):
        load_settings({"ELASTICSEARCH_PASSWORD_FILE": str(empty)})
    empty.write_text("x", encoding="utf-8")
    with pytest.raises(ConfigError, match="both ELASTICSEARCH_PASSWORD and ELASTICSEARCH_PASSWORD_FILE"):
        load_settings({"ELASTICSEARCH_PASSWORD_FILE": str(empty), "ELASTICSEARCH_PASSWORD": "y"})
