"""One training round in its own process: ``python -m workers.train_round [--task NAME]``.

The trainer worker starts it each time enough labels arrived, so that a round's memory (torch,
the model, the datasets) goes back to the system when it ends and a crash in training cannot
take the trainer down. It reads the settings from the environment, the labels from the label
store, runs :func:`loop.training.rounds.run_round` (or, for the entity task,
:func:`loop.entities.rounds.run_entity_round`) and prints the result as one JSON line.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import threading
import time

from loop import logs
from loop.classification.base import ClassifierConfig
from loop.classification.factories import factory_for
from loop.entities.base import ExtractorConfig
from loop.entities.factories import factory_for as extractor_factory
from loop.entities.rounds import EntityRoundConfig, run_entity_round
from loop.entities.serving import load_patterns
from loop.labels import LabelStore
from loop.memory import tune_malloc
from loop.registry import ModelRegistry
from loop.settings import Settings
from loop.training.gate import Gate
from loop.training.rounds import RoundConfig, run_round

logger = logging.getLogger(__name__)


def end_with_parent(parent: int, interval_s: float = 0.5) -> None:
    """End this process as soon as the trainer that started it (process ``parent``) is gone.
    A SIGKILLed trainer can neither stop its round nor wait for it, and its successor starts
    a round of its own: the orphan would go on beside it, racing it to publish. Ending
    mid-publish is safe (the registry removes staging folders nobody holds)."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(interval_s)
        logger.warning("the trainer (pid %s) is gone: ending its training round", parent)
        os._exit(3)

    threading.Thread(target=watch, name="end-with-trainer", daemon=True).start()


def gate(settings: Settings) -> Gate:
    trainer = settings.trainer
    return Gate(
        tolerance=trainer.max_macro_f1_drop,
        max_label_f1_drop=trainer.max_label_f1_drop,
        min_test_size=trainer.min_test_size,
        confidence=trainer.gate_confidence,
        min_label_support=trainer.min_label_support,
    )


def round_config(settings: Settings) -> RoundConfig:
    trainer = settings.trainer
    return RoundConfig(
        full_finetune_every=trainer.full_finetune_every,
        gate=gate(settings),
        classifier=ClassifierConfig(
            num_iterations=trainer.num_iterations,
            head_c=trainer.head_c,
            multi_label=settings.classification.multi_label,
        ),
    )


def entity_round_config(settings: Settings) -> EntityRoundConfig:
    task = settings.entities
    return EntityRoundConfig(
        types=tuple(task.types),
        gate=gate(settings),
        patterns=load_patterns(task.gazetteers) if task.patterns else None,
        merge=task.merge,
        extractor=ExtractorConfig(
            epochs=task.epochs, time_budget_s=task.time_budget_s, quantize=task.quantize
        ),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m workers.train_round",
        description="Run one training round on the label store and print its result as JSON.",
    )
    parser.add_argument(
        "--task",
        help="the task to train (default: ALLOOP_TRAINER__TASK; the entity task's name "
        "trains the entity extractor)",
    )
    parser.add_argument(
        "--parent",
        type=int,
        help="the trainer's process id: the round ends when that process is gone",
    )
    args = parser.parse_args(argv)
    settings = Settings()
    logs.configure(settings.log_level, settings.library_log)
    if args.parent is not None:
        end_with_parent(args.parent)
    tune_malloc()
    store = LabelStore(
        settings.labels_path, settings.argilla.min_submitted, settings.argilla.min_agreement
    )
    task = args.task or settings.trainer.task
    if task in settings.entity_tasks:
        result = run_entity_round(
            store.labelled(task),
            ModelRegistry(settings.entity_registry_path),
            extractor_factory(settings.entities.model_kind),
            entity_round_config(settings),
        )
    else:
        result = run_round(
            store.labelled(task),
            ModelRegistry(settings.registry_path),
            factory_for(settings.trainer.model_kind, settings.home / "trainer" / "embeddings"),
            round_config(settings),
        )
    print(json.dumps({"task": task, **result.to_dict()}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
