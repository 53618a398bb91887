"""Whether a checkpoint may be continued: the run's fingerprint then and now, compared field by field.

A fingerprint maps parts of a run (``options``, ``model``, ``input file``, ``config``...) to text,
the option sets as JSON objects. A refusal names every field that changed, by the parameter that
sets it (an `OptionError` placeholder, shown as its flag on the CLI), with both values, and says
what starting over costs. One change is let through: ``on_null`` from ``error`` to another policy.
A run that stopped on a null row under ``error`` had no null row in its finished chunks, so those
chunks are what ``skip`` or ``empty`` would have written; the error's own advice can be followed.
"""

from __future__ import annotations

import json
from pathlib import Path

from t5cls.errors import OptionError, literal

JSON_PARTS = ("options", "model")
UNDOABLE = (*JSON_PARTS, "tasks")  # parts that the first run's flags would set back as they were
PARAMETERS = {"name": "name_or_path"}  # a model identity field -> the parameter that sets it
PARTS = {
    "t5cls version": "the t5cls version changed",
    "input file": "the input file changed (its size, modification time or first MiB)",
    "train file": "the training file changed (its size, modification time or first MiB)",
    "dev file": "the dev file changed (its size, modification time or first MiB)",
    "model files": "the model's files changed",
    "tasks": "the tasks changed",
    "config": "the config file's text changed",
    "examples": "a few-shot examples file changed",
}


def check_same_run(saved: dict[str, str], current: dict[str, str], path: Path, finished: int | None = None) -> None:
    """Refuse to continue ``path``'s checkpoint unless the run is the same, naming what changed."""
    changed = {key: _changes(key, saved, current) for key in sorted(set(saved) | set(current))}
    changes = [change for key_changes in changed.values() for change in key_changes]
    if not changes:
        return
    chunks = (
        "finished chunks are" if finished is None else f"{finished} finished chunk{'s are' if finished != 1 else ' is'}"
    )
    # Options can be typed again as they were; a changed file or version cannot be undone by any flag.
    undoable = all(key in UNDOABLE for key, key_changes in changed.items() if key_changes)
    advice = ", or with the options of the first run to continue" if undoable else ""
    raise OptionError(
        f"cannot resume {literal(path)}: {'; '.join(changes)} since the checkpoint; rerun without {{resume}} to "
        f"start over (the {chunks} scored again){advice}"
    )


def _changes(key: str, saved: dict[str, str], current: dict[str, str]) -> list[str]:
    """What changed in one part of the fingerprint, as message fragments (none when it may resume)."""
    before, after = saved.get(key), current.get(key)
    if before == after:
        return []
    fields = _json_object(before), _json_object(after)
    if key in JSON_PARTS and None not in fields:
        return _field_changes(*fields)
    return [PARTS.get(key, f"{literal(key)} changed")]


def _json_object(text: str | None) -> dict | None:
    try:
        value = json.loads(text) if text is not None else None
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def model_files_changed(saved: dict[str, str], current: dict[str, str]) -> bool:
    """Whether the model of fingerprint ``current`` is the same folder as ``saved``'s with other content."""
    before, after = _json_object(saved.get("model")), _json_object(current.get("model"))
    if before is None or after is None or before.get("name") != after.get("name"):
        return False
    return before.get("files") != after.get("files")


def _field_changes(before: dict, after: dict) -> list[str]:
    changes = []
    for field in sorted(set(before) | set(after)):
        was, now = before.get(field), after.get(field)
        if was == now or (field == "on_null" and was == "error"):
            continue
        if field == "files":  # a local folder's content digest: no flag sets it, and its values say nothing to a user
            if before.get("name") == after.get("name"):
                changes.append(
                    f"the files of model {literal(after.get('name'))} changed (weights, config or tokenizer)"
                )
            continue
        parameter = PARAMETERS.get(field, field)
        changes.append(f"{{{parameter}}} changed (was {literal(_shown(was))}, now {literal(_shown(now))})")
    return changes


def _shown(value) -> str:
    """A value as a user typed it: text bare, a list comma-joined, nothing as 'unset'."""
    if value is None:
        return "unset"
    if isinstance(value, list):
        return ",".join(map(str, value))
    return json.dumps(value) if isinstance(value, bool) else str(value)
