"""`t5cls/__init__.py`: the names the package exports, lazily, and the README imports."""

from __future__ import annotations

import re
from pathlib import Path


def test_every_exported_name_resolves_and_the_readme_imports_only_exported_names():
    import t5cls

    expected = {
        "LabelScorer",
        "LabelScores",
        "LocalRunner",
        "ModelOptions",
        "NumericError",
        "ScoreOptions",
        "ScorePlan",
        "__version__",
        "open_input",
        "score_file",
        "score_frame",
    }
    assert set(t5cls.__all__) == expected and len(t5cls.__all__) == len(expected)
    for name in expected - {"__version__"}:
        assert getattr(t5cls, name).__name__ == name
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    imported = re.findall(r"^(?:>>> )?from t5cls import (.+)$", readme, flags=re.MULTILINE)
    assert imported and {name.strip() for line in imported for name in line.split(",")} <= expected
