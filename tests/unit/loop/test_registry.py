"""The model registry: numbered immutable versions, and a promoted pointer that never tears."""

from __future__ import annotations

import json
import multiprocessing
import os
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier, Event
from pathlib import Path

import pytest
from pydantic import ValidationError

from loop.errors import NothingToRollBack, PointerMoved, RegistryError, VersionNotFound
from loop.registry import STALE_STAGING_S, ModelCard, ModelRegistry


def writer(content: str) -> Callable[[Path], None]:
    """A save callback that writes one small file, like a model library would."""

    def save(path: Path) -> None:
        path.mkdir()
        (path / "weights.txt").write_text(content)

    return save


def publish(registry: ModelRegistry, content: str = "w", **kwargs: object) -> str:
    card = registry.publish(writer(content), labels=["a", "b"], **kwargs)  # type: ignore[arg-type]
    return card.version


def hidden_entries(registry: ModelRegistry) -> list[str]:
    return sorted(p.name for p in registry.versions_dir.iterdir() if p.name.startswith("."))


# publishing -------------------------------------------------------------------------------


def test_empty_registry(tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path / "reg")
    assert registry.versions() == []
    assert registry.latest() is None
    assert registry.promoted() is None
    assert registry.cards() == []


def test_publish_numbers_versions_in_order(tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path)
    names = [publish(registry, content=f"w{i}") for i in range(3)]
    assert names == ["v0001", "v0002", "v0003"]
    assert registry.versions() == names
    assert registry.latest() == "v0003"
    assert (registry.model_path("v0002") / "weights.txt").read_text() == "w1"
    assert hidden_entries(registry) == []  # no staging left behind


def test_versions_sort_numerically_past_9999(tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path)
    for name in ("v9999", "v10000", "v0002"):
        (registry.versions_dir / name).mkdir(parents=True)
    assert registry.versions() == ["v0002", "v9999", "v10000"]


def test_card_round_trip(tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path)
    before = datetime.now(UTC)
    first = publish(registry)
    card = registry.publish(
        writer("w"),
        labels=["Bearish", "Bullish", "Neutral"],
        task="classification",
        kind="keywords",
        training_args={"num_iterations": 2, "seed": 42},
        counts={"train": 120, "test": 30, "per_label": {"Bearish": 40}},
        parent=first,
        notes="second try",
    )
    loaded = registry.card(card.version)
    assert loaded == card
    assert loaded.version == "v0002"
    assert loaded.labels == ["Bearish", "Bullish", "Neutral"]
    assert loaded.kind == "keywords"
    assert loaded.training_args == {"num_iterations": 2, "seed": 42}
    assert loaded.counts == {"train": 120, "test": 30, "per_label": {"Bearish": 40}}
    assert loaded.parent == "v0001"
    assert loaded.notes == "second try"
    assert loaded.metrics is None
    assert before <= loaded.created_at <= datetime.now(UTC)
    on_disk = json.loads((registry.path("v0002") / "card.json").read_text())
    assert on_disk["version"] == "v0002" and on_disk["parent"] == "v0001"
    assert [c.version for c in registry.cards()] == ["v0001", "v0002"]


def test_cards_are_frozen(tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path)
    card = registry.card(publish(registry))
    with pytest.raises(ValidationError):
        card.version = "v0009"
    with pytest.raises(ValidationError):
        card.labels = ["x"]
    assert registry.card("v0001").labels == ["a", "b"]
    assert ModelCard.model_config.get("frozen") is True


def test_attach_metrics_shows_in_the_card_and_leaves_the_version_as_it_was(
    tmp_path: Path,
) -> None:
    registry = ModelRegistry(tmp_path)
    version = publish(registry, content="weights")
    card_bytes = (registry.path(version) / "card.json").read_bytes()
    metrics = {"primary": "macro_f1", "macro_f1": 0.71, "per_label": {"a": {"f1": 0.7}}}

    registry.attach_metrics(version, metrics)

    assert registry.card(version).metrics == metrics
    assert (registry.path(version) / "card.json").read_bytes() == card_bytes
    assert (registry.model_path(version) / "weights.txt").read_text() == "weights"
    registry.attach_metrics(version, {"macro_f1": 0.8})
    assert registry.card(version).metrics == {"macro_f1": 0.8}


