"""The GPT family: next-token prediction with the decoder in `backbones/gpt.py` (keras-hub layers).

`train --base RUN` continues a GPT run on new text (continued pretraining): the base's tokenizer,
shape and best weights, a gentler learning rate, and a refusal where the base cannot read the text.
"""

from __future__ import annotations

from desktop_llm.core.models import continuation
from desktop_llm.core.models.base import Family, refuse_unreadable, unreadable_warning
from desktop_llm.core.models.continuation import CONTINUE_LR


class GPT(Family):
    name = "gpt"
    title = "GPT (next token)"
    summary = "next token"
    command = "generate"
    writes_text = True
    evaluates_text = True
    starts_from_base = True  # `train --base RUN`: continue a GPT run on new text
    fine_tune_learning_rate = CONTINUE_LR
    export_formats = ("keras-hub", "savedmodel", "onnx", "litert")

    def on_base(self, cfg, base_folder, gentler: bool = True):
        """`cfg` made a continuation of the GPT run in `base_folder`: its tokenizer and shape."""
        return continuation.on_base(cfg, base_folder, self.name, (self.name,), gentler)

    def tokenizer_source(self, cfg) -> str | None:
        """A continuation reads text as its base did: the base run's tokenizer."""
        return continuation.base_tokenizer(cfg)

    def unknown_to_base(self, cfg) -> float:
        """The share of the new text's tokens the base's tokenizer writes as unknown."""
        if not cfg.base_run:
            return 0.0
        from desktop_llm.core.data import corpus_of

        return continuation.unknown_to_base(cfg, corpus_of(cfg).iter_text())

    def check_data(self, cfg) -> None:
        refuse_unreadable(self.unknown_to_base(cfg), cfg.data.accept_unknown)

    def prepare_data(self, run, cfg, tok, emit):
        from desktop_llm.core import events as ev
        from desktop_llm.core.data import TokenData

        fresh = not TokenData.exists(run.data_dir)
        data = super().prepare_data(run, cfg, tok, emit)
        note = unreadable_warning(self.unknown_to_base(cfg)) if fresh and cfg.base_run else None
        if note:
            emit(ev.Warning(message=note).to_dict())
        return data

    def initialise(self, model, cfg, mcfg, emit) -> None:
        """A fresh continuation starts from the base run's best weights (the same shape)."""
        continuation.initialise(model, self.build, cfg, mcfg, emit)

    def check_export(self, run, fmt: str) -> None:
        from desktop_llm.core.models.gpt import export

        export.check(run, fmt)

    def write_export(self, model, tok, run, fmt: str, folder) -> dict:
        from desktop_llm.core.models.gpt import export

        return export.write(model, tok, run, fmt, folder)

    def add_commands(self, sub, kit) -> None:
        from desktop_llm.core.models.gpt import commands

        commands.add_parser(sub, kit)

    def build(self, mcfg, seed=None):
        from desktop_llm.core.models.backbones.gpt import build_model

        return build_model(mcfg, seed=seed)

    def compile_args(self) -> dict:
        import keras

        # keras-hub's CausalLM adds next-token accuracy by default, as "sparse_categorical_accuracy":
        # named "accuracy" here, as the other families name theirs (events.Step / events.Eval)
        return {"loss": keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                "weighted_metrics": [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]}

    def train_dataset(self, data, start_step, max_steps, batch, T, seed, vocabulary):
        return data.train_dataset(start_step, max_steps, batch, T, seed)

    def val_dataset(self, data, n_batches, batch, T, vocabulary):
        import tensorflow as tf

        vx, vy = data.val_batches(n_batches, batch, T)
        return tf.data.Dataset.from_tensor_slices((vx, vy)).batch(batch).cache()

    def sample(self, ctx) -> str:
        n = ctx.cfg.training.sample_tokens
        if n <= 0:
            return ""
        from desktop_llm.core.generation import Generator, SamplingConfig

        if ctx.generator is None:
            ctx.generator = Generator(ctx.model, ctx.tok, jit_compile=ctx.cfg.training.jit_compile)
        prompt = ctx.tok.decode(list(ctx.data.val[: min(8, len(ctx.data.val))]))
        res = ctx.generator.generate(prompt, SamplingConfig(max_new_tokens=n, temperature=0.8, top_k=40,
                                                            seed=ctx.step))
        return prompt + res.text


FAMILY = GPT()
