"""Few-shot demonstrations: labelled rows of a file, picked once per task and shown before every row's prompt.

A task's ``examples = { file = "dev.csv", gold = "label", per_class = 2, seed = 0 }`` picks
``per_class`` rows of each class from ``file`` (a path relative to the config file's folder, an
absolute path or a URI), renders each with the task's own template and follows it with its gold
class as the answer; `t5cls.task_scorer.TaskScorer` writes the answers, because how an
answer follows a prompt is the model's rule. Picking needs no model and happens here, when the
config is loaded, so a bad examples file fails before the model loads and every row of a run
(and every Ray worker) gets the same demonstrations: a shared prefix.

The rule, deterministic for a seed and independent of the file's format and of chunking: every
data row ``r`` (1-based, header excluded) gets the key SHA-256 of the text ``"<seed>:<r>"`` read
as a big-endian number; for each class, the ``per_class`` rows of that class with the smallest
keys are its demonstrations, and all demonstrations are shown in increasing key order. So the
order mixes the classes, changes with the seed, and never puts one class last by construction
(the last demonstration's label biases predictions: Zhao et al., 2021). Rows are identified by
position, so editing a row's text keeps the rows picked.
"""

from __future__ import annotations

import hashlib
import heapq
import os
from collections.abc import Mapping, Sequence
from contextlib import closing
from dataclasses import dataclass

from t5cls.errors import InputError
from t5cls.io.paths import existing_file, is_uri
from t5cls.io.readers import SCAN_CHUNK_ROWS, open_input
from t5cls.tasks.prompts import PromptTemplate

KEYS = ("file", "gold", "per_class", "seed", "separator")
DEFAULT_SEPARATOR = "\n\n"
EXAMPLE = '{ file = "dev.csv", gold = "label", per_class = 2, seed = 0 }'


@dataclass(frozen=True)
class ExamplesSpec:
    """The ``examples`` key as written (``file``) and resolved (``path``, which errors and reads use)."""

    file: str
    path: str
    gold: str
    per_class: int
    seed: int = 0
    separator: str = DEFAULT_SEPARATOR


@dataclass(frozen=True)
class Demonstration:
    """One picked row: where it is, its class, the form written as its answer, and its template columns."""

    row: int  # 1-based data row of the examples file
    gold: str
    answer: str  # the class's first form (verbalizers: the first word listed)
    values: tuple[tuple[str, str], ...]  # (template column, text)


@dataclass(frozen=True)
class Examples:
    """A task's demonstrations, in the order they are shown, and the SHA-256 of the file they came from."""

    spec: ExamplesSpec
    sha256: str
    demonstrations: tuple[Demonstration, ...]

    def columns(self) -> dict[str, list[str]]:
        """The demonstrations' template columns, in the shape `PromptTemplate.render` takes."""
        names = [name for name, _ in self.demonstrations[0].values]
        return {name: [dict(demo.values)[name] for demo in self.demonstrations] for name in names}

    def fingerprint(self) -> dict[str, str]:
        """What resume compares: the file and its whole content (the config text holds the other keys)."""
        return {"file": self.spec.path, "sha256": self.sha256}

    def record(self) -> dict:
        """The provenance of a run: the file, its hash, the settings and every demonstration as shown."""
        spec = self.spec
        return {
            "file": spec.path,
            "sha256": self.sha256,
            "gold": spec.gold,
            "per_class": spec.per_class,
            "seed": spec.seed,
            "separator": spec.separator,
            "demonstrations": [
                {"row": demo.row, "gold": demo.gold, "answer": demo.answer, "values": dict(demo.values)}
                for demo in self.demonstrations
            ],
        }

    def rows_in(self, path: str) -> list[int]:
        """The 1-based rows of ``path`` shown as demonstrations: all of them if it is the examples file, else none.

        Such a row, scored or trained on, would have its own answer in its prompt already: an
        easy question that makes scores look sharper than they are, so calibration and training
        leave it out.
        """
        return [demo.row for demo in self.demonstrations] if same_file(self.spec.path, path) else []

    def file_from(self, folder: str) -> str:
        """``file`` as a config written in ``folder`` must say it (relative paths follow the config)."""
        if is_absolute(self.spec.file):
            return self.spec.file
        return os.path.relpath(os.path.abspath(self.spec.path), os.path.abspath(folder or "."))


def same_file(first: str, second: str) -> bool:
    """Whether two paths name one file (URIs: whether they are equal)."""
    if is_uri(first) or is_uri(second):
        return first == second
    try:
        return os.path.samefile(first, second)
    except OSError:
        return False


def is_absolute(file: str) -> bool:
    """Absolute paths and URIs are used as written; anything else is relative to the config's folder."""
    return is_uri(file) or os.path.isabs(file)