def test_attach_metrics_to_unknown_version(tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path)
    with pytest.raises(VersionNotFound):
        registry.attach_metrics("v0001", {"f1": 1.0})


def test_failed_save_leaves_no_version_and_no_staging(tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path)
    publish(registry)

    def broken(path: Path) -> None:
        path.mkdir()
        (path / "half.bin").write_bytes(b"\x00" * 10)
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        registry.publish(broken, labels=["a", "b"])

    assert registry.versions() == ["v0001"]
    assert hidden_entries(registry) == []
    assert publish(registry) == "v0002"


def test_interrupted_save_leaves_no_version(tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path)

    def interrupted(path: Path) -> None:
        path.mkdir()
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        registry.publish(interrupted, labels=["a", "b"])
    assert registry.versions() == []
    assert hidden_entries(registry) == []


def _publish_and_hang(root: str, saving: Event) -> None:
    """A round that is killed while it writes its weights."""

    def save(path: Path) -> None:
        path.mkdir()
        (path / "weights.txt").write_text("half")
        saving.set()
        time.sleep(600)

    ModelRegistry(Path(root)).publish(save, labels=["a", "b"])


def test_a_publish_removes_what_a_killed_publish_left(tmp_path: Path) -> None:
    context = multiprocessing.get_context("spawn")
    saving = context.Event()
    killed = context.Process(target=_publish_and_hang, args=(str(tmp_path), saving))
    killed.start()
    try:
        assert saving.wait(timeout=60)
    finally:
        killed.kill()
        killed.join(timeout=30)
    registry = ModelRegistry(tmp_path)
    assert hidden_entries(registry) != []  # its staging folder is still there

    assert publish(registry) == "v0001"

    assert hidden_entries(registry) == []
    assert registry.versions() == ["v0001"]


def test_cleaning_leaves_the_folder_of_a_publish_that_runs(tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path)
    saving, finish = threading.Event(), threading.Event()
    published: list[str] = []

    def slow(path: Path) -> None:
        path.mkdir()
        (path / "weights.txt").write_text("slow")
        saving.set()
        assert finish.wait(timeout=60)

    def run() -> None:
        # a registry object of its own, as another process would have
        published.append(ModelRegistry(tmp_path).publish(slow, labels=["a", "b"]).version)

    thread = threading.Thread(target=run)
    thread.start()
    try:
        assert saving.wait(timeout=60)
        assert registry.clean_staging() == 0
        assert publish(registry, "quick") == "v0001"  # which cleans before it publishes
    finally:
        finish.set()
        thread.join(timeout=60)

    assert published == ["v0002"]
    assert (registry.model_path("v0002") / "weights.txt").read_text() == "slow"
    assert hidden_entries(registry) == []


def test_clean_staging_removes_old_unlocked_leftovers_only(tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path)
    assert registry.clean_staging() == 0  # nothing there yet, not even the folder
    publish(registry)
    for name in (".staging-abc", ".staging-def"):  # left by a release without staging locks
        (registry.versions_dir / name / "model").mkdir(parents=True)
        (registry.versions_dir / name / "model" / "x").write_text("crashed")
    (registry.versions_dir / ".staging-new" / "model").mkdir(parents=True)
    hour_ago = time.time() - STALE_STAGING_S - 60
    for name in (".staging-abc", ".staging-def"):
        os.utime(registry.versions_dir / name, (hour_ago, hour_ago))
    assert registry.versions() == ["v0001"]  # leftovers are never versions

    assert registry.clean_staging() == 2

    assert hidden_entries(registry) == [".staging-new"]  # young: it may be writing still
    assert registry.versions() == ["v0001"]
    assert registry.card("v0001").version == "v0001"
    assert registry.clean_staging() == 0


