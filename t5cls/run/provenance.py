"""What a run records about itself: the resume fingerprint and the output's provenance metadata.

Local and Ray runs build both from the same plan and the same `ModelIdentity`, so they record the
same keys and values.
"""

from __future__ import annotations

import json
from dataclasses import asdict

from t5cls import __version__
from t5cls.io.paths import file_identity
from t5cls.models.loading import ModelIdentity
from t5cls.run.plan import ScorePlan


def fingerprint(plan: ScorePlan, model: ModelIdentity, inputs: list[str]) -> dict[str, str]:
    """What must be unchanged for ``resume`` to continue a checkpoint (``-`` cannot be identified)."""
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
    return recorded


def provenance(plan: ScorePlan, model: ModelIdentity) -> dict[str, str]:
    """Key-value metadata stored in Parquet output: the model, and the labels and template or the config."""
    metadata = {"t5cls.version": __version__, "t5cls.model": model.name, "t5cls.model_revision": model.revision}
    if plan.config is None:
        metadata["t5cls.labels"] = json.dumps(list(plan.tasks[0].classes), ensure_ascii=False)
        metadata["t5cls.template"] = plan.tasks[0].template.template
    else:
        metadata["t5cls.config"] = plan.config.text
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
