"""The translator family: an encoder-decoder Transformer (keras-hub's BART: `TransformerEncoder`
and `TransformerDecoder` with cross-attention) trained on sentence pairs with teacher forcing.

One tokenizer, trained on both sides of the pairs, reads source and target (a character
tokenizer covers English and Chinese alike), or with `tokenizer.separate` one per side in one id
space (tokenizer.py); the decoder's [BOS] and [EOS] come after its ids.
The loss and token accuracy are over the target's real tokens (padding weighs nothing); at each
evaluation a sample of the validation pairs is translated greedily for BLEU (sacrebleu) and
exact match, and three translations are shown.
"""

from __future__ import annotations

import numpy as np

from desktop_llm.core import events as ev
from desktop_llm.core.models.base import Family, weighted_token_loss
from desktop_llm.core.models.translator.pairs import PairData, read_pairs
from desktop_llm.core.models.translator.tokenizer import PairTokenizer  # registers the "pair" kind

BLEU_SENTENCES = 64  # validation pairs translated at each evaluation


class Translator(Family):
    name = "translator"
    title = "Translator (encoder-decoder)"
    summary = "sentence pairs"
    command = "translate"
    separate_tokenizers = True
    accuracy_name = "token accuracy"
    tokenizer_in_run = True  # it learns both sides of the pairs, in the run
    attention_kinds = ("self", "encoder", "decoder", "cross")  # self: the encoder's

    def add_commands(self, sub, kit) -> None:
        from desktop_llm.core.models.translator import commands

        commands.add_parser(sub, kit)

    def attention_maps(self, model, tok, text: str, kind: str = "self"):
        from desktop_llm.core.models.translator.attention import translator_maps

        return translator_maps(model, tok, text, kind)

    def estimate(self, mcfg, batch_size: int = 12, cfg=None):
        """keras-hub's BART: one token embedding shared by encoder, decoder and output; positions for
        each side; L encoder blocks and L decoder blocks with cross-attention (three attentions over
        the context per block pair)."""
        from desktop_llm.core.config import estimate, parameter_split

        d, f, L, T = mcfg.hidden_dim, mcfg.intermediate_dim, mcfg.num_layers, mcfg.sequence_length
        V = max(1, mcfg.vocabulary_size)
        attention = 4 * d * d + 4 * d
        block = attention + (2 * d * f + f + d) + 4 * d  # attention, MLP, two LayerNorms
        cross = attention + 2 * d  # and its LayerNorm
        n = V * d + 2 * T * d + 2 * 2 * d + L * block + L * (block + cross)
        split = parameter_split(mcfg, n, attention=3 * L * attention, feed_forward=2 * L * (2 * d * f + f + d),
                                embeddings=V * d + 2 * T * d)
        return estimate(mcfg, batch_size, parameters=n, attention_layers=3 * L, split=split)

    def sample_text(self, cfg) -> str | None:
        """The first source sentence (a pair file read as plain text would give both sides)."""
        from desktop_llm.errors import DesktopLLMError

        try:
            return next(iter(read_pairs(cfg.data.paths, cfg.data.column, cfg.data.target_column,
                                        cfg.data.encodings)))[0]
        except (DesktopLLMError, OSError, StopIteration):
            return None

    def example_data(self):
        from desktop_llm.resources import parallel_example

        return parallel_example()

    def describe_data(self, paths, column=None, encodings=(), val_fraction: float = 0.1, label_column=None,
                      group_column=None) -> str | None:
        """Its pairs, with the first one as an example (a plain text has none: None)."""
        from desktop_llm.errors import DesktopLLMError

        try:
            pairs = read_pairs(paths, column, None, dict(encodings))
        except (DesktopLLMError, OSError, ValueError):
            return None
        from desktop_llm.core.config import TrainConfig
        from desktop_llm.core.leakage import leaked
        from desktop_llm.core.models.translator.pairs import split

        source, target = (s if len(s) <= 40 else s[:39] + "…" for s in pairs[0])
        drop = int(leaked([f"{s}\t{t}" for s, t in pairs], split(len(pairs), val_fraction, TrainConfig().seed)).sum())
        return (f"{len(pairs):,} sentence pairs, such as “{source}” → “{target}”"
                + (f"; {drop:,} validation pairs repeat training pairs: left out" if drop else ""))

    def check_data(self, cfg) -> None:
        """A line without a source and a target is refused here, before a run exists."""
        read_pairs(cfg.data.paths, cfg.data.column, cfg.data.target_column, cfg.data.encodings)

    def model_vocabulary(self, tokenizer_vocabulary: int, cfg=None) -> int:
        return tokenizer_vocabulary + 2  # [BOS], [EOS]

    def train_tokenizer(self, cfg):
        """`tokenizer.separate`: one tokenizer per side (see tokenizer.py); else None, one shared."""
        if not cfg.tokenizer.separate:
            return None
        pairs = read_pairs(cfg.data.paths, cfg.data.column, cfg.data.target_column, cfg.data.encodings)
        return PairTokenizer.train(pairs, cfg.tokenizer.kind, cfg.tokenizer.vocabulary_size)

    def tokenizer_texts(self, cfg):
        """Both sides of every pair (a TSV read as a table would give the first column only)."""
        for s, t in read_pairs(cfg.data.paths, cfg.data.column, cfg.data.target_column, cfg.data.encodings):
            yield s + "\n" + t + "\n"

    def data_ready(self, data_dir) -> bool:
        return PairData.exists(data_dir)

    def prepare_data(self, run, cfg, tok, emit):
        if not PairData.exists(run.data_dir):
            emit(ev.Phase(phase="data", message="Reading the sentence pairs").to_dict())
            pairs = read_pairs(cfg.data.paths, cfg.data.column, cfg.data.target_column, cfg.data.encodings)
            info = PairData.prepare(pairs, tok, cfg.model.sequence_length, run.data_dir, cfg.data.val_fraction,
                                    cfg.training.seed)
            if info["cut"]:
                emit(ev.Warning(message=f"{info['cut']} of {info['examples']} pairs are longer than the context "
                                        f"({cfg.model.sequence_length} tokens): their ends were cut. Give the "
                                        "model a longer context (--context, the Model page), or train on "
                                        "shorter pairs (such as the bundled tatoeba-cmn-eng-5k.tsv).").to_dict())
            emit(ev.Data(**info).to_dict())
        return PairData(run.data_dir)

    def build(self, mcfg, seed=None):
        """keras-hub's BART: `TransformerEncoder` and `TransformerDecoder` (cross-attention) blocks
        over one shared, tied token embedding; so a run saves as a preset that keras-hub's own
        `BartSeq2SeqLM.from_preset` loads."""
        import keras
        import keras_hub

        mcfg.validate()
        if seed is not None:
            keras.utils.set_random_seed(seed)
        backbone = keras_hub.models.BartBackbone(
            vocabulary_size=mcfg.vocabulary_size, num_layers=mcfg.num_layers, num_heads=mcfg.num_heads,
            hidden_dim=mcfg.hidden_dim, intermediate_dim=mcfg.intermediate_dim, dropout=mcfg.dropout,
            max_sequence_length=mcfg.sequence_length)
        model = keras_hub.models.BartSeq2SeqLM(backbone=backbone, preprocessor=None)
        # Glorot kernels, not BART's N(0, 0.02): at the small widths trained here (64-128), 0.02 keeps
        # the post-LayerNorm blocks' signals small for hundreds of steps. Measured on the bundled
        # pairs (tiny, 1,000 pairs, 300 steps): val loss 3.09 -> 2.72, BLEU 0.9 -> 8.0.
        for w in model.weights:
            if w.path.endswith("kernel"):  # unseeded: drawn from the global seed set above, each its own
                w.assign(keras.initializers.GlorotUniform()(w.shape))
        return model

    def compile_args(self) -> dict:
        return weighted_token_loss()  # the target's padding weighs nothing

    def train_batches(self, data, start_step, max_steps, batch, T, seed, vocabulary):
        for step in range(start_step, max_steps + 1024):
            yield data.batch(step, batch, seed)

    def val_arrays(self, data, n_batches, batch, T, vocabulary):
        idx = data.val_index[: n_batches * batch]
        a = data.arrays
        return data.inputs(idx), a["tgt_out"][idx], a["tgt_mask"][idx].astype(np.float32)

    def _translator(self, ctx):
        from desktop_llm.core.models.translator.decode import Translator as Decoder

        if ctx.generator is None:
            ctx.generator = Decoder(ctx.model, ctx.tok, ctx.cfg.model.sequence_length)
        return ctx.generator

    def eval_extras(self, ctx) -> dict:
        from desktop_llm.core.models.translator.decode import scores

        pairs = ctx.data.val_pairs[:BLEU_SENTENCES]
        hyps = self._translator(ctx).translate([p[0] for p in pairs])
        s = scores(hyps, [p[1] for p in pairs])
        return {"val_bleu": s["bleu"], "val_chrf": s["chrf"], "val_exact_match": s["exact_match"]}

    probes = True  # the Learning page: its translations of a few validation sources, and health (probe.py)
    timeline_cells = "greedy translations"

    def prober(self, model, jit_compile: bool = False):
        from desktop_llm.core.models.translator.probe import TranslatorProber

        return TranslatorProber(model, jit_compile=jit_compile)

    probe_prompts_origin = "validation sources"

    def probe_prompts(self, data) -> list[str]:
        return [source for source, _ in data.val_pairs]

    baseline_metric = "chrf"  # its verdict: chrF of its greedy translations against the baselines'

    def baselines(self, data, tok) -> dict | None:
        from desktop_llm.core.models.translator.baselines import translator_baselines

        def decode(ids):  # a target as the model's translations are decoded, without [BOS] / [EOS]
            return tok.decode([int(i) for i in ids if int(i) < tok.vocabulary_size])

        return translator_baselines(data, tok, decode, BLEU_SENTENCES)

    def sample(self, ctx) -> str:
        pairs = ctx.data.val_pairs[:3]
        hyps = self._translator(ctx).translate([p[0] for p in pairs])
        return "\n".join(f"{s} → {h}   (reference: {t})" for (s, t), h in zip(pairs, hyps))


FAMILY = Translator()
