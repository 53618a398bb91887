"""`t5cls.score_frame`: DataFrames, Arrow tables and polars frames in and out, as ``t5cls score`` scores files.

The reference is the CLI itself: the same rows written to Parquet and scored by ``t5cls score``
must come back with the same columns, dtypes and values; a frame's index and untouched columns
are the caller's own. Bad frames fail with one `InputError` naming the frame, the column and the
row (by index label).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import Phase, given, settings
from hypothesis import strategies as st

from helpers.cli import invoke
from helpers.generated import NASTY_TEXTS
from helpers.labels import UNSURE as LABELS
from helpers.stub_scorer import StubScorer
from t5cls import LabelScorer, score_frame
from t5cls.errors import InputError, OptionError
from t5cls.io.frames import ROW_COLUMN, as_frame, open_frame
from t5cls.options import ScoreOptions
from t5cls.run.job import score_file

CONFIG = """
[[task]]
name = "mood"
template = "Review {id}: {text}\\nMood:"
labels = { positive = ["positive", "good"], negative = ["negative", "bad"] }
mode = "batch"

[[task]]
name = "topic"
template = "{text}\\nTopic:"
labels = ["plot", "acting", "music"]
temperature = 0.7
"""
TEXTS = ["great plot", "boring acting", "", "café 東京 🙂", "the music", None, "so so", "x" * 60, "fine"] * 3


@pytest.fixture(scope="module")
def t5_scorer(t5_dir):
    return LabelScorer.from_pretrained(str(t5_dir), device="cpu")


def reviews() -> pd.DataFrame:
    """Text with blanks and nulls, an int id the config's template reads, a float and a bool; an index of labels."""
    rows = len(TEXTS)
    return pd.DataFrame(
        {
            "id": np.arange(100, 100 + rows),
            "text": TEXTS,
            "stars": [np.nan if i % 4 == 0 else i / 2 for i in range(rows)],
            "seen": [i % 3 == 0 for i in range(rows)],
        },
        index=[f"r{i}" for i in range(rows)],
    )


