"""Ray actors that misbehave on purpose, for the tests of ``--engine ray`` (local and on object storage).

Ray's workers cannot import the tests, so this module travels by value, as the test modules do.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import ray

from t5cls.run.ray import ScoreWorker

ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])


class CrashOnce(ScoreWorker):
    """Kills its own process on the first chunk of the second file, once (a marker file remembers).

    Subclass it with the marker's path: ``type("CrashOnceHere", (CrashOnce,), {"marker": path})``.
    """

    marker: str

    def score_chunk(self, file, chunk, *rest):
        if (int(file), int(chunk)) == (1, 0) and not os.path.exists(self.marker):
            Path(self.marker).touch()
            os._exit(1)
        return super().score_chunk(file, chunk, *rest)
