"""alloop's processes: Kafka I/O, the scorer, the local stack and the ``alloop`` command."""
