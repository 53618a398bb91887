"""Models: loading, tokenizing, and exact label log-probabilities from seq2seq and decoder-only models.

The only package that imports torch. `LabelScorer` is its front door; the backends
(`seq2seq.Seq2SeqBackend`, `causal.CausalBackend`) turn token ids and a `trie.LabelTrie` into
log-probabilities, and `tokens.PromptTokenizer` owns every tokenizer call.
"""

from t5cls.models.scorer import LabelScorer, LabelScores

__all__ = ["LabelScorer", "LabelScores"]
