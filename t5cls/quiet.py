"""Keep stderr to t5cls's own lines: the progress bar, the summary, one-line errors.

Model loading in transformers and huggingface_hub prints weight-loading bars, advisory warnings
and Hub retry notices; Ray prints its own start-up and scheduling notes. Both the CLI process and
every Ray worker call `quiet_model_loading` before they load a model.
"""

from __future__ import annotations


def quiet_model_loading() -> None:
    """No weight-loading bars, advisory warnings or Hub retry notices."""
    from huggingface_hub.utils import logging as hub_logging
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    hub_logging.set_verbosity_error()