# durability -------------------------------------------------------------------------------


def record_disk_calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, ...]]:
    """Every fsync (with the path it flushed) and every rename, in order."""
    calls: list[tuple[str, ...]] = []
    real_fsync, real_rename, real_replace = os.fsync, os.rename, os.replace

    def fsync(fd: int) -> None:
        calls.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        real_fsync(fd)

    def rename(src: str | Path, dst: str | Path) -> None:
        calls.append(("rename", str(src), str(dst)))
        real_rename(src, dst)

    def replace(src: str | Path, dst: str | Path) -> None:
        calls.append(("rename", str(src), str(dst)))
        real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "rename", rename)
    monkeypatch.setattr(os, "replace", replace)
    return calls


def test_publish_flushes_the_weights_before_and_the_folder_after_the_rename(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry = ModelRegistry(tmp_path)

    def save(path: Path) -> None:  # several files in nested folders, as SetFit writes
        (path / "1_Pooling").mkdir(parents=True)
        (path / "model.safetensors").write_bytes(b"\x00" * 64)
        (path / "1_Pooling" / "config.json").write_text("{}")

    calls = record_disk_calls(monkeypatch)
    version = registry.publish(save, labels=["a", "b"]).version

    final = str(registry.versions_dir / version)
    [(_, staging, _)] = [c for c in calls if c[0] == "rename" and c[2] == final]
    moved = calls.index(("rename", staging, final))
    flushed = {os.path.relpath(c[1], staging) for c in calls[:moved] if c[0] == "fsync"}
    assert {
        "model/model.safetensors",
        "model/1_Pooling/config.json",
        "model/1_Pooling",
        "model",
        ".",  # with card.json in it (written through a flushed temporary file)
    } <= flushed
    # the folder that now holds the new name is flushed after the rename
    assert ("fsync", str(registry.versions_dir)) in calls[moved + 1 :]


def test_the_pointer_is_written_to_a_temporary_file_flushed_and_renamed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry = ModelRegistry(tmp_path)
    version = publish(registry)
    calls = record_disk_calls(monkeypatch)

    registry.promote(version)

    [(_, tmp, target)] = [c for c in calls if c[0] == "rename"]
    assert target == str(registry.pointer) and tmp != target
    moved = calls.index(("rename", tmp, target))
    assert ("fsync", tmp) in calls[:moved]
    assert ("fsync", str(registry.root)) in calls[moved + 1 :]
    assert not list(tmp_path.glob(".promoted.json.*"))


# finding versions -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    ["v0002", "v9999", "1", "v1", "v001", "V0001", "", "v0001/..", "../v0001", "v0001 ", "x"],
)
def test_unknown_or_malformed_versions_are_not_found(tmp_path: Path, name: str) -> None:
    registry = ModelRegistry(tmp_path)
    publish(registry)
    with pytest.raises(VersionNotFound):
        registry.path(name)
    with pytest.raises(VersionNotFound):
        registry.card(name)
    with pytest.raises(VersionNotFound):
        registry.promote(name)
    assert registry.promoted() is None


def test_folder_without_card_is_not_a_version(tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path)
    (registry.versions_dir / "v0001" / "model").mkdir(parents=True)
    with pytest.raises(VersionNotFound):
        registry.card("v0001")
    assert publish(registry) == "v0002"  # the name is taken, so publishing skips it


@pytest.mark.parametrize(
    ("file", "content"),
    [("card.json", '{"version": "v00'), ("card.json", "{}"), ("metrics.json", "[1,")],
)
def test_an_unreadable_card_is_a_registry_error(tmp_path: Path, file: str, content: str) -> None:
    registry = ModelRegistry(tmp_path)
    version = publish(registry)
    (registry.path(version) / file).write_text(content)
    with pytest.raises(RegistryError, match="v0001"):
        registry.card(version)


# the promoted pointer ---------------------------------------------------------------------


