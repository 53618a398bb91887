"""Ray actors that misbehave on purpose, for the tests of ``--engine ray`` (local and on object storage).

Ray's workers cannot import the tests, so this module travels by value, as the test modules do.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import ray

from helpers import faults
from t5cls.run.ray import ScoreWorker

ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
ray.cloudpickle.register_pickle_by_value(faults)


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


class FullDiskOnce(ScoreWorker):
    """The third chunk this actor scores cannot be written: every write under the parts folder fails with ENOSPC
    (`WriteFaults`). Once: a marker file remembers. The chunks before it are written as usual.

    Subclass it with the marker's path: ``type("FullDiskHere", (FullDiskOnce,), {"marker": path})``.
    """

    marker: str
    scored = 0

    def score_chunk(self, *chunk):
        self.scored += 1
        if self.scored == 3 and not os.path.exists(self.marker):
            Path(self.marker).touch()
            with faults.WriteFaults(Path(self.parts.path), fail_at=1):
                return super().score_chunk(*chunk)
        return super().score_chunk(*chunk)


class SlowChunks(ScoreWorker):
    """Takes half a second more per chunk, so a test sees a run's first chunks recorded well before its last."""

    def score_chunk(self, *chunk):
        time.sleep(0.5)
        return super().score_chunk(*chunk)
