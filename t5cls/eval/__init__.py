"""Evaluation of scored files: metrics, reports, plots, temperature calibration and triage."""
