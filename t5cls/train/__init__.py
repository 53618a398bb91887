"""``t5cls train``: fine-tune a model as the classifier it will be scored as.

The default objective is the label-set cross-entropy on the task's exact class scores (the same
trie decoding as scoring, with gradients): see `t5cls.train.objective`. The loop is transformers'
`Trainer` (`t5cls.train.trainer`); the output folder holds the model and tokenizer, a
``t5cls.toml`` for ``t5cls score --config`` with temperatures fitted on the dev set, and a
training report with plots (`t5cls.train.report`).

This is the one package besides `t5cls.models` that imports torch: training needs gradients,
optimizers and the `Trainer`.
"""

from t5cls.options import TrainOptions
from t5cls.train.run import train

__all__ = ["TrainOptions", "train"]
