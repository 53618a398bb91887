"""The ``t5cls serve`` process: bind, answer /health (503) while the model loads, serve, stop cleanly.

SIGTERM or SIGINT: the server stops accepting (new connections are refused, requests already on
a connection get 503), answers every request in flight or queued, finishes the scorer thread and
returns, so the command exits 0. A second SIGINT stops at once. uvicorn re-raises the signal it
caught once it has shut down; the handlers in place while it runs are SIG_IGN, so that re-raise
is a no-op rather than a death by signal.
"""

from __future__ import annotations

import signal
import socket
import sys
import warnings

import uvicorn

from t5cls.errors import InputError, OptionError, T5clsWarning, literal
from t5cls.options import ModelOptions, ScoreOptions, ServeOptions
from t5cls.run.plan import ScorePlan
from t5cls.serve.app import create_app
from t5cls.serve.service import Service

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class _Server(uvicorn.Server):
    """uvicorn's server, which also tells the service to refuse new requests as soon as a stop signal comes."""

    def __init__(self, config: uvicorn.Config, service: Service):
        super().__init__(config)
        self.service = service

    def handle_exit(self, sig, frame) -> None:
        self.service.draining = True
        super().handle_exit(sig, frame)


def plan_for_serving(options: ScoreOptions) -> ScorePlan:
    """The run's plan, as ``t5cls score`` builds it, for rows that come in requests (no ranks: no output file).

    ``batch`` mode is refused: it calibrates on the rows scored together, which in a server would
    be other clients' rows.
    """
    plan = ScorePlan.build(options, without_ranks=True)
    for task in plan.config.tasks if plan.config is not None else ():
        if task.rank_by is not None:
            warnings.warn(
                f"{plan.task_set.where(task)}: rank_by is not served (ranks need a whole output file); "
                "its <task>_rank column is left out, and /v1/rerank orders one request's documents",
                T5clsWarning,
                stacklevel=2,
            )
    for task in plan.tasks:
        if task.mode == "batch":
            raise InputError(
                f"{plan.task_set.where(task) or 'the task'}: mode 'batch' calibrates on the rows scored together, "
                "which in a server are other requests' rows; serve another mode (contextual needs no batch)"
            )
    return plan


def serve(options: ScoreOptions, model: ModelOptions, serve_options: ServeOptions) -> None:
    """Serve ``options``' tasks with ``model`` until a stop signal; raises the model's load error, if any."""
    service = Service(plan_for_serving(options), model, serve_options)
    listener = _listen(serve_options.host, serve_options.port)
    host, port = listener.getsockname()[:2]
    service.address = f"http://{host}:{port}" if ":" not in host else f"http://[{host}]:{port}"
    config = uvicorn.Config(create_app(service), log_level="warning", access_log=False, lifespan="on")
    server = _Server(config, service)
    service.on_load_failure = lambda: setattr(server, "should_exit", True)
    print(f"t5cls: listening on {service.address} (loading {service.model_name})", file=sys.stderr, flush=True)
    previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in STOP_SIGNALS}
    try:
        server.run(sockets=[listener])
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        listener.close()
    if service.load_error is not None:
        raise service.load_error
    print("t5cls: stopped; every request in flight was answered", file=sys.stderr, flush=True)


def _listen(host: str, port: int) -> socket.socket:
    """A bound listening socket (port 0: any free port, printed once bound)."""
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        listener = socket.socket(family, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((host, port))
        listener.listen(2048)
    except OSError as err:
        reason = literal(err.strerror or err)
        raise OptionError(f"cannot listen on {{host}} {literal(host)} {{port}} {port}: {reason}") from None
    return listener
