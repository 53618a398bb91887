"""``t5cls serve``: score's task and model flags, plus where to listen and what to accept; then one call.

The model's flags and the server's own come from their declarations (`t5cls.options.ModelOptions`,
`t5cls.options.ServeOptions`, through `model_flags` and `serve_flags`); the task flags are those
``t5cls score`` takes (`t5cls.options.TaskSource`, through `task_flags`).
"""

from __future__ import annotations

from t5cls.cli import flags as o
from t5cls.cli.flags import defaults, model_flags, one_line_errors, options_flags, task_flags
from t5cls.errors import InputError
from t5cls.options import ModelOptions, ScoreOptions, ServeOptions, TaskSource

SCORE = defaults(ScoreOptions)
REQUESTS = "request"  # what a ScoreOptions' input is called here: rows come in requests

serve_flags = options_flags(ServeOptions, "serve_options")


@one_line_errors
@model_flags
@serve_flags
@task_flags
def serve_command(
    task_source: TaskSource = None,
    model_options: ModelOptions = None,
    logprobs: o.Logprobs = SCORE["logprobs"],
    serve_options: ServeOptions = None,
    debug: o.Debug = False,
) -> None:
    """Serve the tasks over HTTP: /v1/classify, /v1/score, /v1/rerank, /v1/models, /health, /metrics.

    Concurrent requests are scored together in batches; answers hold the columns `t5cls score` writes.
    Stop with SIGTERM or Ctrl+C: requests in flight are answered first.
    """
    options = ScoreOptions(input=REQUESTS, **task_source.keywords(), logprobs=logprobs)
    try:
        from t5cls.serve.server import serve
    except ModuleNotFoundError as err:
        raise InputError(f"t5cls serve needs {err.name}, which is not installed: pip install 't5cls[serve]'") from None
    serve(options, model_options, serve_options)
