"""alloop's core: typed data, model contracts, registry. No Kafka, HTTP server or Argilla here."""

__version__ = "0.1.0"
