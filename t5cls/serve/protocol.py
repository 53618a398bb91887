"""The request and response bodies of every endpoint, as pydantic models (they are the OpenAPI docs too).

`/v1/classify` follows vLLM's and SGLang's ``classify`` protocol, `/v1/rerank` Cohere's and Jina's
rerank API, errors OpenAI's error object; `/v1/score` is t5cls's own: rows in, the columns
``t5cls score`` adds out. Requests carry data only: no field names a file, a model to load or
labels, so no request can change what the server asks.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, JsonValue, StrictStr, field_validator


class Request(BaseModel):
    """Unknown fields are refused, so a misspelt option is an error rather than silently ignored."""

    model_config = ConfigDict(extra="forbid")


class ClassifyRequest(Request):
    model: StrictStr | None = Field(None, description="The served model's name, if given (any other is refused).")
    input: list[StrictStr] = Field(description="A text, or a list of texts; each fills the task's {text}.")
    user: StrictStr | None = Field(None, description="Accepted for compatibility; unused.")

    @field_validator("input", mode="before")
    @classmethod
    def one_text_is_a_list_of_one(cls, value):
        """A single text is answered as a list of one (``data[0]``), so errors name ``input[0]`` either way."""
        return [value] if isinstance(value, str) else value


class Usage(BaseModel):
    prompt_tokens: int = Field(description="Tokens of the prompts scored (few-shot demonstrations included).")
    total_tokens: int
    completion_tokens: int = 0


class ClassificationData(BaseModel):
    index: int
    label: str = Field(description="The most probable class (ties to the first), as the pred column.")
    probs: list[float] = Field(description="One probability per class, in the order of `labels`.")
    num_classes: int


class Envelope(BaseModel):
    """What a scoring response starts with, as OpenAI's and vLLM's do: its id, kind, time and model."""

    id: str
    object: str
    created: int
    model: str


class ClassifyResponse(Envelope):
    object: str = "list"
    labels: list[str] = Field(description="The task's classes, the order of every `probs`.")
    data: list[ClassificationData]
    usage: Usage


class ScoreRequest(Request):
    rows: list[dict[str, JsonValue]] = Field(
        description="Rows as objects: every column the tasks' templates read, as a string; other keys are ignored."
    )


class ScoreResponse(Envelope):
    object: str = "score"
    columns: list[str] = Field(description="The columns `t5cls score` adds, in its order.")
    rows: list[dict[str, float | str]] = Field(description="Per input row, in order: each added column's value.")
    usage: Usage


class RerankRequest(Request):
    model: StrictStr | None = None
    query: StrictStr
    documents: list[StrictStr]
    top_n: int | None = Field(None, ge=1, description="Return only the best top_n documents.")
    return_documents: bool = False


class RerankDocument(BaseModel):
    text: str


class RerankResult(BaseModel):
    index: int = Field(description="The document's position in the request.")
    relevance_score: float = Field(description="The ranking task's score: p(positive class), as <task>_score.")
    document: RerankDocument | None = None


class RerankResponse(BaseModel):
    id: str
    model: str
    results: list[RerankResult] = Field(description="Best first; equal scores in request order.")
    usage: Usage


class TaskInfo(BaseModel):
    name: str = Field(description="Empty for a server started with --labels (its columns have no prefix).")
    classes: list[str]
    columns_read: list[str]
    columns_added: list[str]
    positive: str | None = None


class ModelCard(BaseModel):
    id: str
    object: str = "model"
    created: int
    owned_by: str = "t5cls"
    tasks: list[TaskInfo]
    endpoints: list[str] = Field(description="The scoring endpoints this server's tasks allow.")


class ModelList(BaseModel):
    object: str = "list"
    data: list[ModelCard]


class ErrorBody(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: int


class ErrorResponse(BaseModel):
    error: ErrorBody