def test_promote_and_rollback_follow_history(tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path)
    a, b, c = (publish(registry) for _ in range(3))
    with pytest.raises(NothingToRollBack):
        registry.rollback()

    registry.promote(a)
    registry.promote(b)
    state = registry.promote(c)
    assert (state.version, state.history) == (c, [a, b])
    assert registry.promoted() == c

    state = registry.rollback()
    assert (state.version, state.history) == (b, [a])
    assert registry.promoted() == b
    state = registry.rollback()
    assert (state.version, state.history) == (a, [])
    assert registry.promoted() == a
    with pytest.raises(NothingToRollBack):
        registry.rollback()
    assert registry.promoted() == a  # a failed rollback changes nothing


def test_promoting_the_current_version_again_is_a_no_op(tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path)
    a, b = publish(registry), publish(registry)
    registry.promote(a)
    registry.promote(b)
    before = registry.pointer.read_bytes()
    state = registry.promote(b)
    assert (state.version, state.history) == (b, [a])
    assert registry.pointer.read_bytes() == before


def test_promote_an_older_version_is_recorded_too(tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path)
    a, b = publish(registry), publish(registry)
    registry.promote(a)
    registry.promote(b)
    registry.promote(a)
    assert registry.rollback().version == b
    assert registry.rollback().version == a


def test_pointer_survives_a_new_registry_object(tmp_path: Path) -> None:
    first = ModelRegistry(tmp_path)
    a, b = publish(first), publish(first)
    first.promote(a)
    first.promote(b)
    second = ModelRegistry(tmp_path)
    assert second.promotion().version == b
    assert second.promotion().history == [a]
    assert json.loads(second.pointer.read_text())["version"] == b


def test_unreadable_pointer_is_a_registry_error(tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path)
    registry.promote(publish(registry))
    registry.pointer.write_text('{"version": "v00')
    with pytest.raises(RegistryError, match="unreadable"):
        registry.promoted()


# compare-and-swap: a promotion that expects what it read -------------------------------


def test_promote_with_the_pointer_it_read_moves_it(tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path)
    a, b = publish(registry), publish(registry)
    assert registry.promote(a, expected=None).version == a  # nothing was promoted
    state = registry.promote(b, expected=a)
    assert (state.version, state.history) == (b, [a])


@pytest.mark.parametrize("meanwhile", ["rollback", "promote"])
def test_promote_refuses_when_a_person_moved_the_pointer_meanwhile(
    tmp_path: Path, meanwhile: str
) -> None:
    registry = ModelRegistry(tmp_path)
    a, b, c, new = (publish(registry) for _ in range(4))
    registry.promote(a)
    registry.promote(b)
    read = registry.promoted()  # a round starts, serving b
    if meanwhile == "rollback":
        ModelRegistry(tmp_path).rollback()  # a person, while the round trains
    else:
        ModelRegistry(tmp_path).promote(c)
    after_person = registry.pointer.read_bytes()

    with pytest.raises(PointerMoved, match=f"expected {b}") as raised:
        registry.promote(new, expected=read)

    assert (raised.value.expected, raised.value.actual) == (b, a if meanwhile == "rollback" else c)
    assert isinstance(raised.value, RegistryError)
    assert registry.pointer.read_bytes() == after_person  # what the person did stands


def test_promote_expecting_nothing_refuses_once_something_is_promoted(tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path)
    a, b = publish(registry), publish(registry)
    registry.promote(a)
    with pytest.raises(PointerMoved):
        registry.promote(b, expected=None)
    assert registry.promoted() == a


def test_promote_to_what_already_serves_is_a_no_op_whatever_was_expected(tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path)
    a, b = publish(registry), publish(registry)
    registry.promote(a)
    registry.promote(b)
    state = registry.promote(b, expected=a)
    assert (state.version, state.history) == (b, [a])


def _promote_expecting(root: str, version: str, results: Queue[str], start: Barrier) -> None:
    registry = ModelRegistry(Path(root))
    read = registry.promoted()
    start.wait(timeout=30)
    try:
        registry.promote(version, expected=read)
        results.put(version)
    except PointerMoved:
        results.put("moved")


