"""Thin clients for the services alloop talks to, each given explicit addresses: Kafka, Argilla."""
