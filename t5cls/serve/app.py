"""The HTTP side: routes, authentication, limits and errors in OpenAI's shape; the model is `Service`'s.

Every error is ``{"error": {"message", "type", "param", "code"}}``: FastAPI's own validation
errors (malformed JSON, a wrong type) are rewritten into it (422), as are 404/405 and the body
limit's 413. Status codes: 401 a missing or wrong key, 413 a request over ``max_rows`` or
``max_bytes``, 422 a row that cannot be scored (naming its index and field), 500 non-finite
scores or a bug (that batch only), 503 with ``Retry-After`` while the model loads, when the
queue is full, or once the server is stopping.
"""

from __future__ import annotations

import hmac
import sys
import time
import uuid
from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.exceptions import HTTPException

from t5cls import __version__
from t5cls.errors import InputError, NumericError, one_line
from t5cls.serve.batcher import QueueFull, RequestRowError
from t5cls.serve.metrics import CONTENT_TYPE
from t5cls.serve.protocol import (
    ClassificationData,
    ClassifyRequest,
    ClassifyResponse,
    ErrorResponse,
    ModelCard,
    ModelList,
    RerankDocument,
    RerankRequest,
    RerankResponse,
    RerankResult,
    ScoreRequest,
    ScoreResponse,
    TaskInfo,
    Usage,
)
from t5cls.serve.rows import RowProblem, ScoredRows
from t5cls.serve.service import ClientGone, Service

ERROR_TYPES = {401: "authentication_error", 404: "not_found_error", 500: "server_error", 503: "service_unavailable"}
ERRORS = {status: {"model": ErrorResponse} for status in (400, 401, 404, 413, 422, 500, 503)}
ROUTES = ("/v1/classify", "/v1/score", "/v1/rerank", "/v1/models", "/health", "/metrics")
BEARER = HTTPBearer(auto_error=False, description="Needed when the server was started with --api-key-env.")
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)]
DESCRIPTION = (
    "Exact class probabilities of text-to-text and decoder-only models, the columns `t5cls score` writes. "
    "Requests arriving together are scored in one batch. Rows carry data only: no request can read a file, "
    "load a model or change the server's tasks and labels."
)


class ApiError(Exception):
    """An answer other than 200, in OpenAI's error shape."""

    def __init__(self, status: int, message: str, param: str | None = None, headers: dict | None = None):
        super().__init__(message)
        self.status, self.message, self.param, self.headers = status, one_line(message), param, headers


def error_response(status: int, message: str, param: str | None = None, headers: dict | None = None) -> JSONResponse:
    kind = ERROR_TYPES.get(status, "invalid_request_error")
    body = {"error": {"message": message, "type": kind, "param": param, "code": status}}
    return JSONResponse(body, status_code=status, headers=headers)


