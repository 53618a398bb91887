"""Task configs the tests write, each once."""

from __future__ import annotations

# A monoT5-style ranking task over {query} and {text}: p("true") ranks the rows (configs/relevance.toml reads
# {document} instead).
RELEVANCE = (
    '[[task]]\nname = "rel"\ntemplate = "Query: {query} Document: {text} Relevant:"\n'
    'labels = ["true", "false"]\nmode = "first"\npositive = "true"\n'
)
