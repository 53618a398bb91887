"""The work folder of a training run: checkpoints to resume from, and the output folder assembled whole.

Everything in progress lives in a hidden folder beside the output, ``.<name>.t5cls-train/``:
``run.json`` (the run's fingerprint), the `Trainer`'s ``checkpoints/`` and, at the end, ``final/``,
which is renamed onto the output in one step. The output path therefore holds either an earlier
complete output or the new complete one, never a half-written folder. A kill at any moment leaves
the checkpoints; ``--resume`` continues from the newest complete one (a checkpoint being written
when the kill came has no readable ``trainer_state.json``, which the `Trainer` writes last).
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from safetensors import SafetensorError

from t5cls import __version__
from t5cls.errors import FileSystemError
from t5cls.io.atomic import replace_folder, write_text_atomically
from t5cls.io.oserrors import as_filesystem_error
from t5cls.io.output import check_same_run
from t5cls.io.paths import file_identity, output_target, sidecar

RUN_FILE = "run.json"
TRAINER_STATE = "trainer_state.json"
CHECKPOINT_NAME = re.compile(r"checkpoint-(\d+)")
# What torch.save (PyTorchFileWriter) and safetensors say when a write fails: no errno, no OSError
WRITE_FAILURE = re.compile(r"PytorchStreamWriter|inline_container|file write failed|unexpected pos|IoError|os error")
PROBE_BYTES = 1 << 20


class WorkFolder:
    """``.<output>.t5cls-train/``: started fresh, or resumed when its fingerprint matches this run."""

    def __init__(self, output: str):
        self.output = output_target(output)  # a symlink's target folder is replaced, not the link
        self.root = sidecar(self.output, "train")
        self.checkpoints = self.root / "checkpoints"
        self.final = self.root / "final"

    def start(self, fingerprint: dict[str, str], resume: bool) -> str | None:
        """The checkpoint to resume from (``None``: train from the start, with an empty work folder)."""
        run_file = self.root / RUN_FILE
        if resume and run_file.is_file():
            check_same_run(json.loads(run_file.read_text())["fingerprint"], fingerprint, self.output)
            if self.final.exists():
                shutil.rmtree(self.final)
            return last_complete_checkpoint(self.checkpoints)
        if self.root.exists():
            shutil.rmtree(self.root)
        self.checkpoints.mkdir(parents=True)
        write_text_atomically(run_file, json.dumps({"fingerprint": fingerprint}, indent=1))
        return None

    @contextmanager
    def write_errors(self) -> Iterator[None]:
        """The `Trainer`'s and ``save_pretrained``'s failed writes as a `FileSystemError` with the OS's reason (exit 5).

        ``torch.save`` raises a RuntimeError (``unexpected pos ...``) and safetensors a `SafetensorError`,
        neither saying why. When such an error comes and a write into the work folder fails now too,
        that write's error is the reason: it goes up, naming the checkpoint being written, and the
        incomplete checkpoint is removed (the complete ones stay for ``--resume``). Any other error,
        or one whose probe write succeeds, is raised as it was: it is not the filesystem's.
        """
        try:
            yield
        except (RuntimeError, SafetensorError) as err:
            refusal = self._write_refusal() if WRITE_FAILURE.search(str(err)) else None
            if refusal is None:
                raise
            for incomplete in self._incomplete_checkpoints():
                shutil.rmtree(incomplete, ignore_errors=True)
            raise refusal from err

    def _write_refusal(self) -> FileSystemError | None:
        """The OS's error for a write of a MiB into the work folder, naming the checkpoint being written; None if
        it succeeds."""
        probe = self.root / ".write-probe"
        try:
            with open(probe, "wb") as stream:
                stream.write(bytes(PROBE_BYTES))
                stream.flush()
                os.fsync(stream.fileno())
        except OSError as err:
            incomplete = self._incomplete_checkpoints()
            return as_filesystem_error(err, incomplete[-1] if incomplete else self.root, resumable=True)
        finally:
            probe.unlink(missing_ok=True)
        return None

    def _incomplete_checkpoints(self) -> list[Path]:
        """Checkpoints without a readable trainer state (the `Trainer` writes it last), oldest first."""
        numbered = [path for path in self.checkpoints.glob("checkpoint-*") if CHECKPOINT_NAME.fullmatch(path.name)]
        return sorted(filter(_unfinished, numbered), key=lambda path: int(path.name.removeprefix("checkpoint-")))

    def publish(self) -> None:
        """Rename the assembled ``final/`` onto the output (replacing an earlier one) and drop the work folder."""
        replace_folder(self.final, self.output)
        shutil.rmtree(self.root)


def last_complete_checkpoint(folder: Path) -> str | None:
    """The newest ``checkpoint-N`` whose trainer state reads back whole."""
    numbered = sorted(
        (
            (int(match.group(1)), path)
            for path in folder.glob("checkpoint-*")
            if (match := CHECKPOINT_NAME.fullmatch(path.name))
        ),
        reverse=True,
    )
    for _, path in numbered:
        try:
            json.loads((path / TRAINER_STATE).read_text())
        except (OSError, ValueError):
            continue
        return str(path)
    return None


def _unfinished(checkpoint: Path) -> bool:
    try:
        json.loads((checkpoint / TRAINER_STATE).read_text())
    except (OSError, ValueError):
        return True
    return False


def fingerprint(
    options: dict, model: dict, model_files: str | None, tasks: str, train: str, dev: str | None
) -> dict[str, str]:
    """What must be unchanged for ``resume`` to continue: version, files, tasks, model and options.

    ``model_files`` is a local base model's content digest (`t5cls.models.identity.folder_digest`;
    ``None`` for a Hub name): a base model retrained in place is not continued from.
    """
    return {
        "t5cls version": __version__,
        "train file": json.dumps([train, file_identity(train)]),
        "dev file": json.dumps([dev, file_identity(dev)] if dev is not None else None),
        "tasks": tasks,
        "model": json.dumps(model, sort_keys=True),
        "model files": json.dumps(model_files),
        "options": json.dumps(options, sort_keys=True),
    }
