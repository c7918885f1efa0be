"""The packaged sentence encoder both tasks share, and the cache of its embeddings."""
