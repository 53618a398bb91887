"""A finished output remembers the run that wrote it, so that ``--resume`` of the same run does nothing.

``t5cls score ... -o out.csv --resume`` in cron is safe to rerun: after a finished run, the next
one must not score the whole file again. When a local run with ``--resume`` finishes, its
fingerprint (the one a checkpoint holds: input file, model, labels, template, options; a local
model folder is known by the digest of its files, `t5cls.models.identity`) is
written beside the output in ``.<name>.t5cls-done``, with the output's size and modification
time. A later ``--resume`` whose fingerprint is the same, finding the output as that run left
it, is up to date: it exits 0 having loaded no weights and scored nothing. Anything else (a
changed input, option or model file, an output touched since) runs as before. Only local outputs are
recorded; a URI output is scored again.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

from t5cls.errors import T5clsWarning
from t5cls.io.atomic import write_text_atomically
from t5cls.io.paths import Destination, sidecar
from t5cls.io.resume_check import model_files_changed
from t5cls.options import ModelOptions
from t5cls.run.plan import ScorePlan


def record_finished(destination: Destination, fingerprint: dict[str, str], resume: bool) -> None:
    """After a run with ``resume``, write ``output``'s record: the run's fingerprint and the file as it stands.

    A run without ``resume`` leaves no hidden file behind, and drops the record of an earlier one.
    An output in object storage (a URI) gets no record: a ``--resume`` after it finished scores again.
    """
    if destination.kind == "uri":
        return
    output = destination.target
    record = sidecar(output, "done")
    if resume:
        write_text_atomically(record, json.dumps({"fingerprint": fingerprint, "output": _stat(output)}, indent=1))
    else:
        record.unlink(missing_ok=True)


def up_to_date(plan: ScorePlan, model: ModelOptions) -> bool:
    """Whether a ``--resume`` of ``plan`` would rewrite the same output that an identical run finished.

    Reads the model's config and tokenizer and, for a local folder, the digest of its files (its identity
    is part of the fingerprint; `t5cls.models.identity`), but loads no weights. When the reasons to score again
    include a local model's changed files, a note says so.
    """
    options = plan.options
    if not options.resume or options.input == "-" or plan.destination.kind != "file":
        return False
    try:
        record = json.loads(sidecar(options.output, "done").read_text())
    except (OSError, ValueError):
        return False
    if not os.path.exists(options.output) or record.get("output") != _stat(options.output):
        return False
    recorded, current = record.get("fingerprint"), _fingerprint(plan, model)
    if recorded == current:
        return True
    if isinstance(recorded, dict) and model_files_changed(recorded, current):
        message = f"the model's files changed since {options.output} was written; scoring it again"
        warnings.warn(message, T5clsWarning, stacklevel=2)
    return False


def _fingerprint(plan: ScorePlan, model: ModelOptions) -> dict[str, str]:
    from t5cls.models.identity import describe_pretrained
    from t5cls.run.provenance import fingerprint

    return fingerprint(plan, describe_pretrained(model), [plan.options.input])


def _stat(path: str) -> list[int]:
    status = Path(path).stat()
    return [status.st_size, status.st_mtime_ns]