def create_app(service: Service) -> FastAPI:
    """The FastAPI application of ``service``; its lifespan loads the model and finishes the queue."""
    app = FastAPI(
        title="t5cls",
        version=__version__,
        description=DESCRIPTION,
        lifespan=service.lifespan,
    )
    app.add_middleware(BodyLimit, service=service)
    app.add_middleware(RequestMetrics, service=service)  # added last: the outermost
    _add_error_handlers(app, service)
    authorized, accepting = _guards(service)
    guarded = [Depends(authorized), Depends(accepting)]

    @app.get("/health", summary="200 once the model is loaded, 503 before (and once the server is stopping)")
    async def health() -> Response:
        if not service.ready or service.draining:
            return error_response(503, "not ready: the model is loading" if not service.ready else "stopping")
        return JSONResponse({"status": "ok"})

    @app.get("/metrics", summary="Prometheus text format", dependencies=[Depends(authorized)])
    async def metrics() -> Response:
        return Response(service.metrics.text(), media_type=CONTENT_TYPE)

    @app.get("/v1/models", response_model=ModelList, responses=ERRORS, dependencies=[Depends(authorized)])
    async def models() -> ModelList:
        return ModelList(data=[_model_card(service)])

    @app.post("/v1/classify", response_model=ClassifyResponse, responses=ERRORS, dependencies=guarded)
    async def classify(body: ClassifyRequest, request: Request) -> ClassifyResponse:
        """vLLM's and SGLang's classify shape: each input fills the task's {text}; one task's servers only."""
        _check_model(service, body.model)
        task = _usable(service.classify_task)
        _check_rows(service, len(body.input), "input")
        column = task.template.text_column
        rows = [{column: text} for text in body.input]
        scored = await _scored(service, request, rows, lambda i, _: f"input[{i}]")
        probs = [task.column(f"p_{name}") for name in task.classes]
        data = [
            ClassificationData(
                index=i, label=row[task.column("pred")], probs=[row[p] for p in probs], num_classes=len(probs)
            )
            for i, row in enumerate(scored.columns.to_pylist())
        ]
        service.metrics.rows.labels("/v1/classify").inc(len(data))
        return ClassifyResponse(
            id=f"classify-{uuid.uuid4().hex}", created=int(time.time()), model=service.model_name,
            labels=list(task.classes), data=data, usage=_usage(scored),
        )  # fmt: skip

    @app.post("/v1/score", response_model=ScoreResponse, responses=ERRORS, dependencies=guarded)
    async def score(body: ScoreRequest, request: Request) -> ScoreResponse:
        """Rows in; out, per row, every column `t5cls score` adds for every task, with its values."""
        _check_rows(service, len(body.rows), "rows")
        scored = await _scored(service, request, body.rows, _row_field)
        service.metrics.rows.labels("/v1/score").inc(len(body.rows))
        return ScoreResponse(
            id=f"score-{uuid.uuid4().hex}", created=int(time.time()), model=service.model_name,
            columns=scored.columns.column_names, rows=scored.columns.to_pylist(), usage=_usage(scored),
        )  # fmt: skip

    @app.post("/v1/rerank", response_model=RerankResponse, responses=ERRORS, dependencies=guarded)
    async def rerank(body: RerankRequest, request: Request) -> RerankResponse:
        """Cohere's and Jina's rerank shape: the documents by the ranking task's score, best first."""
        _check_model(service, body.model)
        task, document = _usable(service.rerank_task)
        _check_rows(service, len(body.documents), "documents")
        rows = [{"query": body.query, document: text} for text in body.documents]
        scored = await _scored(service, request, rows, lambda i, c: "query" if c == "query" else f"documents[{i}]")
        scores = scored.columns.column(task.column("score")).to_pylist()
        order = sorted(range(len(scores)), key=lambda i: -scores[i])  # stable: equal scores in request order
        results = [
            RerankResult(
                index=i,
                relevance_score=scores[i],
                document=RerankDocument(text=body.documents[i]) if body.return_documents else None,
            )
            for i in order[: body.top_n]
        ]
        service.metrics.rows.labels("/v1/rerank").inc(len(rows))
        return RerankResponse(
            id=f"rerank-{uuid.uuid4().hex}", model=service.model_name, results=results, usage=_usage(scored)
        )

    return app


def _guards(service: Service) -> tuple[Callable, Callable]:
    """The key check (a constant-time comparison) and the 503 while loading, queue-full aside, or stopping."""
    key = None if service.api_key is None else service.api_key.encode()

    async def authorized(credentials: Credentials) -> None:
        if key is None:
            return
        given = b"" if credentials is None else credentials.credentials.encode()
        if credentials is None or not hmac.compare_digest(given, key):
            service.metrics.rejected.labels("unauthorized").inc()
            raise ApiError(401, "missing or wrong API key: send Authorization: Bearer <key>", None,
                           {"WWW-Authenticate": "Bearer"})  # fmt: skip

    async def accepting() -> None:
        if service.draining:
            raise ApiError(503, "the server is stopping; send the request to another one", None, {"Retry-After": "1"})
        if not service.ready:
            raise ApiError(503, "the model is still loading; retry shortly", None, {"Retry-After": "5"})

    return authorized, accepting


def _check_model(service: Service, model: str | None) -> None:
    if model is not None and model != service.model_name:
        raise ApiError(404, f"model {model!r} is not served here; this server serves {service.model_name!r}", "model")


def _usable(check: Callable):
    try:
        return check()
    except InputError as err:
        raise ApiError(400, str(err)) from None


def _check_rows(service: Service, rows: int, param: str) -> None:
    limit = service.options.max_rows
    if rows > limit:
        service.metrics.rejected.labels("too_many_rows").inc()
        raise ApiError(413, f"{rows} rows in one request; this server takes at most {limit}: split it", param)


def _row_field(index: int, column: str | None) -> str:
    return f"rows[{index}]" if column is None else f"rows[{index}].{column}"


