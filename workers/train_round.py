"""One training round in its own process: ``python -m workers.train_round``.

The trainer worker starts it each time enough labels arrived, so that a round's memory (torch,
the model, the datasets) goes back to the system when it ends and a crash in training cannot
take the trainer down. It reads the settings from the environment, the labels from the label
store, runs :func:`loop.rounds.run_round` and prints the result as one JSON line.
"""

from __future__ import annotations

import json
import sys

from loop.labels import LabelStore
from loop.memory import tune_malloc
from loop.models.base import ClassifierConfig
from loop.models.factories import factory_for
from loop.promotion import Gate
from loop.registry import ModelRegistry
from loop.rounds import RoundConfig, run_round
from loop.settings import Settings
from workers import logs


def round_config(settings: Settings) -> RoundConfig:
    trainer = settings.trainer
    return RoundConfig(
        test_fraction=trainer.test_fraction,
        full_finetune_every=trainer.full_finetune_every,
        gate=Gate(trainer.max_macro_f1_drop, trainer.max_label_f1_drop),
        classifier=ClassifierConfig(num_iterations=trainer.num_iterations),
    )


def main() -> int:
    settings = Settings()
    logs.configure(settings.log_level)
    tune_malloc()
    store = LabelStore(
        settings.labels_path, settings.argilla.min_submitted, settings.argilla.min_agreement
    )
    registry = ModelRegistry(settings.registry_path)
    result = run_round(
        store.labelled(settings.trainer.task),
        registry,
        factory_for(settings.trainer.model_kind),
        round_config(settings),
    )
    print(json.dumps(result.to_dict()), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
