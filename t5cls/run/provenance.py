"""What a run records about itself: the resume fingerprint and the output's provenance metadata.

Local and Ray runs build both from the same plan and the same `ModelIdentity`, so they record the
same keys and values.
"""

from __future__ import annotations

import json
from dataclasses import asdict

from t5cls import __version__
from t5cls.io.paths import file_identity
from t5cls.models.identity import ModelIdentity
from t5cls.run.plan import ScorePlan


def fingerprint(plan: ScorePlan, model: ModelIdentity, inputs: list[str]) -> dict[str, str]:
    """What must be unchanged for ``resume`` to continue a checkpoint (``-`` cannot be identified).

    Few-shot examples files count as inputs: any change to one (its SHA-256) refuses to resume.
    """
    options = asdict(plan.options)
    options.pop("resume")
    identities = [[path, file_identity(path) if path != "-" else None] for path in inputs]
    recorded = {
        "t5cls version": __version__,
        "input file": json.dumps(identities),
        "model": json.dumps(asdict(model), sort_keys=True),
        "options": json.dumps(options, sort_keys=True),
    }
    if plan.config is not None:
        recorded["config"] = plan.config.text
    if examples := {task.name: task.examples.fingerprint() for task in plan.tasks if task.examples is not None}:
        recorded["examples"] = json.dumps(examples, sort_keys=True)
    return recorded


def provenance(plan: ScorePlan, model: ModelIdentity) -> dict[str, str]:
    """Key-value metadata stored in Parquet output: the model, and the labels and template or the config.

    A config with few-shot ``examples`` also records, per task, the examples file, its SHA-256 and
    every demonstration shown (row, gold class, answer, template columns), so the exact prompt
    prefix can be rebuilt from the output alone.
    """
    metadata = {"t5cls.version": __version__, "t5cls.model": model.name, "t5cls.model_revision": model.revision}
    if model.files is not None:  # a local folder: the digest of its files (`t5cls.models.identity`)
        metadata["t5cls.model_files"] = model.files
    if plan.config is None:
        metadata["t5cls.labels"] = json.dumps(list(plan.tasks[0].classes), ensure_ascii=False)
        metadata["t5cls.template"] = plan.tasks[0].template.template
    else:
        metadata["t5cls.config"] = plan.config.text
    if examples := {task.name: task.examples.record() for task in plan.tasks if task.examples is not None}:
        metadata["t5cls.examples"] = json.dumps(examples, ensure_ascii=False)
    metadata["t5cls.dtype"] = model.dtype
    metadata["t5cls.options"] = json.dumps(
        {
            "text_column": plan.options.text_column,
            "on_null": plan.options.on_null,
            "max_length": model.max_length,
            "label_end": model.label_end,
            "chat": model.chat,
        }
    )
    return metadata
