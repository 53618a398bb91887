"""How labels follow prompts: the rules for tokenizing a label as the model would read it.

Encoder-decoder labels are complete target sequences: ``tokenizer(text_target=label).input_ids``,
which for T5 is the label's pieces followed by ``</s>`` and for BART ``<s> … </s>``. Because the
end-of-sequence token is part of the sequence, ``positive`` and ``positive review`` are different
complete answers.

Decoder-only labels are tokenized in context (`tokenize_labels_in_context`, `Continuation`):

* the prompt loses its trailing whitespace, and the scored continuation is ``" " + label``
  (plus the ``label_end`` text, if any), so ``"Sentiment:"`` is scored with ``" positive"``;
  with ``chat`` the prompt is the chat template's rendering of the user turn up to the start
  of the assistant's answer, kept as it is, and the continuation is ``label`` with no space;
* a label's ids are the ids the tokenizer gives that continuation after a prompt, so the scored
  sequence is exactly ``tokenizer(prompt + " " + label)`` (BOS included when the tokenizer adds one);
* that only holds when the prompt's last token and the label's first token do not merge across
  the boundary; `check_labels_in_context` tests it on the real prompt endings and raises an
  `InputError` naming the label and the prompt end when they do, rather than score a tokenization
  the model would never see.

These functions take the tokenizer as an argument; `t5cls.models.tokens.PromptTokenizer` is the
only caller, and it calls them one at a time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from t5cls.errors import InputError, OptionError
from t5cls.tasks.labels import check_distinct

# The boundary check looks at this many trailing characters of each prompt: a merge is local.
PROMPT_END_CHARS = 64


def tokenize_target_labels(tokenizer, labels: Sequence[str]) -> list[list[int]]:
    """Encoder-decoder labels: each label's ids as a complete target sequence (EOS included), checked distinct."""
    sequences = [list(tokenizer(text_target=label).input_ids) for label in labels]
    check_distinct(labels, sequences)
    return sequences


@dataclass(frozen=True)
class Continuation:
    """How labels follow prompts: the text between them, and a prompt end to tokenize labels after.

    Tokenizing a label after ``reference`` rather than alone matters for SentencePiece
    tokenizers, which turn a string-initial space into an extra ``▁`` token.
    """

    separator: str = " "
    reference: str = "Answer:"

    def prompt(self, text: str) -> str:
        """The prompt as scored: right-stripped when the label brings its own leading space."""
        return text.rstrip() if self.separator else text

    def text(self, label: str, label_end: str) -> str:
        """The text appended to a prompt to score ``label``."""
        return self.separator + label + ("" if label_end in ("none", "eos") else label_end)


PLAIN = Continuation()


def chat_continuation(tokenizer) -> Continuation:
    """``--chat``: the answer starts right after the template's assistant header, with no space."""
    if not getattr(tokenizer, "chat_template", None):
        raise OptionError("{chat}: the model's tokenizer has no chat template; drop it for a base model")
    return Continuation(separator="", reference=chat_prompt(tokenizer, "Answer."))


def chat_prompt(tokenizer, text: str) -> str:
    """``text`` as the user's turn, rendered up to where the assistant's answer begins."""
    return tokenizer.apply_chat_template(
        [{"role": "user", "content": text}], tokenize=False, add_generation_prompt=True
    )


def tokenize_labels_in_context(
    tokenizer, labels: Sequence[str], label_end: str = "none", continuation: Continuation = PLAIN
) -> list[list[int]]:
    """Each label's token ids as a continuation of a prompt, for a decoder-only model.

    ``label_end`` says what completes a label: ``none`` (nothing: the label's own tokens),
    ``eos`` (the tokenizer's end-of-sequence id is scored after them) or any other text, which
    is appended to the label and tokenized with it (``"\\n"`` scores ``" positive\\n"``).
    """
    if label_end == "eos" and tokenizer.eos_token_id is None:
        raise OptionError("{label_end} eos: the tokenizer has no end-of-sequence token; use none or a text")
    context = tokenizer(continuation.reference, add_special_tokens=False).input_ids
    sequences = []
    for label in labels:
        ids = tokenizer(
            continuation.reference + continuation.text(label, label_end), add_special_tokens=False
        ).input_ids
        if ids[: len(context)] != context:
            raise InputError(
                f"label {label!r} merges with the text before it, so it cannot be scored as a continuation"
            )
        sequences.append(ids[len(context) :] + ([tokenizer.eos_token_id] if label_end == "eos" else []))
    check_distinct(labels, sequences)
    return sequences


def prompt_end(prompt: str) -> str:
    """The part of a (right-stripped) prompt that `check_labels_in_context` needs."""
    return prompt[-PROMPT_END_CHARS:]


def check_labels_in_context(
    tokenizer,
    prompt_ends: Sequence[str],
    labels: Sequence[str],
    sequences: Sequence[Sequence[int]],
    label_end: str,
    continuation: Continuation = PLAIN,
) -> None:
    """Raise unless ``tokenizer(end + continuation) == tokenizer(end) + label ids`` for every pair.

    Two batched tokenizer calls per chunk on short strings: cheap next to the model.
    """
    ends = list(dict.fromkeys(prompt_ends))
    if not ends:
        return
    text_ids = [list(ids[:-1] if label_end == "eos" else ids) for ids in sequences]
    end_ids = tokenizer(ends, add_special_tokens=False).input_ids
    joined = tokenizer(
        [end + continuation.text(label, label_end) for end in ends for label in labels], add_special_tokens=False
    ).input_ids
    for index, ids in enumerate(joined):
        end, label = divmod(index, len(labels))
        if ids != end_ids[end] + text_ids[label]:
            raise InputError(
                f"label {labels[label]!r} does not tokenize the same after the prompt ending {ends[end][-20:]!r}: "
                f"{tokenizer.convert_ids_to_tokens(ids[-len(text_ids[label]) - 1 :])} instead of "
                f"{tokenizer.convert_ids_to_tokens(end_ids[end][-1:] + text_ids[label])} (the prompt's last token "
                "merges with the label's first), so the label is not a continuation of the prompt; "
                "end the template with other text, e.g. 'Answer:'"
            )
