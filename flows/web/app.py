"""The Starlette application: HTML pages, the JSON API mirroring them, Atom feeds.

Every request reads the in-memory copy current when it started (``SnapshotKeeper``) through its
own cursor; nothing here opens the live file. Handlers are plain functions (Starlette runs them
on its thread pool). Bad input is a 400 or 404 page, never a 500: dates are parsed, topics
checked against the settings, story ids only ever bound as SQL parameters.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date, datetime
from importlib import resources
from typing import Any
from zoneinfo import ZoneInfo

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from flows.digest import compose_digest
from flows.reading import ReadView
from flows.web import pages
from flows.web.security import secure_headers, token_guard
from flows.web.snapshot import SnapshotKeeper
from pipeline.digest.html_page import CSP as DIGEST_CSP
from pipeline.digest.html_page import render_html
from pipeline.settings import ConfigError, Settings

MAX_QUERY = 200
# Memoised pages kept per copy of the database (front pages by day and topic, feeds).
MEMO_PAGES = 256


class BadRequest(Exception):
    pass


def _day(value: str | None, name: str) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise BadRequest(f"{name} must be a date (YYYY-MM-DD)") from None


def _plain(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if hasattr(value, "__dataclass_fields__"):
        return _plain(value.__dict__)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _json(data: Any, status: int = 200) -> JSONResponse:
    return JSONResponse(json.loads(json.dumps(_plain(data), default=str)), status_code=status)


def create_app(settings: Settings, keeper: SnapshotKeeper) -> Starlette:
    templates = Jinja2Templates(directory=str(resources.files("flows.web") / "templates"))
    templates.env.globals["timezone"] = settings.digest.timezone

    def view() -> ReadView:
        return ReadView.of_snapshot(keeper.current, settings)

    def page(request: Request, name: str, data: dict[str, Any], status: int = 200) -> Response:
        context = {"request": request, "data": data, "stale": keeper.stale_since is not None}
        return templates.TemplateResponse(request, name, context, status_code=status)

    def handled(api: bool) -> Callable[[Callable[[Request], Response]], Callable[[Request], Response]]:
        def wrap(handler: Callable[[Request], Response]) -> Callable[[Request], Response]:
            def run(request: Request) -> Response:
                try:
                    return handler(request)
                except (BadRequest, ConfigError) as exc:
                    if api:
                        return _json({"error": str(exc)}, 400)
                    return page(request, "error.html", {"status": 400, "message": str(exc)}, 400)

            return run

        return wrap

    def not_found(request: Request, api: bool, what: str) -> Response:
        if api:
            return _json({"error": f"no such {what}"}, 404)
        return page(request, "error.html", {"status": 404, "message": f"No such {what}."}, 404)

    # ------------------------------------------------------------------ pages and their API twins

    def memoised(key: tuple[Any, ...], make: Callable[[ReadView], Any]) -> Any:
        """Pages that cost a digest ranking (front page, digests, feeds) once per copy of the database:
        the copy never changes, so neither do they until the next one."""
        v = view()
        cache = v.memo.setdefault("pages", {})
        if key not in cache:
            if len(cache) >= MEMO_PAGES:
                cache.clear()
            cache[key] = make(v)
        return cache[key]

    def front_data(request: Request) -> dict[str, Any]:
        q = request.query_params
        day, topic, category = _day(q.get("date"), "date"), q.get("topic") or None, q.get("category") or None
        data: dict[str, Any] = memoised(
            ("front", day, topic, category),
            lambda v: pages.front_page(v, day=day, topic=topic, category=category),
        )
        return data

    @handled(api=False)
    def front(request: Request) -> Response:
        return page(request, "front.html", front_data(request))

    @handled(api=True)
    def api_stories(request: Request) -> Response:
        return _json(front_data(request))

    def story_response(request: Request, api: bool) -> Response:
        story_id = request.path_params["story_id"]
        v = view()
        data = pages.story_page(v, story_id)
        if data is None:
            return not_found(request, api, "story")
        if data["status"] != "live":
            live = pages.resolve(v, story_id)
            if live is None:
                return not_found(request, api, "story")
            target = request.url_for("api_story" if api else "story", story_id=live)
            return RedirectResponse(str(target.path), status_code=301)
        return _json(data) if api else page(request, "story.html", data)

    @handled(api=False)
    def story(request: Request) -> Response:
        return story_response(request, api=False)

    @handled(api=True)
    def api_story(request: Request) -> Response:
        return story_response(request, api=True)

    def search_data(request: Request) -> dict[str, Any]:
        q = request.query_params
        query = " ".join((q.get("q") or "").split())
        if len(query) > MAX_QUERY:
            raise BadRequest(f"a query is at most {MAX_QUERY} characters")
        return pages.search_page(
            view(), query, since=_day(q.get("from"), "from"), until=_day(q.get("to"), "to")
        )

    @handled(api=False)
    def search(request: Request) -> Response:
        return page(request, "search.html", search_data(request))

    @handled(api=True)
    def api_search(request: Request) -> Response:
        return _json(search_data(request))

    @handled(api=False)
    def sources(request: Request) -> Response:
        return page(request, "sources.html", pages.sources_page(view()))

    @handled(api=True)
    def api_sources(request: Request) -> Response:
        return _json(pages.sources_page(view()))

    @handled(api=False)
    def digest(request: Request) -> Response:
        day = _day(request.path_params["day"], "the digest date")
        topic = request.query_params.get("topic") or None
        zone = ZoneInfo(settings.digest.timezone)

        def make(v: ReadView) -> str:
            v.check_topic(topic)
            return render_html(*compose_digest(v.con, settings, zone, day=day, topic=topic, tag=v.tag))

        response = HTMLResponse(memoised(("digest", day, topic), make))
        # The digest file's own policy: it styles itself inline, and runs and loads nothing.
        response.headers["Content-Security-Policy"] = DIGEST_CSP
        return response

    def feed_response(request: Request, topic: str | None) -> Response:
        base = str(request.base_url).rstrip("/")
        path = request.url.path
        body = memoised(("atom", topic, base, path), lambda v: v.atom(topic, base_url=base, self_path=path))
        return Response(body, media_type="application/atom+xml; charset=utf-8")

    @handled(api=True)
    def feed(request: Request) -> Response:
        return feed_response(request, None)

    @handled(api=True)
    def topic_feed(request: Request) -> Response:
        return feed_response(request, request.path_params["name"])

    def status(request: Request) -> Response:
        snap = keeper.current
        return _json({"copied_at": datetime.fromtimestamp(snap.taken_at).astimezone().isoformat(),
                      "stories": len(snap.story_ids), "stale": keeper.stale_since is not None,
                      "keeper": keeper.stats})  # fmt: skip

    routes = [
        Route("/", front, name="front"),
        Route("/stories/{story_id}", story, name="story"),
        Route("/search", search, name="search"),
        Route("/sources", sources, name="sources"),
        Route("/digests/{day}", digest, name="digest"),
        Route("/feeds/stories.atom", feed, name="feed"),
        Route("/feeds/topics/{name}.atom", topic_feed, name="topic_feed"),
        Route("/api/stories", api_stories, name="api_stories"),
        Route("/api/stories/{story_id}", api_story, name="api_story"),
        Route("/api/search", api_search, name="api_search"),
        Route("/api/sources", api_sources, name="api_sources"),
        Route("/api/status", status, name="api_status"),
        Mount("/static", StaticFiles(packages=[("flows.web", "static")]), name="static"),
    ]

    async def on_error(request: Request, exc: Exception) -> Response:
        code = getattr(exc, "status_code", 500)
        message = "No such page." if code == 404 else "Something went wrong."
        return secure_headers(page(request, "error.html", {"status": code, "message": message}, code))

    return Starlette(
        routes=routes,
        middleware=[Middleware(BaseHTTPMiddleware, dispatch=token_guard(settings.web.token))],
        exception_handlers={404: on_error, 405: on_error},
    )
