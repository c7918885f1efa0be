"""A private PostgreSQL cluster for tests: Debian's server, started on a free port.

Installs the Debian package when the binaries are missing and we are root; runs the server as
the ``postgres`` user (initdb refuses root) in a temporary folder; trust authentication on
127.0.0.1 only.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from stack.local import free_port


class PostgresUnavailable(RuntimeError):
    pass


def _bin_dir() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


def ensure_installed() -> Path:
    """The folder of initdb/pg_ctl, installing Debian's postgresql package if needed."""
    bin_dir = _bin_dir()
    if bin_dir is not None:
        return bin_dir
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise PostgresUnavailable(
            "PostgreSQL is not installed and cannot be (not root, or no apt-get)"
        )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (
        ["apt-get", "update", "-qq"],
        ["apt-get", "install", "-y", "-qq", "postgresql"],
    ):
        done = subprocess.run(
            command, env=env, capture_output=True, text=True, check=False, timeout=600
        )
        if done.returncode != 0:
            raise PostgresUnavailable(f"{' '.join(command)} failed: {done.stderr[-500:]}")
    bin_dir = _bin_dir()
    if bin_dir is None:
        raise PostgresUnavailable("postgresql installed, but initdb is nowhere to be found")
    return bin_dir


def _as_postgres(command: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return command
    return ["runuser", "-u", "postgres", "--", *command]


@dataclass
class Postgres:
    data: Path
    port: int
    bin_dir: Path

    @property
    def url(self) -> str:
        return f"postgresql+asyncpg://alloop@127.0.0.1:{self.port}/argilla"

    def stop(self) -> None:
        subprocess.run(
            _as_postgres(
                [str(self.bin_dir / "pg_ctl"), "-D", str(self.data), "-m", "fast", "stop"]
            ),
            capture_output=True,
            check=False,
            timeout=60,
        )


def start(folder: Path) -> Postgres:
    bin_dir = ensure_installed()
    folder.mkdir(parents=True, exist_ok=True)
    data = folder / "data"
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres", "postgres")
    done = subprocess.run(
        _as_postgres(
            [str(bin_dir / "initdb"), "-D", str(data), "-U", "alloop", "--auth=trust", "-E", "UTF8"]
        ),
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise PostgresUnavailable(f"initdb failed: {done.stderr[-500:]}")
    port = free_port()
    options = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off"
    done = subprocess.run(
        _as_postgres(
            [
                str(bin_dir / "pg_ctl"),
                "-D",
                str(data),
                "-o",
                options,
                "-l",
                str(folder / "log"),
                "-w",
                "start",
            ]
        ),
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    if done.returncode != 0:
        raise PostgresUnavailable(f"pg_ctl start failed: {done.stderr[-500:]} {done.stdout[-500:]}")
    for _ in range(50):
        made = subprocess.run(
            [
                str(bin_dir / "createdb"),
                "-h",
                "127.0.0.1",
                "-p",
                str(port),
                "-U",
                "alloop",
                "argilla",
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if made.returncode == 0:
            return Postgres(data, port, bin_dir)
        time.sleep(0.2)
    raise PostgresUnavailable(f"createdb failed: {made.stderr[-500:]}")
