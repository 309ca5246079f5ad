"""The classifier family: a classification head fine-tuned on a pretrained encoder.

The base is a masked-LM run (keras-hub `BertTextClassifier` on its `BertBackbone`: the [CLS]
token's pooled state), a GPT run (the decoder's state at the last real token, which has read the
whole text), or nothing (an encoder trained from scratch on the labelled text). The run records
its base in config.json (`base_run`, the base run's folder) and copies the base's tokenizer, so
the ids mean what they meant in pretraining. `training.freeze_steps` trains only the head for
that many steps first: the encoder's weights do not change while it is frozen.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from desktop_llm.core import events as ev
from desktop_llm.core.config import ConfigError, RunConfig, TrainConfig
from desktop_llm.core.models.backbones.bert import SPECIALS
from desktop_llm.core.models.base import Family, refuse_unreadable, unreadable_warning
from desktop_llm.core.models.classifier import report
from desktop_llm.core.models.classifier.examples import (
    LabelledData,
    class_counts,
    read_examples,
    validation_split,
)

CONFUSION_IN_EVENTS = 50  # classes up to which each evaluation event carries the confusion matrix
DEFAULT_STEPS, DEFAULT_EVAL_INTERVAL = 300, 50  # a classifier learns in a few hundred steps
FINE_TUNE_LR = 3e-4


def base_config(cfg: RunConfig) -> RunConfig | None:
    """The base run's configuration, or None for a classifier trained from scratch."""
    if not cfg.base_run:
        return None
    path = Path(cfg.base_run) / "config.json"
    if not path.exists():
        raise ConfigError(f"The base run {cfg.base_run} is not there any more: this classifier was "
                          "fine-tuned from it. Copy it back, or start a classifier from another run.")
    return RunConfig.load(path)


def base_family(cfg: RunConfig) -> str:
    """The base run's family: recorded in the classifier's own config (so a trained classifier
    loads after its base run is deleted), else read from the base run."""
    if cfg.base_family or not cfg.base_run:
        return cfg.base_family or "masked_lm"
    return base_config(cfg).family


def on_base(cfg: RunConfig, base_folder, gentler: bool = True) -> RunConfig:
    """`cfg` made a fine-tune of the run in `base_folder`: its shape, its tokenizer, a gentler
    learning rate. The one rule the CLI (`--base`) and the Train page share; refuses a base that
    cannot be one, in one line."""
    import dataclasses

    folder = Path(base_folder)
    base = RunConfig.load(folder / "config.json")
    if base.family not in ("gpt", "masked_lm"):
        raise ConfigError(f"Run {folder.name} is a {base.family} run: fine-tune a classifier from a masked_lm "
                          "or gpt run.")
    if not (folder / "checkpoints" / "index.json").exists():
        raise ConfigError(f"Run {folder.name} has no checkpoint yet: train it first.")
    t = cfg.training
    if gentler:  # a fine-tune's learning rate: a third of training from scratch
        t = dataclasses.replace(t, learning_rate=FINE_TUNE_LR, min_learning_rate=FINE_TUNE_LR / 10)
    return dataclasses.replace(cfg, family="classifier", base_run=str(folder.resolve()), base_family=base.family,
                               tokenizer=base.tokenizer,
                               model=dataclasses.replace(base.model, dropout=cfg.model.dropout),
                               training=t.fitted())




