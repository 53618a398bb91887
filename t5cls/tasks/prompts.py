"""Prompt templates: turn each input row into the text the encoder reads.

A template is a Python format string whose placeholders are input column names, plus
``{labels}`` for the comma-joined label list. In a multi-label task, which asks one question
per class, ``{label}`` is the class being asked (elsewhere it is an ordinary column name). Only
plain names are allowed (no format specs or conversions), so a template is checked against the
input's columns before any scoring.
"""

from __future__ import annotations

import string
from collections.abc import Mapping, Sequence

from t5cls.errors import InputError, OptionError, literal

DEFAULT_TEMPLATE = "{text}\n\nOptions: {labels}\nAnswer:"
DEFAULT_TEXT_COLUMN = "text"  # the column that {text} reads unless told otherwise
LABELS_FIELD = "labels"
LABEL_FIELD = "label"


class PromptTemplate:
    """A validated format string; `render` fills it for a chunk of rows."""

    def __init__(self, template: str, text_column: str = DEFAULT_TEXT_COLUMN, asks_label: bool = False):
        """``{text}`` in the template means ``text_column`` (so ``--text-column body`` just works).

        ``asks_label`` makes ``{label}`` the class being asked (multi-label tasks) instead of a column.
        """
        self.template = template
        self.text_column = text_column
        self.fields = self._parse(template)
        self.filled_in = {LABELS_FIELD, LABEL_FIELD} if asks_label else {LABELS_FIELD}

    @staticmethod
    def _parse(template: str) -> list[str]:
        try:
            parsed = list(string.Formatter().parse(template))
        except ValueError as err:
            raise InputError(
                f"template {template!r} is not a valid format string ({err}); write literal braces as {{{{ }}}}"
            ) from None
        fields = []
        for _, name, spec, conversion in parsed:
            if name is None:
                continue
            if not name or spec or conversion or not name.replace("_", "").replace("-", "").replace(" ", "").isalnum():
                raise InputError(
                    f"template placeholder {{{name}}} is not a plain column name; use e.g. {{text}} or {{premise}}"
                )
            fields.append(name)
        return fields

    def columns_needed(self) -> list[str]:
        """Input columns the template reads, ``{text}`` resolved to the text column."""
        needed = []
        for name in self.fields:
            column = self.text_column if name == "text" else name
            if name not in self.filled_in and column not in needed:
                needed.append(column)
        return needed or [self.text_column]

    def missing_columns(self, available: Sequence[str]) -> list[str]:
        """Columns the template reads that ``available`` lacks."""
        return [column for column in self.columns_needed() if column not in available]

    def check_columns(self, available: Sequence[str], source: str) -> None:
        """Fail before scoring when a placeholder names a column the input lacks."""
        for column in self.missing_columns(available):
            shown = ", ".join(available)
            if column == self.text_column and "text" in self.fields:
                raise OptionError(
                    f"{literal(source)}: no text column {literal(repr(column))}; columns are: {literal(shown)} "
                    "(choose one with {text_column})"
                )
            raise InputError(f"template placeholder {{{column}}} is not a column of {source}; columns are: {shown}")

    def render(self, columns: Mapping[str, Sequence[str]], labels: Sequence[str], label: str = "") -> list[str]:
        """Fill the template for every row; ``columns`` maps column name to that column's strings.

        ``label`` fills ``{label}`` when the template `asks_label`.
        """
        fixed = {LABELS_FIELD: ", ".join(labels), LABEL_FIELD: label}
        size = len(next(iter(columns.values())))
        values = {
            name: columns[self.text_column if name == "text" else name]
            for name in self.fields
            if name not in self.filled_in
        }
        rendered = []
        for row in range(size):
            fill = {name: column[row] for name, column in values.items()}
            fill.update({name: fixed[name] for name in self.filled_in})
            rendered.append(self.template.format(**fill))
        return rendered
