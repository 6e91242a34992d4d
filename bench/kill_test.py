"""Crash safety: SIGKILL `storyline run` at random points, many times, then check the database.

    .venv/bin/python bench/kill_test.py --iterations 40

Feeds are served over local HTTP and grow between iterations (new items appear, as news does).
Each iteration starts `storyline run` in its own process and kills it with SIGKILL after a random
delay between 0 and the length of an uninterrupted run, so kills land in start-up, fetching,
parsing, the article writes, embedding, clustering and the story writes. After every kill the
database is opened and checked:

  * every stored article is an item the server served, and no item is stored twice
    (by article id, GUID or canonical URL);
  * every story membership points to a stored article and an existing story, every embedding to a
    stored article, and nothing half-written is visible (a run's articles are all there or none);

then a final run without a kill must complete and leave every served item stored exactly once,
embedded, and every run either finished or marked 'interrupted'. Every process the killed command
had started (looked up in /proc just before the kill) must be gone a moment after it.

By default the commands run as a user's would with no Prefect server configured (steps called
directly); with --prefect-server one persistent local Prefect server serves all the runs, and each
command runs its steps as flows reporting to it.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import duckdb

from devkit.feed_server import FeedServer
from flows.execution import processes_below, running
from flows.serve import local_prefect_server

TOPICS = [
    ("harbour bridge", "repairs", "ferry"), ("city budget", "council", "taxes"),
    ("rail strike", "drivers", "union"), ("storm", "coast", "evacuation"),
    ("election", "candidates", "debate"), ("hospital", "waiting lists", "nurses"),
    ("football final", "fans", "stadium"), ("museum", "exhibition", "mosaic"),
]  # fmt: skip


def item_xml(source: int, n: int) -> str:
    a, b, c = TOPICS[(source + n) % len(TOPICS)]
    guid = f"src{source}-item{n}"
    title = f"Update {n} on the {a}: {b} and {c} (outlet {source})"
    body = " ".join(
        f"Reporters at outlet {source} followed the {a} story, item {n}, sentence {k}, with {b} and {c}."
        for k in range(6)
    )
    return (
        f'<item><guid isPermaLink="false">{guid}</guid>'
        f"<title>{title}</title><link>https://outlet{source}.example/{guid}</link>"
        f"<pubDate>Fri, 20 Nov 2026 {n % 24:02d}:{(7 * n) % 60:02d}:00 GMT</pubDate>"
        f"<description>{body}</description></item>"
    )


@dataclass
class Corpus:
    sources: int
    items: dict[int, int] = field(default_factory=dict)  # source -> items published so far

    def feed(self, source: int) -> str:
        items = "".join(item_xml(source, n) for n in range(self.items.get(source, 0)))
        head = f'<?xml version="1.0"?><rss version="2.0"><channel><title>Outlet {source}</title>'
        return f"{head}{items}</channel></rss>"

    def grow(self, rng: random.Random, per_round: int) -> None:
        for _ in range(per_round):
            s = rng.randrange(self.sources)
            self.items[s] = self.items.get(s, 0) + 1

    def guids(self) -> set[str]:
        return {f"src{s}-item{n}" for s, count in self.items.items() for n in range(count)}


def publish(srv: FeedServer, corpus: Corpus) -> None:
    for s in range(corpus.sources):
        srv.route(f"/outlet{s}.xml", corpus.feed(s), etag=f'"{s}-{corpus.items.get(s, 0)}"')


def check(db: Path, served: set[str], *, final: bool) -> list[str]:
    """Invariants of the database after a kill (or after the final run); returns the problems."""
    problems = []
    with duckdb.connect(str(db)) as con:  # read-write: replays the WAL as the next run would

        def q(sql: str) -> list[tuple]:
            return con.execute(sql).fetchall()

        guids = [g for (g,) in q("SELECT guid FROM articles")]
        if len(guids) != len(set(guids)):
            problems.append(f"{len(guids) - len(set(guids))} GUIDs stored twice")
        if set(guids) - served:
            problems.append(f"articles that were never served: {sorted(set(guids) - served)[:3]}")
        (dup_urls,) = q("SELECT count(*) - count(DISTINCT canonical_url) FROM articles")[0]
        if dup_urls:
            problems.append(f"{dup_urls} canonical URLs stored twice")
        for what, sql in {
            "memberships of missing articles": "SELECT count(*) FROM story_articles sa "
            "LEFT JOIN articles a USING (article_id) WHERE a.article_id IS NULL",
            "memberships of missing stories": "SELECT count(*) FROM story_articles sa "
            "LEFT JOIN stories s USING (story_id) WHERE s.story_id IS NULL",
            "embeddings of missing articles": "SELECT count(*) FROM embeddings e "
            "LEFT JOIN articles a USING (article_id) WHERE a.article_id IS NULL",
            "fetch rows claiming more articles than the run stored": "SELECT count(*) FROM ("
            "SELECT f.run_id, sum(f.new_articles) AS claimed, (SELECT count(*) FROM articles a "
            "WHERE a.run_id = f.run_id) AS stored FROM fetches f GROUP BY f.run_id) WHERE claimed <> stored",
        }.items():
            (n,) = q(sql)[0]
            if n:
                problems.append(f"{n} {what}")
        if final:
            if set(guids) != served:
                problems.append(f"{len(served - set(guids))} served items missing after the final run")
            (unembedded,) = q(
                "SELECT count(*) FROM articles a WHERE NOT EXISTS "
                "(SELECT 1 FROM embeddings e WHERE e.article_id = a.article_id)"
            )[0]
            if unembedded:
                problems.append(f"{unembedded} articles without an embedding after the final run")
            (running,) = q("SELECT count(*) FROM runs WHERE status = 'running'")[0]
            if running:
                problems.append(f"{running} runs still marked running after the final run")
    return problems


@dataclass
class KillReport:
    iterations: int
    killed: int
    finished_before_kill: int
    phases: dict[str, int]
    articles: int
    served: int
    interrupted_runs: int
    processes_left: int
    problems: list[str]


def _last_run(db: Path) -> tuple[int, str, str]:
    """The newest run: id, kind, status ('running' = killed in the middle of that step)."""
    with duckdb.connect(str(db)) as con:  # read-write: replays what the killed run committed
        rows = con.execute("SELECT run_id, kind, status FROM runs ORDER BY run_id DESC LIMIT 1").fetchall()
    return rows[0] if rows else (0, "", "")


def _storyline(args: list[str], env: dict[str, str], log: Path | None = None) -> subprocess.Popen:
    out = log.open("w") if log else subprocess.DEVNULL
    return subprocess.Popen(
        [sys.executable, "-m", "flows.cli", *args], env=env, stdout=out, stderr=subprocess.STDOUT
    )


def _complete(args: list[str], env: dict[str, str], log: Path, what: str) -> None:
    """A run that must finish; its output is kept for the error message."""
    code = _storyline(args, env, log).wait(timeout=600)
    if code != 0:
        raise RuntimeError(f"the {what} run exited {code}: {log.read_text()[-3000:]}")


def run(
    workdir: Path,
    *,
    iterations: int,
    seed: int = 1,
    sources: int = 6,
    per_round: int = 12,
    prefect_server: bool = False,
) -> KillReport:
    rng = random.Random(seed)
    corpus = Corpus(sources)
    db = workdir / "kill.duckdb"
    phases: dict[str, int] = {}
    problems: list[str] = []
    killed = finished = leftovers = 0
    with FeedServer() as srv, ExitStack() as stack:
        api = stack.enter_context(local_prefect_server(workdir / ".prefect")) if prefect_server else None
        sources_file = workdir / "sources.toml"
        sources_file.write_text(
            "".join(
                f'[[sources]]\nname = "Outlet {s}"\nurl = "{srv.url(f"/outlet{s}.xml")}"\n\n'
                for s in range(sources)
            )
        )
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "STORYLINE_"))}
        env |= {"PREFECT_HOME": str(workdir / ".prefect")} | ({"PREFECT_API_URL": api} if api else {})
        args = ["run", "--sources", str(sources_file), "--db", str(db)]
        # Two uninterrupted runs first: the first pays one-time costs (a new database, the ONNX
        # export on a fresh machine); the second tells how long a run takes, and kills are spread
        # over that.
        corpus.grow(rng, per_round)
        publish(srv, corpus)
        _complete(args, env, workdir / "first-run.log", "first")
        corpus.grow(rng, per_round)
        publish(srv, corpus)
        started = time.monotonic()
        _complete(args, env, workdir / "second-run.log", "second")
        full = time.monotonic() - started
        for i in range(iterations):
            corpus.grow(rng, per_round)
            publish(srv, corpus)
            before = _last_run(db)
            proc = _storyline(args, env)
            time.sleep(rng.uniform(0.0, full))
            if proc.poll() is None:
                started_by_it = set(processes_below(proc.pid))
                proc.send_signal(signal.SIGKILL)
                killed += 1
                proc.wait()
                time.sleep(0.5)
                left = sorted(p for p in started_by_it if running(p))
                leftovers += len(left)
                problems += [f"after kill {i + 1}: processes still running: {left}"] if left else []
            else:
                finished += 1
            proc.wait()
            after = _last_run(db)
            phase = "start-up (no step begun)" if after[0] == before[0] else f"{after[1]} ({after[2]})"
            phases[phase] = phases.get(phase, 0) + 1
            found = check(db, corpus.guids(), final=False)
            problems += [f"after kill {i + 1}: {p}" for p in found]
            print(
                f"  kill {i + 1:3d}/{iterations}: last step '{phase}', {found if found else 'ok'}",
                flush=True,
            )
        _complete(args, env, workdir / "final-run.log", "final")
        problems += [f"final: {p}" for p in check(db, corpus.guids(), final=True)]
    with duckdb.connect(str(db), read_only=True) as con:
        articles = con.execute("SELECT count(*) FROM articles").fetchall()[0][0]
        interrupted = con.execute("SELECT count(*) FROM runs WHERE status = 'interrupted'").fetchall()[0][0]
    return KillReport(
        iterations, killed, finished, phases, articles, len(corpus.guids()), interrupted, leftovers, problems
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=40)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--prefect-server", action="store_true", help="run through one local Prefect server (flows)"
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="storyline-kill-") as tmp:
        started = time.monotonic()
        r = run(Path(tmp), iterations=args.iterations, seed=args.seed, prefect_server=args.prefect_server)
    print(
        f"\n{r.iterations} iterations in {time.monotonic() - started:.0f} s: {r.killed} killed mid-run, "
        f"{r.finished_before_kill} finished before the kill; last step reached: {r.phases}"
    )
    print(
        f"served items {r.served}, stored articles {r.articles}, "
        f"runs marked interrupted {r.interrupted_runs}, "
        f"processes left running after the kills {r.processes_left}"
    )
    print("result: OK, nothing lost or duplicated" if not r.problems else "result: FAILED")
    for p in r.problems:
        print("  " + p)
    return 0 if not r.problems else 1


if __name__ == "__main__":
    raise SystemExit(main())
