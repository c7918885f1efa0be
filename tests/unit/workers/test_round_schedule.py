"""When the trainer runs rounds, also for answers it stored before a restart."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

from loop.labels import LabelStore
from loop.messages import LabelEvent
from loop.registry import ModelRegistry
from loop.testing.clock import ManualClock
from workers.round_schedule import Backlog, RetrainPolicy, RoundSchedule

TASK = "classification"
START = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def answers(store: LabelStore, count: int, at: datetime, task: str = TASK, first: int = 0) -> None:
    store.add(
        LabelEvent(
            id=f"d{i}",
            text=f"text {i}",
            task=task,
            label="up" if i % 2 else "down",
            response_id=f"{task}-r{i}",
            labelled_at=at,
        )
        for i in range(first, first + count)
    )


def version(registry: ModelRegistry, newest_label_at: datetime | None) -> str:
    def save(path: Path) -> None:
        path.mkdir()
        (path / "weights.txt").write_text("w")

    counts = {"newest_label_at": newest_label_at.isoformat()} if newest_label_at else {}
    return registry.publish(save, labels=["down", "up"], counts=counts).version


class Trainer:
    """What the trainer would run; each round ends with the outcome the test chose."""

    def __init__(self, clocks: ManualClock, outcomes: list[bool] | None = None) -> None:
        self.clocks, self.outcomes, self.rounds = clocks, outcomes or [], list[str]()

    def __call__(self, task: str) -> bool:
        self.rounds.append(task)
        self.clocks.advance(30)  # a round takes a while
        return self.outcomes.pop(0) if self.outcomes else True


def restarted(
    tmp_path: Path,
    clocks: ManualClock,
    trainer: Trainer,
    min_new: int = 20,
    max_wait_s: float = 300,
) -> RoundSchedule:
    """A trainer that starts on the store and registry that ``tmp_path`` holds."""
    store = LabelStore(tmp_path / "labels.db")
    registries = {TASK: ModelRegistry(tmp_path / "registry")}
    return RoundSchedule(
        {TASK: RetrainPolicy(min_new, max_wait_s)},
        trainer,
        backlog=Backlog.of(store, registries),
        check_every_s=60,
        clock=clocks,
        wall=clocks.wall,
    )


def test_answers_stored_before_a_restart_start_a_round_once_they_waited(tmp_path: Path) -> None:
    clocks, trainer = ManualClock(wall_at_start=START), Trainer(ManualClock(wall_at_start=START))
    registry = ModelRegistry(tmp_path / "registry")
    version(registry, START - timedelta(hours=2))
    # five answers below the threshold of twenty, stored ten minutes before the restart
    answers(LabelStore(tmp_path / "labels.db"), 5, START - timedelta(minutes=10))

    schedule = restarted(tmp_path, clocks, trainer)
    schedule.tick(Counter())

    assert trainer.rounds == [TASK]  # no new label was needed
    clocks.advance(3600)
    schedule.tick(Counter())
    assert trainer.rounds == [TASK], "answers a round covered do not start another"


def test_enough_stored_answers_start_a_round_at_once(tmp_path: Path) -> None:
    clocks, trainer = ManualClock(wall_at_start=START), Trainer(ManualClock(wall_at_start=START))
    answers(LabelStore(tmp_path / "labels.db"), 20, START - timedelta(seconds=5))

    restarted(tmp_path, clocks, trainer).tick(Counter())

    assert trainer.rounds == [TASK]


def test_young_stored_answers_wait_out_the_rest_of_their_time(tmp_path: Path) -> None:
    clocks = ManualClock(wall_at_start=START)
    trainer = Trainer(clocks)
    answers(LabelStore(tmp_path / "labels.db"), 5, START - timedelta(seconds=100))
    schedule = restarted(tmp_path, clocks, trainer)

    schedule.tick(Counter())
    assert trainer.rounds == []
    clocks.advance(150)  # 250 s after the answers, of 300
    schedule.tick(Counter())
    assert trainer.rounds == []
    clocks.advance(60)
    schedule.tick(Counter())
    assert trainer.rounds == [TASK]


def test_answers_the_latest_version_was_trained_on_start_no_round(tmp_path: Path) -> None:
    clocks, trainer = ManualClock(wall_at_start=START), Trainer(ManualClock(wall_at_start=START))
    store = LabelStore(tmp_path / "labels.db")
    answered = START - timedelta(hours=1)
    answers(store, 30, answered)
    # the round that made it ended later than the answers: its card says what it trained on
    version(ModelRegistry(tmp_path / "registry"), answered)

    schedule = restarted(tmp_path, clocks, trainer)
    schedule.tick(Counter())
    clocks.advance(3600)
    schedule.tick(Counter())

    assert trainer.rounds == []


def test_a_seed_models_labels_start_no_round(tmp_path: Path) -> None:
    clocks, trainer = ManualClock(wall_at_start=START), Trainer(ManualClock(wall_at_start=START))
    answers(LabelStore(tmp_path / "labels.db"), 48, START - timedelta(hours=1))  # seeded
    version(ModelRegistry(tmp_path / "registry"), None)  # then trained on: no newest_label_at

    restarted(tmp_path, clocks, trainer).tick(Counter())

    assert trainer.rounds == []


def test_a_failed_round_is_retried_after_the_wait_without_a_new_label(tmp_path: Path) -> None:
    clocks = ManualClock(wall_at_start=START)
    trainer = Trainer(clocks, outcomes=[False, True])
    answers(LabelStore(tmp_path / "labels.db"), 25, START - timedelta(seconds=5))
    schedule = restarted(tmp_path, clocks, trainer)

    schedule.tick(Counter())
    assert trainer.rounds == [TASK]  # it fails
    for _ in range(4):  # 240 s of checks
        clocks.advance(60)
        schedule.tick(Counter())
    assert trainer.rounds == [TASK], "not retried at once, nor at every check"
    clocks.advance(120)
    schedule.tick(Counter())
    assert trainer.rounds == [TASK, TASK]
    clocks.advance(3600)
    schedule.tick(Counter())
    assert trainer.rounds == [TASK, TASK], "the retry ran to its end"


def test_new_answers_after_a_round_count_from_zero(tmp_path: Path) -> None:
    clocks = ManualClock(wall_at_start=START)
    trainer = Trainer(clocks)
    store = LabelStore(tmp_path / "labels.db")
    answers(store, 20, START - timedelta(seconds=5))
    schedule = restarted(tmp_path, clocks, trainer)
    schedule.tick(Counter())
    assert trainer.rounds == [TASK]

    answers(store, 10, clocks.wall(), first=100)  # stored by the trainer, as it counts them
    schedule.tick(Counter({TASK: 10}))
    clocks.advance(60)
    schedule.tick(Counter({TASK: 10}))
    assert trainer.rounds == [TASK], "ten of twenty, and they waited 60 s of 300"


def test_each_task_has_its_own_registry_and_backlog(tmp_path: Path) -> None:
    clocks, trainer = ManualClock(wall_at_start=START), Trainer(ManualClock(wall_at_start=START))
    store = LabelStore(tmp_path / "labels.db")
    answered = START - timedelta(hours=1)
    answers(store, 30, answered)
    answers(store, 3, answered, task="entities")
    version(ModelRegistry(tmp_path / "registry"), answered)
    schedule = RoundSchedule(
        {TASK: RetrainPolicy(20, 300), "entities": RetrainPolicy(10, 300)},
        trainer,
        backlog=Backlog.of(
            LabelStore(store.path),
            {
                TASK: ModelRegistry(tmp_path / "registry"),
                "entities": ModelRegistry(tmp_path / "registry" / "entities"),
            },
        ),
        clock=clocks,
        wall=clocks.wall,
    )

    schedule.tick(Counter())

    assert trainer.rounds == ["entities"]  # no entity version covers them
