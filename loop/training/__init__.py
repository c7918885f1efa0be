"""Training rounds: the test split, the gate, the round skeleton, the seed model."""