async def _disconnected(request: Request) -> None:
    """Returns when the client has gone (the body is read already: what comes next is the disconnect)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


async def _scored(service: Service, request: Request, rows, field: Callable[[int, str | None], str]) -> ScoredRows:
    """The rows' scores from the next batch, every way that can fail turned into its status."""
    try:
        return await service.score(rows, field, lambda: _disconnected(request))
    except ClientGone:
        service.metrics.rejected.labels("client_gone").inc()
        raise ApiError(499, "the client closed the connection before its answer") from None
    except RowProblem as problem:
        raise ApiError(422, problem.message, problem.param) from None
    except QueueFull:
        service.metrics.rejected.labels("queue_full").inc()
        raise ApiError(503, "the queue is full; retry shortly", None, {"Retry-After": "1"}) from None
    except RequestRowError as failed:
        where = field(failed.row, None)
        status = 500 if isinstance(failed.error, NumericError) else 422
        raise ApiError(status, f"{where}: {failed.error.problem}", where) from None
    except NumericError as err:
        raise ApiError(500, f"non-finite scores: {err}") from None
    except Exception as err:
        print(f"t5cls: error: internal error: {type(err).__name__}: {one_line(err)}", file=sys.stderr, flush=True)
        raise ApiError(500, f"internal error: {type(err).__name__}: {one_line(err)}") from None


def _usage(scored: ScoredRows) -> Usage:
    tokens = int(scored.tokens.sum())
    return Usage(prompt_tokens=tokens, total_tokens=tokens)


def _model_card(service: Service) -> ModelCard:
    from t5cls.tasks.columns import added_columns

    tasks = [
        TaskInfo(
            name=task.name,
            classes=list(task.classes),
            columns_read=task.template.columns_needed(),
            columns_added=added_columns([task], service.plan.options.logprobs),
            positive=task.positive,
        )
        for task in service.tasks
    ]
    return ModelCard(id=service.model_name, created=service.created, tasks=tasks, endpoints=service.endpoints())


def _add_error_handlers(app: FastAPI, service: Service) -> None:
    @app.exception_handler(ApiError)
    async def api_error(request: Request, err: ApiError) -> JSONResponse:
        return error_response(err.status, err.message, err.param, err.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, err: RequestValidationError) -> JSONResponse:
        first = err.errors()[0]
        location = [part for part in first.get("loc", ()) if part != "body"]
        if first.get("type") == "json_invalid":
            problem = first.get("ctx", {}).get("error", "")
            return error_response(422, f"the body is not valid JSON ({problem}, at character {location[0]})")
        param = _path(location)
        if not param:
            return error_response(422, "the body must be a JSON object (with Content-Type: application/json)")
        message = f"{param}: {first.get('msg', 'invalid')}"
        return error_response(422, message, param or None)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, err: HTTPException) -> JSONResponse:
        return error_response(err.status_code, str(err.detail), None, getattr(err, "headers", None))


class BodyLimit:
    """413 for a body over ``max_bytes``: at once when Content-Length says so, else as soon as it is read.

    The body is read here whole (the JSON parser needs it whole anyway) and handed on; a client
    that sends more than the limit without a Content-Length costs the limit, not what it sends.
    """

    def __init__(self, app, service: Service):
        self.app = app
        self.service = service
        self.limit = service.options.max_bytes

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            return await self._refuse(scope, receive, send)
        body, more = b"", True
        while more:
            message = await receive()
            if message["type"] != "http.request":  # the client left
                return None
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > self.limit:
                return await self._refuse(scope, receive, send)
        replay = [{"type": "http.request", "body": body, "more_body": False}]

        async def replayed():
            return replay.pop() if replay else await receive()

        return await self.app(scope, replayed, send)

    async def _refuse(self, scope, receive, send) -> None:
        self.service.metrics.rejected.labels("too_many_bytes").inc()
        message = f"the body is larger than this server's {self.limit} bytes (--max-bytes): split the request"
        response = error_response(413, message, None, {"Connection": "close"})
        await response(scope, receive, send)


def _path(location: list) -> str:
    """A pydantic error location as a JSON path: ``rows[3].text``."""
    path = ""
    for part in location:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path


class RequestMetrics:
    """Counts every answer by endpoint and status and times it (an ASGI middleware: it sees the 413s too)."""

    def __init__(self, app, service: Service):
        self.app = app
        self.metrics = service.metrics

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started, status = time.monotonic(), 500

        async def sent(message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sent)
        finally:
            endpoint = scope["path"] if scope["path"] in ROUTES else "other"
            self.metrics.requests.labels(endpoint, str(status)).inc()
            self.metrics.latency.labels(endpoint).observe(time.monotonic() - started)
