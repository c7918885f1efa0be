"""Entity extraction: the contract (``base``), readers, metrics, patterns and extractors."""
