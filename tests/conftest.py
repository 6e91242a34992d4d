"""Shared fixtures: one Prefect test server per session, isolated settings per test."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from devkit.feed_server import feed_server  # noqa: F401  (fixture)
from flows.runtime import configure_environment

configure_environment()
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")

REPO = Path(__file__).resolve().parent.parent
SAMPLES = REPO / "samples"
# The int8 ONNX export is cached per machine; tests keep theirs out of the user's cache.
os.environ.setdefault("XDG_CACHE_HOME", str(REPO / ".pytest_cache" / "xdg"))


@pytest.fixture(scope="session")
def prefect_harness(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Real Prefect flows against a throwaway API database and result store.

    The harness swaps only the API database; result storage is pointed at a temp
    dir too so cached results never leak between sessions.
    """
    from prefect.settings import PREFECT_RESULTS_LOCAL_STORAGE_PATH, temporary_settings
    from prefect.testing.utilities import prefect_test_harness

    results = tmp_path_factory.mktemp("prefect-results")
    with (
        temporary_settings({PREFECT_RESULTS_LOCAL_STORAGE_PATH: results}),
        prefect_test_harness(server_startup_timeout=120),
    ):
        yield


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "storyline.duckdb"


@pytest.fixture
def make_settings(tmp_path: Path, db_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Settings pointing at a temp database; keyword overrides as in load_settings."""
    from pipeline.settings import load_settings

    # Nothing from the developer's environment or a storyline.toml may leak in.
    for key in list(os.environ):
        if key.startswith("STORYLINE_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)

    def make(**overrides):
        overrides.setdefault("db", db_path)
        return load_settings(**overrides)

    return make
