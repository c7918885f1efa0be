"""The local default infrastructure (broker, Redis, Argilla) and how other commands find it."""
