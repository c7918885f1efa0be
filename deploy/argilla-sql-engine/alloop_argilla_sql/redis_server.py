"""A Redis stand-in for machines without ``redis-server``: fakeredis's TCP server.

    python -m alloop_argilla_sql.redis_server PORT

Argilla's rq queue (webhooks, background jobs) talks to it like to Redis. Data lives in
memory and goes with the process.
"""

import sys

from fakeredis import TcpFakeServer


def main() -> None:
    port = int(sys.argv[1])
    server = TcpFakeServer(("127.0.0.1", port), server_type="redis")
    print(f"fakeredis ready on 127.0.0.1:{port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
