"""Tasks: the questions asked of every row (labels, prompts, scoring modes), all model-free."""
