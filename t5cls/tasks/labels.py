"""Label sets: the names a user gives, checked before any model sees them."""

from __future__ import annotations

from collections.abc import Sequence

from t5cls.errors import InputError, OptionError, literal


def parse_labels(spec: str | Sequence[str]) -> list[str]:
    """Split an ``"a,b,c"`` string (or take a list) and check the names: at least two, unique, non-empty.

    The blanks around each comma of a string are dropped (``"positive, negative"`` is ``positive``
    and ``negative``): typed in a shell they are a habit, not part of the label. A label that needs
    a leading space (a decoder-only model's word boundary) comes from a list or a config.
    """
    labels = [label.strip() for label in spec.split(",")] if isinstance(spec, str) else list(spec)
    for index, label in enumerate(labels):
        if not isinstance(label, str) or not label.strip():
            raise OptionError(
                f"label {index + 1} is empty; give non-empty labels in {{labels}}, e.g. positive,negative"
            )
    seen: set[str] = set()
    for label in labels:
        if label in seen:
            raise OptionError(f"label {literal(repr(label))} is given twice in {{labels}}; each label must be unique")
        seen.add(label)
    if len(labels) < 2:
        raise OptionError(f"{{labels}} needs at least two labels to compare, got {literal(repr(labels))}")
    return labels


def check_distinct(labels: Sequence[str], sequences: Sequence[Sequence[int]]) -> None:
    """Two labels with the same token ids could never be told apart, so that is an error."""
    owner: dict[tuple[int, ...], str] = {}
    for label, ids in zip(labels, sequences):
        key = tuple(ids)
        if key in owner:
            raise InputError(
                f"labels {owner[key]!r} and {label!r} tokenize to the same ids {list(key)}; "
                "the model cannot tell them apart, so use distinct label words"
            )
        owner[key] = label