def parse_spec(value: object, config_path: str) -> ExamplesSpec:
    """Check the ``examples`` table of a task; ``file`` is resolved against the config file's folder."""
    if not isinstance(value, dict):
        raise InputError(f"must be a table like {EXAMPLE}, got {value!r}")
    for key in value:
        if key not in KEYS:
            raise InputError(f"unknown key {key!r} (keys are: {', '.join(KEYS)})")
    for key in ("file", "gold", "per_class"):
        if key not in value:
            raise InputError(f"missing key {key!r}, as in {EXAMPLE}")
    file, gold = _text_value(value, "file"), _text_value(value, "gold")
    separator, per_class, seed = value.get("separator", DEFAULT_SEPARATOR), value["per_class"], value.get("seed", 0)
    if not isinstance(separator, str):
        raise InputError(f"'separator' must be a string, got {separator!r}")
    if isinstance(per_class, bool) or not isinstance(per_class, int) or per_class < 1:
        raise InputError(f"'per_class' must be a positive whole number, got {per_class!r}")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise InputError(f"'seed' must be a whole number, got {seed!r}")
    path = file if is_absolute(file) else os.path.join(os.path.dirname(config_path), file)
    return ExamplesSpec(file, path, gold, per_class, seed, separator)


def _text_value(table: dict, key: str) -> str:
    value = table[key]
    if not isinstance(value, str) or not value:
        raise InputError(f"{key!r} must be a non-empty string, got {value!r}")
    return value


def load_examples(spec: ExamplesSpec, template: PromptTemplate, forms: Mapping[str, Sequence[str]]) -> Examples:
    """Read the examples file, check every row, and pick the demonstrations (``forms``: class -> its forms)."""
    sha256 = file_sha256(spec.path)
    with closing(open_input(spec.path, SCAN_CHUNK_ROWS)) as source:
        _check_columns(spec, template, source.columns)
        picked = _pick(spec, template.columns_needed(), forms, source.chunks)
    shown = sorted((rank, row, gold, values) for gold, kept in picked.items() for rank, row, values in kept)
    demonstrations = tuple(Demonstration(row, gold, forms[gold][0], values) for _, row, gold, values in shown)
    return Examples(spec, sha256, demonstrations)


def _check_columns(spec: ExamplesSpec, template: PromptTemplate, columns: Sequence[str]) -> None:
    for column in [*template.columns_needed(), spec.gold]:
        if column not in columns:
            role = "gold" if column == spec.gold else "template"
            raise InputError(f"{spec.path}: no {role} column {column!r}; columns are: {', '.join(columns)}")


def row_key(seed: int, row: int) -> int:
    """The rank of a row among its class's rows: SHA-256 of ``"<seed>:<row>"``, a stable shuffle."""
    return int.from_bytes(hashlib.sha256(f"{seed}:{row}".encode("ascii")).digest(), "big")


def _pick(spec: ExamplesSpec, needed: list[str], forms: Mapping[str, Sequence[str]], chunks) -> dict[str, list]:
    """Per class, the ``per_class`` (key, row, values) with the smallest keys; every row's gold must be a class.

    A bounded max-heap per class (keys negated) keeps only the candidates, whatever the file's size.
    """
    heaps: dict[str, list] = {name: [] for name in forms}
    counts = dict.fromkeys(forms, 0)
    row = 0
    for table in chunks:
        columns = {name: table.column(name).to_pylist() for name in needed}
        for index, value in enumerate(table.column(spec.gold).to_pylist()):
            row += 1
            gold = _gold(spec, row, value, forms)
            counts[gold] += 1
            values = tuple((name, _text(spec, row, name, columns[name][index])) for name in needed)
            entry = (-row_key(spec.seed, row), row, values)
            heap = heaps[gold]
            (heapq.heappush if len(heap) < spec.per_class else heapq.heappushpop)(heap, entry)
    for name, count in counts.items():
        if count < spec.per_class:
            raise InputError(
                f"{spec.path}: class {name!r} has {count} row(s) in gold column {spec.gold!r}, fewer than "
                f"per_class = {spec.per_class}; lower per_class or add rows of that class"
            )
    return {name: [(-negated, row, values) for negated, row, values in heap] for name, heap in heaps.items()}


def _gold(spec: ExamplesSpec, row: int, value: object, forms: Mapping[str, Sequence[str]]) -> str:
    """A row's gold class: its value as text, which must be a class name (not a form of one)."""
    gold = "" if value is None else str(value)
    if gold not in forms:
        raise InputError(
            f"{spec.path}: row {row}: gold value {value!r} in column {spec.gold!r} is not a class "
            f"({', '.join(forms)}); fix the row or remove it from the examples file"
        )
    return gold


def _text(spec: ExamplesSpec, row: int, name: str, value: object) -> str:
    """A template column as text; a blank demonstration would teach the model an empty question."""
    if value is None or (isinstance(value, str) and not value.strip()):
        raise InputError(
            f"{spec.path}: row {row}: column {name!r} is empty or null; fix the row or remove it from the examples file"
        )
    return str(value)


def file_sha256(path: str) -> str:
    """SHA-256 of the whole file, so resume notices any change to it (not only in its first MiB)."""
    filesystem, inner = existing_file(path)
    digest = hashlib.sha256()
    try:
        with filesystem.open_input_stream(inner) as stream:
            while block := stream.read(1 << 20):
                digest.update(block)
    except OSError as err:
        raise InputError(f"{path}: cannot read ({err.strerror or err})") from None
    return digest.hexdigest()