def test_of_processes_that_read_the_same_pointer_exactly_one_promotes(tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path)
    first = publish(registry)
    registry.promote(first)
    contenders = [publish(registry) for _ in range(4)]
    context = multiprocessing.get_context("spawn")
    results: Queue[str] = context.Queue()
    start = context.Barrier(len(contenders))
    processes = [
        context.Process(target=_promote_expecting, args=(str(tmp_path), v, results, start))
        for v in contenders
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=60)
    assert [p.exitcode for p in processes] == [0] * len(processes)

    outcomes = sorted(results.get(timeout=10) for _ in contenders)
    [winner] = [o for o in outcomes if o != "moved"]
    assert outcomes.count("moved") == len(contenders) - 1
    state = registry.promotion()
    assert (state.version, state.history) == (winner, [first])


# concurrency ------------------------------------------------------------------------------


def test_concurrent_promotes_from_threads_lose_nothing(tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path)
    versions = [publish(registry) for _ in range(40)]
    chunks = [versions[i::4] for i in range(4)]
    torn: list[Exception] = []
    stop = threading.Event()

    def promoter(chunk: list[str]) -> None:
        own = ModelRegistry(tmp_path)  # as separate workers would
        for version in chunk:
            own.promote(version)

    def reader() -> None:
        own = ModelRegistry(tmp_path)
        while not stop.is_set():
            try:
                if own.pointer.is_file():
                    json.loads(own.pointer.read_bytes())
                own.promotion()
            except Exception as exc:
                torn.append(exc)

    watcher = threading.Thread(target=reader)
    watcher.start()
    threads = [threading.Thread(target=promoter, args=(chunk,)) for chunk in chunks]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stop.set()
    watcher.join()

    assert torn == []
    state = registry.promotion()
    # every promote moved the pointer to a new version, so none may be lost
    assert len(state.history) == len(versions) - 1
    assert state.version is not None
    assert sorted([*state.history, state.version]) == versions


def _promote_all(root: str, chunk: list[str], start: Barrier) -> None:
    registry = ModelRegistry(Path(root))
    start.wait(timeout=30)
    for version in chunk:
        registry.promote(version)


def _publish_many(root: str, worker: int, count: int, start: Barrier) -> None:
    registry = ModelRegistry(Path(root))
    start.wait(timeout=30)
    for i in range(count):
        content = f"worker-{worker}-{i}"
        registry.publish(writer(content), labels=["a", "b"], notes=content)


def _run_together(target: Callable[..., None], args: list[tuple[object, ...]]) -> None:
    """Run ``target`` in fresh processes that start their work at the same moment."""
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(len(args))
    processes = [context.Process(target=target, args=(*a, start)) for a in args]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=60)
    assert [p.exitcode for p in processes] == [0] * len(processes)


def test_concurrent_promotes_from_processes_lose_nothing(tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path)
    versions = [publish(registry) for _ in range(30)]

    _run_together(_promote_all, [(str(tmp_path), versions[i::3]) for i in range(3)])

    state = registry.promotion()
    assert len(state.history) == len(versions) - 1
    assert state.version is not None
    assert sorted([*state.history, state.version]) == versions
    json.loads(registry.pointer.read_text())
    assert not list(tmp_path.glob(".promoted.json.*.tmp"))


def test_concurrent_publishes_from_processes_never_collide(tmp_path: Path) -> None:
    workers, each = 3, 8

    _run_together(_publish_many, [(str(tmp_path), worker, each) for worker in range(workers)])

    registry = ModelRegistry(tmp_path)
    assert registry.versions() == [f"v{i:04d}" for i in range(1, workers * each + 1)]
    cards = registry.cards()
    assert sorted(c.notes or "" for c in cards) == sorted(
        f"worker-{w}-{i}" for w in range(workers) for i in range(each)
    )
    for card in cards:
        # each folder holds what its own publisher wrote, and its card says so
        assert (registry.model_path(card.version) / "weights.txt").read_text() == card.notes
    assert hidden_entries(registry) == []
