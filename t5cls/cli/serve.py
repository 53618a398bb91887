"""``t5cls serve``: score's task and model flags, plus where to listen and what to accept; then one call.

The server's own flags are declared here, in one block (`ServeFlags`), the rest are the shared
declarations of `t5cls.cli.flags`, as ``t5cls score`` uses them.
"""

from __future__ import annotations

from typing import Annotated

from t5cls.cli import flags as o
from t5cls.cli.flags import defaults, model_options, one_line_errors, unescape
from t5cls.errors import InputError
from t5cls.options import ModelOptions, ScoreOptions, ServeOptions

SCORE, MODEL, SERVE = defaults(ScoreOptions), defaults(ModelOptions), defaults(ServeOptions)
REQUESTS = "request"  # what a ScoreOptions' input is called here: rows come in requests

# The server's own flags.
Host = Annotated[str, o.option("host", "--host", help="Address to listen on (0.0.0.0: every interface).")]
Port = Annotated[int, o.option("port", "--port", help="Port to listen on (0: any free port, printed on start).")]
MaxRows = Annotated[int, o.option("max_rows", "--max-rows", help="Most rows (inputs, documents) in one request.")]
MaxBytes = Annotated[int, o.option("max_bytes", "--max-bytes", help="Largest request body, in bytes.")]
QueueSize = Annotated[
    int, o.option("queue_size", "--queue-size", help="Requests that may wait for the model; past it, 503.")
]
BatchWait = Annotated[
    float,
    o.option("batch_wait_ms", "--batch-wait-ms", help="How long an idle model waits for more requests to batch."),
]
ApiKeyEnv = Annotated[
    str | None,
    o.option(
        "api_key_env",
        "--api-key-env",
        help="Environment variable holding the key requests must send as 'Authorization: Bearer <key>'.",
    ),
]


@one_line_errors
def serve_command(
    labels: o.Labels = None,
    config: o.Config = None,
    template: o.Template = None,
    text_column: o.TextColumn = SCORE["text_column"],
    model: o.Model = None,
    revision: o.Revision = None,
    batch_size: o.BatchSize = "auto",
    device: o.Device = MODEL["device"],
    dtype: o.Dtype = MODEL["dtype"],
    max_length: o.MaxLength = MODEL["max_length"],
    label_end: o.LabelEnd = MODEL["label_end"],
    chat: o.Chat = MODEL["chat"],
    logprobs: o.Logprobs = SCORE["logprobs"],
    host: Host = SERVE["host"],
    port: Port = SERVE["port"],
    max_rows: MaxRows = SERVE["max_rows"],
    max_bytes: MaxBytes = SERVE["max_bytes"],
    queue_size: QueueSize = SERVE["queue_size"],
    batch_wait_ms: BatchWait = SERVE["batch_wait_ms"],
    api_key_env: ApiKeyEnv = None,
    debug: o.Debug = False,
) -> None:
    """Serve the tasks over HTTP: /v1/classify, /v1/score, /v1/rerank, /v1/models, /health, /metrics.

    Concurrent requests are scored together in batches; answers hold the columns `t5cls score` writes.
    Stop with SIGTERM or Ctrl+C: requests in flight are answered first.
    """
    flags = locals()  # the model flags, by name (`model_options`)
    options = ScoreOptions(
        input=REQUESTS,
        labels=labels,
        config=config,
        template=None if template is None else unescape(template, "template"),
        text_column=text_column,
        logprobs=logprobs,
    )
    serve_options = ServeOptions(
        host=host,
        port=port,
        max_rows=max_rows,
        max_bytes=max_bytes,
        queue_size=queue_size,
        batch_wait_ms=batch_wait_ms,
        api_key_env=api_key_env,
    )
    try:
        from t5cls.serve.server import serve
    except ModuleNotFoundError as err:
        raise InputError(f"t5cls serve needs {err.name}, which is not installed: pip install 't5cls[serve]'") from None
    serve(options, model_options(flags), serve_options)
