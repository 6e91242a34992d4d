"""Killing `storyline run` with SIGKILL loses no committed article and duplicates none; the next run
completes. bench/kill_test.py does this over many iterations; this keeps a short version in CI."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.kill_test import run

pytestmark = pytest.mark.slow


def test_runs_killed_at_random_points_lose_and_duplicate_nothing(tmp_path: Path) -> None:
    report = run(tmp_path, iterations=3, seed=7, sources=4, per_round=8)
    assert report.problems == []
    assert report.articles == report.served
    assert report.killed >= 1
    assert report.processes_left == 0
