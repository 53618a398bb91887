"""``python -m t5cls.cli``: the same as the ``t5cls`` command."""

from t5cls.cli import main

main()
