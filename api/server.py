"""Run the API with uvicorn: what ``alloop api`` calls."""

from __future__ import annotations

import ipaddress
import logging

from loop.errors import ConfigError
from loop.settings import Settings

logger = logging.getLogger(__name__)


def is_loopback(host: str) -> bool:
    """Whether only this machine can reach ``host``: ``localhost`` or a loopback address."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:  # a host name, or empty (every interface)
        return False


def check_exposure(settings: Settings) -> None:
    """Refuse to serve without API keys where others can connect: anyone could promote."""
    if not settings.api.keys and not is_loopback(settings.api.host):
        raise ConfigError(
            f"refusing to serve on {settings.api.host or 'every interface'!r} without API keys: "
            "anyone who reaches it could classify, promote and roll back. Set ALLOOP_API__KEYS "
            "(one or more comma-separated keys), or listen on a loopback address "
            "(ALLOOP_API__HOST=127.0.0.1)"
        )


def serve(settings: Settings) -> None:
    """Serve the API on ``settings.api.host``:``settings.api.port`` until interrupted.

    Logging is the caller's (the CLI configures it once per process); uvicorn's own loggers
    propagate to it. One worker process: the served model lives in memory, so scale out with
    more processes behind a load balancer, each watching the same registry. Without API
    keys it serves only on a loopback address (:func:`check_exposure`).
    """
    check_exposure(settings)
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
