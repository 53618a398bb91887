"""Runs: a validated plan, the chunk step, and the runners that stream files through a scorer.

`plan.ScorePlan` decides everything that needs no model; `chunks.ChunkScorer` turns one input
chunk into one output chunk; `local.LocalRunner` streams a file through it in this process and
`ray.RayRunner` spreads the chunks of many files over a Ray actor pool.
"""