class Classifier(Family):
    name = "classifier"
    title = "Classifier (fine-tuned encoder)"
    summary = "a label per text"
    command = "classify"
    starts_from_base = True
    fine_tune_learning_rate = FINE_TUNE_LR
    loss_over_tokens = False  # over its classes: no perplexity of text
    embeds_sentences = True

    def add_commands(self, sub, kit) -> None:
        from desktop_llm.core.models.classifier import commands

        commands.add_parser(sub, kit)

    def estimate(self, mcfg, batch_size: int = 12, cfg=None):
        """The base's encoder (a GPT's decoder, or BERT's with its pooled layer) and the class head
        (for two classes where the run's classes are not known yet)."""
        from dataclasses import replace

        from desktop_llm.core.config import count_parameters, estimate
        from desktop_llm.core.models.backbones.bert import bert_parameters

        gpt = cfg is not None and base_family(cfg) == "gpt"
        m = mcfg if gpt else replace(mcfg, tie_embeddings=True)
        classes = 2  # the data decides; the head is a rounding error of the whole either way
        d = m.hidden_dim
        encoder = count_parameters(m) if gpt else bert_parameters(m)
        return estimate(m, batch_size, parameters=encoder + d * classes + classes)

    def example_data(self):
        from desktop_llm.resources import labelled_example

        return labelled_example()

    def default_training(self, training):
        """A classifier learns in a few hundred steps."""
        import dataclasses

        return dataclasses.replace(training, max_steps=DEFAULT_STEPS, eval_interval=DEFAULT_EVAL_INTERVAL,
                                   warmup_steps=DEFAULT_STEPS // 10).fitted()

    def on_base(self, cfg, base_folder, gentler: bool = True):
        return on_base(cfg, base_folder, gentler)

    def check_export(self, run, fmt: str) -> None:
        from desktop_llm.errors import ExportError

        if run.config.base_run and base_family(run.config) == "gpt":
            raise ExportError(f"Run {run.id} is a classifier on a GPT: keras-hub has no such task to load it as.")

    def write_export(self, model, tok, run, fmt: str, folder) -> dict:
        from desktop_llm.core.models import task_preset

        data = LabelledData(run.data_dir)
        extra = {"classes": data.classes, "prior": data.prior.tolist()}
        if run.config.pooling == "mean":
            from desktop_llm.core.models.classifier import mean_head

            return mean_head.write_preset(model, tok, Path(folder), extra)
        return task_preset.write(model, tok, folder, extra=extra)

    probes = True  # the Learning page: its answers to a few validation texts, heads and health (probe.py)
    timeline_cells = "the class given to each"

    def prober(self, model, jit_compile: bool = False):
        from desktop_llm.core.models.classifier.probe import ClassifierProber

        return ClassifierProber(model, jit_compile=jit_compile)

    probe_prompts_origin = "one validation text of each class"

    def probe_prompts(self, data) -> list[str]:
        """One validation text of each class, in the classes' order (the first few classes)."""
        firsts = [np.flatnonzero(data.labels[data.val_index] == c)[:1] for c in range(len(data.classes))]
        return [data.val_texts[int(i[0])] for i in firsts if len(i)]

    def probe_extra(self, data) -> dict:
        return {"classes": list(data.classes), "specials": bool(data.specials)}

    baseline_metric = "macro_f1"  # its verdict: the validation macro-F1 against the baselines'
    selection_metric = "macro_f1"  # its best checkpoint: the highest macro-F1 (its loss can climb as F1 rises)

    def baselines(self, data, tok) -> dict | None:
        from desktop_llm.core.models.classifier.baselines import classifier_baselines

        return classifier_baselines(data, tok.vocabulary_size)

    def describe_data(self, paths, column=None, encodings=(), val_fraction: float = 0.1, label_column=None,
                      group_column=None) -> str | None:
        """Its examples and classes, the largest first, and its own split (stratified, by example,
        or by whole documents with a group column: the corpus's split by characters is not the one
        a classifier trains on). A label or group column the user named that cannot be read says
        why; without one, files that hold no labels are not a classifier's (None)."""
        from desktop_llm.errors import DesktopLLMError

        try:
            examples = read_examples(paths, column, label_column, dict(encodings), group_column=group_column)
            labels = np.array([e.label for e in examples])
            is_val, split = validation_split(examples, labels, val_fraction, TrainConfig().seed)  # a default run's
        except (DesktopLLMError, OSError, ValueError) as e:
            return f"cannot read these files as labelled texts: {e}" if label_column or group_column else None
        from desktop_llm.core.leakage import leaked

        counts = sorted(class_counts(examples).items(), key=lambda kv: -kv[1])
        drop = int(leaked([e.text for e in examples], is_val).sum())
        val = int(is_val.sum()) - drop
        shown = " · ".join(f"{c} {n:,}" for c, n in counts[:8]) + (" · …" if len(counts) > 8 else "")
        whole = (f", {split['val_groups']:,} of {split['groups']:,} '{group_column}' groups held out whole"
                 if split else "")
        return (f"{len(examples):,} labelled texts in {len(counts)} classes ({shown}); "
                f"train / validation {len(examples) - val - drop:,} / {val:,} texts{whole}"
                + (f" ({drop:,} more repeat training texts: left out)" if drop else ""))

    def check_data(self, cfg) -> None:
        """Bad labels are refused here, in one line, before a run exists; and a base that cannot
        read the text (a Chinese character model under English texts: every letter unknown, only
        the spaces left, and still "83% accuracy" from word lengths)."""
        examples = read_examples(cfg.data.paths, cfg.data.column, cfg.data.label_column, cfg.data.encodings,
                                 group_column=cfg.data.group_column)
        if cfg.data.group_column:  # a split that can hold out no group is refused here, not in the child
            labels = np.array([e.label for e in examples])
            validation_split(examples, labels, cfg.data.val_fraction, cfg.training.seed)
        refuse_unreadable(self.unknown_to_base(cfg, examples), cfg.data.accept_unknown)

    def unknown_to_base(self, cfg, examples=None) -> float:
        """The share of the labelled texts' tokens the base run's tokenizer writes as unknown (0
        without a base: the run trains its own tokenizer on this text)."""
        source = self.tokenizer_source(cfg)
        if not source:
            return 0.0
        from desktop_llm.core.tokenizers import load_tokenizer, unknown_share

        if examples is None:
            examples = read_examples(cfg.data.paths, cfg.data.column, cfg.data.label_column, cfg.data.encodings)
        return unknown_share(load_tokenizer(source), (e.text for e in examples))

    def labelled_texts(self, cfg, training: bool = True):
        return [(e.text, e.label) for e in read_examples(cfg.data.paths, cfg.data.column, cfg.data.label_column,
                                                         cfg.data.encodings, training=training)]

    def uses_specials(self, cfg: RunConfig) -> bool:
        return base_family(cfg) != "gpt"  # a GPT never saw [CLS] / [SEP]: the text alone

    def model_vocabulary(self, tokenizer_vocabulary: int, cfg: RunConfig | None = None) -> int:
        return tokenizer_vocabulary + (len(SPECIALS) if cfg is None or self.uses_specials(cfg) else 0)

    # --- data -----------------------------------------------------------------------------
    def tokenizer_source(self, cfg: RunConfig) -> str | None:
        """A fine-tune reads text as its base did: the base run's tokenizer."""
        return str(Path(cfg.base_run) / "tokenizer") if cfg.base_run else None

    def data_ready(self, data_dir) -> bool:
        return LabelledData.exists(data_dir)

    def prepare_data(self, run, cfg: RunConfig, tok, emit):
        if not LabelledData.exists(run.data_dir):
            emit(ev.Phase(phase="data", message="Reading the labelled examples").to_dict())
            examples = read_examples(cfg.data.paths, cfg.data.column, cfg.data.label_column, cfg.data.encodings,
                                     group_column=cfg.data.group_column)
            info = LabelledData.prepare(examples, tok, cfg.model.sequence_length, run.data_dir,
                                        cfg.data.val_fraction, cfg.training.seed,
                                        specials=self.uses_specials(cfg))
            alone = info.pop("unvalidated", [])
            if alone:
                which = (f"Class '{alone[0]}' has all its texts" if len(alone) == 1 else
                         f"{len(alone)} classes ({', '.join(alone[:5])}{', …' if len(alone) > 5 else ''}) each have "
                         "all their texts")
                emit(ev.Warning(message=f"{which} in one '{cfg.data.group_column}': trained on, never "
                                        "validated.").to_dict())
            if info["cut"]:
                emit(ev.Warning(message=f"{info['cut']} of {info['examples']} texts are longer than the context "
                                        f"({cfg.model.sequence_length} tokens): their ends were cut.").to_dict())
            note = unreadable_warning(self.unknown_to_base(cfg, examples)) if cfg.base_run else None
            if note:
                emit(ev.Warning(message=note).to_dict())
            emit(ev.Data(**info).to_dict())
        return LabelledData(run.data_dir)

    # --- model ----------------------------------------------------------------------------
    def build_for_run(self, run, cfg: RunConfig, mcfg, seed=None):
        import json

        classes = json.loads((Path(run.data_dir) / "classes.json").read_text("utf-8"))["classes"]
        return self.build(mcfg, seed=seed, num_classes=len(classes), base=base_family(cfg), pooling=cfg.pooling)

    def build(self, mcfg, seed=None, num_classes: int = 2, base: str = "masked_lm", pooling: str = "cls"):
        import keras
        import keras_hub

        mcfg.validate()
        if seed is not None:
            keras.utils.set_random_seed(seed)
        if base == "gpt":
            from desktop_llm.core.models.classifier.gpt_head import GPTClassifier

            return GPTClassifier.from_config_of(mcfg, num_classes)
        from desktop_llm.core.models.backbones.bert import bert_backbone

        if pooling == "mean":
            from desktop_llm.core.models.classifier.mean_head import MeanPooledClassifier

            return MeanPooledClassifier.on(bert_backbone(mcfg), num_classes, mcfg.dropout)
        model = keras_hub.models.BertTextClassifier(bert_backbone(mcfg), num_classes=num_classes,
                                                    preprocessor=None, dropout=mcfg.dropout)
        # keras-hub starts the head at BERT's N(0, 0.02): made for a well pretrained encoder. On
        # small encoders (ours) that tiny head starves the encoder of gradient: measured on the
        # bundled poem / prose / drama task, 3 seeds, 300 steps, it sat at the majority's prior
        # for 100 to 300+ steps; with Glorot's scale all three were above 98% by step 100.
        kernel = model.output_dense.kernel
        kernel.assign(keras.initializers.GlorotUniform(seed=seed)(kernel.shape))
        return model

    def initialise(self, model, cfg: RunConfig, mcfg, emit) -> None:
        """A fresh fine-tune starts from the base run's best weights (its encoder, not its head)."""
        if not cfg.base_run:
            return
        from desktop_llm.core.checkpoints import CheckpointManager
        from desktop_llm.core.models.registry import get_family

        base_cfg = base_config(cfg)
        ckpt = CheckpointManager(Path(cfg.base_run) / "checkpoints").find("best")
        if ckpt is None:
            raise ConfigError(f"The base run {cfg.base_run} has no checkpoint yet: train it first.")
        base_model = get_family(base_cfg.family).build(mcfg)
        base_model.optimizer = None  # the weights file also holds an optimizer: read the model's only
        base_model.load_weights(str(ckpt.weights_path))
        src = base_model.backbone
        model.backbone.set_weights(src.get_weights())
        emit(ev.Phase(phase="model", message=f"Starting from the base run's weights (step {ckpt.step})").to_dict())

    def set_frozen(self, model, frozen: bool) -> None:
        model.backbone.trainable = not frozen

    def train_batches(self, data, start_step, max_steps, batch, T, seed, vocabulary):
        for step in range(start_step, max_steps + 1024):
            yield data.batch(step, batch, seed)

    def val_arrays(self, data, n_batches, batch, T, vocabulary):
        idx = data.val_index
        return data.inputs(idx), data.labels[idx]

    def eval_extras(self, ctx) -> dict:
        """Macro-F1 and the confusion matrix over the whole validation split."""

        data = ctx.data
        probs = report.predict_proba(ctx.model, data.inputs(data.val_index))
        s = report.scores(data.labels[data.val_index], probs.argmax(-1), len(data.classes))
        # accuracy as the classifier answers (report.predict_proba), as the macro-F1 beside it
        extras = {"val_macro_f1": s["macro_f1"], "val_accuracy": s["accuracy"], "classes": data.classes}
        if len(data.classes) <= CONFUSION_IN_EVENTS:  # 5,000 classes: 75 MB a line (`classify --report` has it)
            extras["confusion"] = s["confusion"]
        return extras

    def sample(self, ctx) -> str:
        """A validation text of each class (three at most), with the class predicted."""
        data = ctx.data
        firsts = [data.val_index[data.labels[data.val_index] == c][:1] for c in range(len(data.classes))]
        idx = np.concatenate(firsts)[:3]
        probs = report.predict_proba(ctx.model, data.inputs(idx))
        lines = []
        for i, p in zip(idx, probs):
            text = data.val_texts[int(np.flatnonzero(data.val_index == i)[0])].replace("\n", " ")
            lines.append(f"{text[:60]}… → {data.classes[int(p.argmax())]} ({p.max():.0%}), "
                         f"true: {data.classes[int(data.labels[i])]}")
        return "\n".join(lines)


FAMILY = Classifier()
