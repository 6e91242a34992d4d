"""Running the web app: checks before listening, the snapshot keeper, uvicorn until stopped."""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

from flows.web.security import is_loopback
from pipeline.settings import ConfigError, Settings

if TYPE_CHECKING:
    from flows.web.snapshot import SnapshotKeeper

log = logging.getLogger("storyline.web")


def check_exposure(settings: Settings) -> None:
    """Listening beyond this machine needs an access token, or an explicit decision to be public."""
    web = settings.web
    if is_loopback(web.host) or web.token or web.public:
        return
    raise ConfigError(
        f"refusing to listen on {web.host}, which other machines can reach, without an access token: "
        "set web.token (e.g. STORYLINE_WEB__TOKEN, 16+ characters) or pass --public"
    )


def _warm_up(settings: Settings, keeper: SnapshotKeeper) -> None:
    from flows.reading import ReadView, embed_text

    try:
        embed_text(settings, "warm up")
        ReadView.of_snapshot(keeper.current, settings).topic_tags()
    except Exception as exc:  # the first real request will report it
        log.warning("warm-up failed: %s", exc)


def serve_web(settings: Settings) -> int:
    """Serve until Ctrl-C or SIGTERM (uvicorn finishes the requests in flight, then returns)."""
    import uvicorn

    from flows.web.app import create_app
    from flows.web.snapshot import SnapshotKeeper

    check_exposure(settings)
    keeper = SnapshotKeeper(settings)
    keeper.start()
    # Load the model (and embed the watch topics) now, not on the first search or front page.
    threading.Thread(target=_warm_up, args=(settings, keeper), name="warm-up", daemon=True).start()
    try:
        app = create_app(settings, keeper)
        config = uvicorn.Config(
            app,
            host=settings.web.host,
            port=settings.web.port,
            log_level="warning",
            access_log=False,
            server_header=False,
            timeout_graceful_shutdown=5,
        )
        server = uvicorn.Server(config)
        print(f"storyline web: http://{settings.web.host}:{settings.web.port}/ (Ctrl-C to stop)", flush=True)
        server.run()
    finally:
        keeper.stop()
    return 0
