"""The root of every error alloop raises on purpose; the API and the CLI map these in one place."""


class AlloopError(Exception):
    """Base class for alloop's own errors."""


class MessageError(AlloopError):
    """A message could not be decoded or does not match its schema."""


class InputError(AlloopError):
    """An input file or record cannot be read."""


class ModelError(AlloopError):
    """A model could not be trained, saved, loaded or run."""


class RegistryError(AlloopError):
    """The model registry was asked for something it cannot do."""


class VersionNotFound(RegistryError):
    """No model version with that name exists."""


class NothingToRollBack(RegistryError):
    """Rollback was asked for but no earlier promotion exists."""


class ConfigError(AlloopError):
    """The configuration is incomplete or contradictory."""


class PointerMoved(RegistryError):
    """A promotion expected the promoted pointer at one version, and it had moved meanwhile
    (a person promoted or rolled back while a round ran)."""

    def __init__(self, expected: str | None, actual: str | None) -> None:
        super().__init__(
            f"the promoted pointer moved: expected {expected or 'nothing promoted'}, "
            f"found {actual or 'nothing promoted'}; the pointer stays where it is"
        )
        self.expected = expected
        self.actual = actual