@pytest.mark.parametrize(
    ("task", "on_null"), [("labels", "skip"), ("config", "empty")], ids=["labels-skip", "config-empty"]
)
def test_dataframe_arrow_and_polars_match_the_cli_parquet_output(t5_dir, t5_scorer, tmp_path, task, on_null):
    frame = reviews()
    frame.to_parquet(tmp_path / "in.parquet", index=False)
    (tmp_path / "tasks.toml").write_text(CONFIG)
    cli_task = ["-l", ",".join(LABELS)] if task == "labels" else ["-c", tmp_path / "tasks.toml"]
    api_task = {"labels": LABELS} if task == "labels" else {"config": str(tmp_path / "tasks.toml")}
    result = invoke(
        "score", tmp_path / "in.parquet", *cli_task, "-m", t5_dir, "-o", tmp_path / "out.parquet",
        "--chunk-size", 5, "--logprobs", "--on-null", on_null, "--device", "cpu", "-q",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr.decode()
    expected = pq.read_table(tmp_path / "out.parquet")
    kept = [i for i, text in enumerate(TEXTS) if on_null == "empty" or (text or "").strip()]

    scored = score_frame(frame, model=t5_scorer, chunk_rows=5, logprobs=True, on_null=on_null, **api_task)
    pd.testing.assert_frame_equal(scored.reset_index(drop=True), pd.read_parquet(tmp_path / "out.parquet"))
    assert list(scored.index) == [frame.index[i] for i in kept]

    arrow = score_frame(pa.Table.from_pandas(frame, preserve_index=False), chunk_rows=5, logprobs=True,
                        on_null=on_null, model=t5_scorer, **api_task)  # fmt: skip
    assert arrow.schema.remove_metadata() == expected.schema.remove_metadata()
    assert arrow.equals(expected.replace_schema_metadata(arrow.schema.metadata))

    polars = score_frame(
        pl.from_pandas(frame), chunk_rows=5, logprobs=True, on_null=on_null, model=t5_scorer, **api_task
    )
    assert isinstance(polars, pl.DataFrame)
    assert polars.equals(pl.read_parquet(tmp_path / "out.parquet"))


def test_a_model_folder_is_loaded_with_the_model_keywords(t5_dir, t5_scorer):
    frame = pd.DataFrame({"text": ["good", "bad"]})
    by_name = score_frame(frame, LABELS, model=t5_dir, device="cpu", dtype="float32", batch_size=1)
    pd.testing.assert_frame_equal(by_name, score_frame(frame, LABELS, model=t5_scorer))
    with pytest.raises(InputError, match="device: these go with a model name or folder"):
        score_frame(frame, LABELS, model=t5_scorer, device="cpu")


def test_the_dataframe_keeps_its_own_columns_index_and_memory():
    frame = pd.DataFrame({"text": ["a", "b", "c"], "n": [1.5, 2.5, 3.5]}, index=pd.Index([7, 7, 3], name="key"))
    scored = score_frame(frame, LABELS, model=StubScorer(), template="{text}")
    assert scored.index.equals(frame.index)  # duplicate labels too: rows are placed by position, not aligned
    assert np.shares_memory(scored["n"].to_numpy(), frame["n"].to_numpy())
    table = pa.table({"text": ["a", "b"], "n": [1, 2]})
    arrow = score_frame(table, LABELS, model=StubScorer(), template="{text}")
    assert arrow.column("n").chunk(0).buffers()[1].address == table.column("n").chunk(0).buffers()[1].address


def test_a_dataframe_is_converted_one_chunk_of_template_columns_at_a_time():
    frame = pd.DataFrame({"text": [f"t{i}" for i in range(10)], "big": ["x" * 100] * 10, "id": range(10)})
    source = open_frame(as_frame(frame), ["text", "id"], 4)
    chunks = list(source.take_chunks())
    assert [chunk.num_rows for chunk in chunks] == [4, 4, 2]
    assert all(chunk.column_names == ["text", "id", ROW_COLUMN] for chunk in chunks)
    assert pa.concat_tables(chunks).column(ROW_COLUMN).to_pylist() == list(range(10))


BAD_FRAME_IDS = ["missing-column", "blank-by-index", "arrow-null", "polars-null", "non-text", "twice", "clash"]
BAD_FRAME_IDS += ["reserved", "not-a-frame", "bad-option"]


@pytest.mark.parametrize(
    ("frame", "kwargs", "message"),
    [
        (
            pd.DataFrame({"body": ["a"]}),
            {},
            "DataFrame: no text column 'text'; columns are: body (choose one with text_column)",
        ),
        (
            pd.DataFrame({"text": ["a", " ", "c"]}, index=["x", "y", "z"]),
            {},
            "DataFrame: row at index 'y': column 'text' is empty or null; fix the row or pass on_null skip|empty",
        ),
        (
            pa.table({"text": ["a", None]}),
            {},
            "pyarrow.Table: row at position 1: column 'text' is empty or null",
        ),
        (
            pl.DataFrame({"text": [None, "b"]}),
            {},
            "polars DataFrame: row at position 0: column 'text' is empty or null",
        ),
        (
            pd.DataFrame({"text": ["a", 3, {"k": 1}]}),
            {},
            "DataFrame: column 'text' cannot be read as text (",
        ),
        (
            pd.DataFrame([["a", "b"]], columns=["text", "text"]),
            {},
            "DataFrame: column 'text' appears twice; column names must be unique",
        ),
        (
            pd.DataFrame({"text": ["a"], "pred": ["x"]}),
            {},
            "DataFrame: input already has column(s) pred that the output would add",
        ),
        (
            pd.DataFrame({"text": ["a"], ROW_COLUMN: [1]}),
            {},
            f"DataFrame: column '{ROW_COLUMN}' is reserved by t5cls; rename it",
        ),
        (
            ["a", "b"],
            {},
            "expected a pandas DataFrame, a pyarrow.Table or a polars DataFrame, got list",
        ),
        (
            pd.DataFrame({"text": ["a"]}),
            {"on_null": "drop"},
            "on_null: unknown on null 'drop'; choose error, skip or empty",
        ),
    ],
    ids=BAD_FRAME_IDS,
)
def test_bad_frames_fail_with_one_message_naming_the_frame_column_and_row(frame, kwargs, message):
    with pytest.raises(InputError) as raised:
        score_frame(frame, LABELS, model=StubScorer(), **kwargs)
    assert message in str(raised.value)
    assert "\n" not in str(raised.value)


def test_progress_counts_every_row_of_the_frame(monkeypatch):
    import t5cls.run.frames

    seen = []

    class Recording(t5cls.run.frames.RowProgress):
        def start(self, total, already_done=0, total_bytes=None):
            seen.append(("start", total, self.quiet))
            super().start(total, already_done, total_bytes)

        def advance(self, rows, bytes_read=None):
            seen.append(("advance", rows))
            super().advance(rows, bytes_read)

    monkeypatch.setattr(t5cls.run.frames, "RowProgress", Recording)
    score_frame(pd.DataFrame({"text": list("abcde")}), LABELS, model=StubScorer(), chunk_rows=2, progress=True)
    assert seen == [("start", 5, False), ("advance", 2), ("advance", 2), ("advance", 1)]


texts = st.sampled_from([*NASTY_TEXTS[:20], None]) | st.text(max_size=5)
index_labels = st.one_of(
    st.lists(st.integers(-50, 50), unique=True, min_size=30, max_size=30),
    st.lists(st.text(max_size=3), unique=True, min_size=30, max_size=30),
)


@settings(max_examples=40, phases=[Phase.explicit, Phase.reuse, Phase.generate])
@given(
    rows=st.lists(st.tuples(texts, st.integers(-(2**40), 2**40) | st.none()), max_size=30),
    labels=index_labels,
    chunk_rows=st.integers(1, 8),
    on_null=st.sampled_from(["skip", "empty"]),
)
def test_any_dataframe_scores_as_its_rows_in_a_parquet_file_do(tmp_path_factory, rows, labels, chunk_rows, on_null):
    """The frame's own columns come back untouched (an object column stays object); the scores as the file's."""
    frame = pd.DataFrame(
        {"text": np.array([t for t, _ in rows], dtype=object), "n": pd.array([n for _, n in rows], dtype="Int64")},
        index=labels[: len(rows)],
    )
    folder = tmp_path_factory.mktemp("frame")
    frame.to_parquet(folder / "in.parquet", index=False)
    options = ScoreOptions(str(folder / "in.parquet"), LABELS, str(folder / "out.parquet"), template="{text} #{n}",
                           on_null=on_null, chunk_rows=chunk_rows)  # fmt: skip
    score_file(options, StubScorer())
    scored = score_frame(
        frame, LABELS, model=StubScorer(), template="{text} #{n}", on_null=on_null, chunk_rows=chunk_rows
    )
    kept = [i for i, (text, n) in enumerate(rows) if on_null == "empty" or ((text or "").strip() and n is not None)]
    pd.testing.assert_frame_equal(scored[["text", "n"]], frame.iloc[kept])  # the caller's columns, dtypes and index
    expected = pd.read_parquet(folder / "out.parquet")
    added = [name for name in expected.columns if name not in frame.columns]
    pd.testing.assert_frame_equal(scored[added].reset_index(drop=True), expected[added])


def test_rank_by_is_refused_with_where_ranks_can_be_had(tmp_path):
    config = tmp_path / "rank.toml"
    config.write_text(
        '[[task]]\nname = "t"\ntemplate = "{text}"\nlabels = ["yes", "no"]\npositive = "yes"\nrank_by = "g"\n'
    )
    with pytest.raises(InputError, match="task 't' sets rank_by, which is not available for frames"):
        score_frame(pd.DataFrame({"text": ["a"], "g": ["x"]}), config=str(config), model=StubScorer())
    with pytest.raises(OptionError, match=r"^rank_by is not available for frames \(ranks need a second pass"):
        score_frame(pd.DataFrame({"text": ["a"], "g": ["x"]}), LABELS, model=StubScorer(), rank_by="g")


@pytest.mark.parametrize("model", ["t5_dir", "t5_scorer"])
def test_a_misspelt_keyword_is_a_type_error_naming_score_frame_and_the_nearest_keyword(model, request):
    frame = pd.DataFrame({"text": ["good"]})
    given = request.getfixturevalue(model)
    message = "score_frame() got an unexpected keyword argument 'templat'; did you mean 'template'?"
    with pytest.raises(TypeError) as raised:
        score_frame(frame, LABELS, model=given, templat="{text}")
    assert str(raised.value) == message
    with pytest.raises(TypeError, match=r"'batch_sise'; did you mean 'batch_size'\?$"):
        score_frame(frame, LABELS, model=given, batch_sise=2)


def test_a_bad_model_keyword_is_named_as_score_frame_names_it(tmp_path):
    with pytest.raises(OptionError, match=r"^model \S*nowhere: no such folder"):
        score_frame(pd.DataFrame({"text": ["good"]}), LABELS, model=tmp_path / "nowhere")
    with pytest.raises(OptionError, match=r"^device: unknown device 'tpu'; choose auto, cpu, cuda or mps$"):
        score_frame(pd.DataFrame({"text": ["good"]}), LABELS, model=tmp_path, device="tpu")


def test_a_config_with_prediction_sets_gives_the_set_columns(tmp_path):
    """`calibrate --coverage` writes q into the task; score_frame adds the same set columns `t5cls score` does."""
    config = tmp_path / "fitted.toml"
    config.write_text(
        '[[task]]\nname = "mood"\ntemplate = "{text}"\nlabels = ["positive", "negative", "not sure"]\n'
        'coverage = 0.9\nconformal = "lac"\nconformal_threshold = 0.7\n'
    )
    frame = pd.DataFrame({"text": [f"text {i}" * (i % 4 + 1) for i in range(12)]})
    scored = score_frame(frame, config=str(config), model=StubScorer())
    probs = scored[[f"mood_p_{label}" for label in LABELS]].to_numpy()
    expected = [",".join(label for label, p in zip(LABELS, row) if 1.0 - p <= 0.7) for row in probs]
    assert scored["mood_set"].tolist() == expected and len(set(expected)) > 1
    assert scored["mood_set_size"].tolist() == [sum(1.0 - p <= 0.7 for p in row) for row in probs]


def test_a_frame_run_reads_its_config_once(tmp_path, monkeypatch):
    import tomllib

    config = tmp_path / "task.toml"
    config.write_text('[[task]]\nname = "t"\ntemplate = "{text}"\nlabels = ["yes", "no"]\n')
    parsed = []
    original = tomllib.loads
    monkeypatch.setattr(tomllib, "loads", lambda text: parsed.append(text) or original(text))
    scored = score_frame(pd.DataFrame({"text": ["a", "b"]}), config=str(config), model=StubScorer())
    assert list(scored.columns[:2]) == ["text", "t_p_yes"] and len(parsed) == 1
