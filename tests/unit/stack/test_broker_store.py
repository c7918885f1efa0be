"""The broker's store: the S3 subset Tansu uses, kept as files; ports kept across restarts."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from xml.etree import ElementTree

import httpx
import pytest

from stack import local
from stack.broker_store import FolderStore, StoreServer

NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[httpx.Client]:
    server = StoreServer(("127.0.0.1", 0), FolderStore(tmp_path / "data"))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    with httpx.Client(base_url=f"http://127.0.0.1:{server.server_address[1]}") as client:
        yield client
    server.shutdown()
    server.server_close()


def test_conditional_writes_are_compare_and_swap_on_the_etag(store: httpx.Client) -> None:
    key = "/tansu/clusters/c/meta.json"
    created = store.put(key, content=b"v1", headers={"If-None-Match": "*"})
    assert created.status_code == 200
    again = store.put(key, content=b"v1bis", headers={"If-None-Match": "*"})
    assert again.status_code == 412, "create-only refuses an existing key"
    etag = created.headers["ETag"]
    assert store.get(key).headers["ETag"] == etag
    updated = store.put(key, content=b"v2", headers={"If-Match": etag})
    assert updated.status_code == 200 and updated.headers["ETag"] != etag
    stale = store.put(key, content=b"v3", headers={"If-Match": etag})
    assert stale.status_code == 412, "an update from a stale read is refused"
    assert store.get(key).content == b"v2"


def test_objects_are_files_that_a_new_server_reads_back(tmp_path: Path) -> None:
    FolderStore(tmp_path).put("tansu", "a/b.batch", b"records")
    found = FolderStore(tmp_path).get("tansu", "a/b.batch")
    assert found is not None and found[0] == b"records"
    assert not [p for p in tmp_path.rglob(".tmp-*")], "no temporary file is left"


def test_listing_by_prefix_is_sorted_and_paged(store: httpx.Client) -> None:
    for name in ["p/0/records/b", "p/0/records/a", "p/1/records/c", "p/0/watermark.json"]:
        store.put(f"/tansu/{name}", content=b"x")
    keys: list[str] = []
    token = ""
    while True:
        params = {"list-type": "2", "prefix": "p/0/records/", "max-keys": "1"}
        if token:
            params["continuation-token"] = token
        root = ElementTree.fromstring(store.get("/tansu", params=params).content)
        keys += [k.text or "" for k in root.iter(f"{NS}Key")]
        if root.findtext(f"{NS}IsTruncated") != "true":
            break
        token = root.findtext(f"{NS}NextContinuationToken") or ""
    assert keys == ["p/0/records/a", "p/0/records/b"]
    everything = ElementTree.fromstring(store.get("/tansu", params={"list-type": "2"}).content)
    assert everything.findtext(f"{NS}KeyCount") == "4"


def test_missing_keys_and_escapes_from_the_folder_are_refused(store: httpx.Client) -> None:
    assert store.get("/tansu/nothing/here").status_code == 404
    assert store.put("/tansu/a/%2E%2E/%2E%2E/etc", content=b"x").status_code == 400


def test_a_broker_port_taken_by_another_process_is_said_clearly(tmp_path: Path) -> None:
    state = local.StackState(ports={"broker": 0})
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        state.ports["broker"] = other.getsockname()[1]
        state.save(tmp_path)
        with pytest.raises(local.StackError, match="another process listens there"):
            local._kept_port(tmp_path, "broker", "broker")
    assert local._kept_port(tmp_path, "broker", "broker") == state.ports["broker"]


def test_listing_a_prefix_with_nothing_under_it_answers_an_empty_list(store: httpx.Client) -> None:
    # Tansu lists the records of every partition it fetches, empty ones included.
    answer = store.get("/tansu", params={"list-type": "2", "prefix": "t/partitions/0/records/"})
    assert answer.status_code == 200
    root = ElementTree.fromstring(answer.content)
    assert root.findtext(f"{NS}KeyCount") == "0" and root.findtext(f"{NS}IsTruncated") == "false"
