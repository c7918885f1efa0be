"""Light fakes shipped with the package for tests and demos: models without torch."""
