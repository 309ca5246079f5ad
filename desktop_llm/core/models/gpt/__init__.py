"""The GPT family: next-token prediction with the decoder in `backbones/gpt.py` (keras-hub layers).

`train --base RUN` continues a GPT run on new text (continued pretraining): the base's tokenizer,
shape and best weights, a gentler learning rate, and a refusal where the base cannot read the text.
"""

from __future__ import annotations

from desktop_llm.core.models.base import Family
from desktop_llm.core.models.continuation import ContinuesOnText


class GPT(ContinuesOnText, Family):
    name = "gpt"
    title = "GPT (next token)"
    summary = "next token"
    command = "generate"
    writes_text = True
    evaluates_text = True
    probes = True  # the learning timeline and what it learned when (core/probes.py)

    def prober(self, model, jit_compile: bool = False):
        from desktop_llm.core.prober import Prober

        return Prober(model, jit_compile=jit_compile)
    from_presets = True  # `--base` takes a keras-hub GPT-2 preset folder too (continuation.py)
    export_formats = ("keras-hub", "savedmodel", "onnx", "litert")

    def layout_map(self, mesh, mcfg):
        """Megatron's split, as keras-hub's own layout maps: each attention's heads, the feed-forward
        layer's hidden units and the embeddings' width over the "model" axis; the norms and the
        other biases replicated. Keys are regexes that match a whole path (backbones/gpt.py)."""
        import keras

        from desktop_llm.core.config import ConfigError

        n = mesh.shape[mesh.axis_names.index("model")]
        for what, size in (("heads", mcfg.num_heads), ("feed-forward width", mcfg.intermediate_dim),
                           ("width", mcfg.hidden_dim)):
            if size % n:
                raise ConfigError(f"--model-parallel {n}: the model's {what} ({size}) must divide by {n}.")
        layout = keras.distribution.LayoutMap(mesh)
        layout["token_embedding/embeddings"] = (None, "model")
        layout["position_embedding/embeddings"] = (None, "model")
        layout[r".*self_attention/(query|key|value)/kernel"] = (None, "model", None)
        layout[r".*self_attention/(query|key|value)/bias"] = ("model", None)
        layout[r".*self_attention/attention_output/kernel"] = ("model", None, None)
        layout[r".*feedforward_intermediate_dense/kernel"] = (None, "model")
        layout[r".*feedforward_intermediate_dense/bias"] = ("model",)
        layout[r".*feedforward_output_dense/kernel"] = ("model", None)
        return layout

    def check_export(self, run, fmt: str) -> None:
        from desktop_llm.core.models.gpt import export

        export.check(run, fmt)

    def write_export(self, model, tok, run, fmt: str, folder) -> dict:
        import dataclasses

        from desktop_llm.core.models import lora
        from desktop_llm.core.models.gpt import export

        shape = dataclasses.replace(run.config.model, vocabulary_size=model.backbone.vocabulary_size, dropout=0.0)
        return export.write(lora.merged(model, lambda: self.build(shape)), tok, run, fmt, folder)

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

    token_windows = True  # the default batches (random windows), cut in the graph on TensorFlow

    def sample(self, ctx) -> str:
        n = ctx.cfg.training.sample_tokens
        if n <= 0:
            return ""
        from desktop_llm.core.generation import SamplingConfig

        prompt = ctx.tok.decode(list(ctx.data.val[: min(8, len(ctx.data.val))]))
        res = ctx.causal_generator().generate(prompt, SamplingConfig(max_new_tokens=n, temperature=0.8, top_k=40,
                                                            seed=ctx.step))
        return prompt + res.text


FAMILY = GPT()
