"""Document classification: the classifier contract (``base``), SetFit, serving, evaluation."""
