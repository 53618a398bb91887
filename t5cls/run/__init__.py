"""Runs: one entry point, a validated plan, the chunk step, and the runners that stream files through a scorer.

`job.score_file` is the whole of ``t5cls score`` (local, Ray or dry run). `plan.ScorePlan`
decides everything that needs no model; `chunks.ChunkScorer` turns one input chunk into one
output chunk; `local.LocalRunner` streams a file through it in this process and `ray.RayRunner`
spreads the chunks of many files over a Ray actor pool, both built from a plan.
`calibrate.calibrate_file` scores a dev file the same way and hands the scores to the fit.
"""
