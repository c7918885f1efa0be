"""Run the API with uvicorn: what ``alloop api`` calls."""

from __future__ import annotations

import logging

from loop.settings import Settings

logger = logging.getLogger(__name__)


def serve(settings: Settings) -> None:
    """Serve the API on ``settings.api.host``:``settings.api.port`` until interrupted.

    Logging is the caller's (the CLI configures it once per process); uvicorn's own loggers
    propagate to it. One worker process: the served model lives in memory, so scale out with
    more processes behind a load balancer, each watching the same registry.
    """
    import uvicorn

    from api.app import create_app
    from loop.memory import tune_malloc

    tune_malloc()
    app = create_app(settings)
    logger.info("API listening on http://%s:%s", settings.api.host, settings.api.port)
    uvicorn.run(
        app,
        host=settings.api.host,
        port=settings.api.port,
        log_config=None,
        log_level=settings.log_level.lower(),
        server_header=False,
    )
