"""What people label: uncertainty and diversity strategies, and the budget between them."""
