"""Run argilla-server's command line with the ``sql`` search engine registered.

    python -m alloop_argilla_sql start --host 127.0.0.1 --port 6900   # the server
    python -m alloop_argilla_sql worker                              # its rq worker
    python -m alloop_argilla_sql database migrate                    # any other command

Argilla picks the engine by ``ARGILLA_SEARCH_ENGINE``; this sets it to ``sql`` unless it is set.

Every option can also come from the environment (click's automatic variables, prefix
``ALLOOP_ARGILLA_CLI``): ``ALLOOP_ARGILLA_CLI_DATABASE_USERS_CREATE_PASSWORD`` and
``..._API_KEY`` give ``database users create`` its secrets without putting them on the command
line, where ``ps`` shows them to every user of the machine.
"""

import os
import sys

os.environ.setdefault("ARGILLA_SEARCH_ENGINE", "sql")

from argilla_server.cli import app

import alloop_argilla_sql  # noqa: F401  (registers the engine before the server starts)

if __name__ == "__main__":
    sys.exit(app(auto_envvar_prefix="ALLOOP_ARGILLA_CLI"))
