"""Whether a model name can come from the Hugging Face Hub now, asked in a few seconds before any load.

Without a network, transformers retries a hub name for about 30 s in silence before it fails (or
falls back to a cached copy). `hub_files` asks once per process whether the Hub answers within
`HUB_TIMEOUT_S`; when it does not (or ``HF_HUB_OFFLINE`` is set), a cached copy is loaded with
``local_files_only``, and a name with none fails at once with one line saying what to do. Imports
only huggingface_hub, not torch, so ``t5cls score`` can ask before it imports the model code.
"""

from __future__ import annotations

import functools
import os
import threading

from t5cls.errors import ModelLoadError, NamesParameters, literal

HUB_TIMEOUT_S = float(os.environ.get("T5CLS_HUB_TIMEOUT", "3"))  # an answering Hub takes well under a second


class HubUnreachableError(NamesParameters, ModelLoadError):
    """A hub name, not cached, while the Hub cannot be reached (exit 3); names ``name_or_path`` (``--model``)."""


def hub_files(name: str, revision: str | None = None) -> dict[str, bool]:
    """The keyword arguments of ``from_pretrained`` that load ``name`` now: ``local_files_only`` without the Hub.

    Empty for a local folder or while the Hub answers; raises `HubUnreachableError` for a hub name
    with no cached copy while the Hub cannot be reached.
    """
    if os.path.isdir(name) or hub_reachable():
        return {}
    if not _cached(name, revision):
        from huggingface_hub import constants

        reason = "HF_HUB_OFFLINE is set" if constants.HF_HUB_OFFLINE else f"{constants.ENDPOINT} cannot be reached"
        shown = literal(name)
        raise HubUnreachableError(
            f"could not load model {shown!r}: it is not a local folder, {literal(reason)} and no copy is cached; "
            f"download it once where the Hub is reachable (hf download {shown} --local-dir DIR) "
            "and pass that folder as {name_or_path} (or set T5CLS_MODEL)"
        )
    return {"local_files_only": True}


@functools.cache
def hub_reachable() -> bool:
    """Whether the Hub answers an HTTP request within `HUB_TIMEOUT_S` (any status will do); asked once."""
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        return False
    answers: list[bool] = []
    probe = threading.Thread(target=_ask_hub, args=(constants.ENDPOINT, answers), daemon=True)
    probe.start()  # a thread: name resolution ignores the request's timeout and may hang on its own
    probe.join(HUB_TIMEOUT_S)
    return answers == [True]


def _ask_hub(endpoint: str, answers: list[bool]) -> None:
    """Append whether ``endpoint`` gave any HTTP response (through the Hub client: its proxies and certificates)."""
    from huggingface_hub.utils import get_session

    try:
        get_session().head(endpoint, timeout=HUB_TIMEOUT_S)
    except Exception:  # any failure to get an answer means: not reachable
        answers.append(False)
    else:
        answers.append(True)


def _cached(name: str, revision: str | None) -> bool:
    """Whether the Hub cache holds ``name``'s config at ``revision`` (a name that is no repo id is not cached)."""
    from huggingface_hub import try_to_load_from_cache

    try:
        return isinstance(try_to_load_from_cache(name, "config.json", revision=revision), str)
    except ValueError:  # not a valid repo id (HFValidationError), e.g. a folder that does not exist
        return False
