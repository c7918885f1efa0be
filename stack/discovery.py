"""Where the services are: the configured addresses, else those the local stack recorded
(``alloop stack up``). Connectors take explicit addresses; the processes and commands find
them here."""

from __future__ import annotations

from loop.errors import ConfigError
from loop.settings import Settings


def bootstrap_servers(settings: Settings) -> str:
    """The broker address: configured, or the one the local stack recorded."""
    if settings.kafka.bootstrap_servers:
        return settings.kafka.bootstrap_servers
    from stack.local import StackState

    state = StackState.load(settings.state_dir)
    broker = state.services.get("broker")
    if broker is None or not broker.address:
        raise ConfigError(
            "no broker: run `alloop stack up`, or set ALLOOP_KAFKA__BOOTSTRAP_SERVERS"
        )
    return broker.address


def argilla_address(settings: Settings) -> tuple[str, str]:
    """Argilla's URL and owner key: configured, or the local stack's."""
    url = settings.argilla.url
    key = settings.argilla.api_key.get_secret_value() if settings.argilla.api_key else ""
    if not (url and key):
        from stack.credentials import argilla_credentials

        local_url, local_key = argilla_credentials(settings.state_dir)
        url, key = url or local_url, key or local_key
    return url, key
