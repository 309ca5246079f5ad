"""Starting a run from a trained run of the same shape (`train --base RUN`): its tokenizer, its shape
and its best weights, at a gentler learning rate. One rule for the families that continue a run:
the GPT and the masked LM (continued pretraining on new text) and the chat model (fine-tuning a
GPT on conversations), which adds its template's tokens to the base's vocabulary: their
embeddings start at the mean of the base's, the rest of the model is the base's.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

CONTINUE_LR = 3e-4  # continued pretraining and chat fine-tuning: a third of training from scratch
PRESET = "keras-hub preset"  # the base_family of a run started from a keras-hub preset folder


def on_base(cfg, base_folder, family: str, bases: tuple[str, ...], gentler: bool = True, presets: bool = False):
    """`cfg` made a `family` run that continues the run in `base_folder` (a run of one of `bases`),
    or, where the family takes `presets`, the keras-hub GPT-2 preset in that folder."""
    from desktop_llm.core.config import ConfigError, RunConfig
    from desktop_llm.core.tokenizers import is_keras_hub_preset

    folder = Path(base_folder)
    if is_keras_hub_preset(folder):
        if not presets:
            raise ConfigError(f"{folder} is a keras-hub preset: a {family} run starts from a run of its own "
                              "family (a preset folder is a base for a GPT or a chat run).")
        return on_preset(cfg, folder, family, gentler)
    base = RunConfig.load(folder / "config.json")
    if base.family not in bases:
        names = " or ".join(b.replace("_", "-") for b in bases)
        raise ConfigError(f"Run {folder.name} is a {base.family} run: a {family} run starts from a {names} run.")
    if not (folder / "checkpoints" / "index.json").exists():
        raise ConfigError(f"Run {folder.name} has no checkpoint yet: train it first.")
    t = cfg.training
    if gentler:
        t = dataclasses.replace(t, learning_rate=CONTINUE_LR, min_learning_rate=CONTINUE_LR / 10)
    return dataclasses.replace(cfg, family=family, base_run=str(folder.resolve()), base_family=base.family,
                               tokenizer=base.tokenizer, model=dataclasses.replace(base.model, dropout=cfg.model.dropout),
                               training=t.fitted())


def on_preset(cfg, folder: Path, family: str, gentler: bool = True):
    """`cfg` made a `family` run that continues a keras-hub GPT-2 causal LM preset (desktop_llm's own
    keras-hub export, or GPT-2 downloaded elsewhere): its shape from the preset's config.json, its
    tokenizer read by keras-hub (core/tokenizers.KerasHubTokenizer), its weights at the first step."""
    import json

    from desktop_llm.core.config import ConfigError, ModelConfig, TokenizerConfig

    config = json.loads((folder / "config.json").read_text("utf-8"))
    if config.get("class_name") != "GPT2Backbone":
        raise ConfigError(f"{folder} holds a keras-hub {config.get('class_name')}: a {family} run starts from a "
                          "GPT-2 causal LM preset (keras_hub.models.GPT2CausalLM, as desktop_llm exports a GPT).")
    if not (folder / "tokenizer.json").exists():
        raise ConfigError(f"The keras-hub preset in {folder} has no tokenizer: a run cannot read text with it.")
    c = config["config"]
    model = ModelConfig(num_layers=c["num_layers"], num_heads=c["num_heads"], hidden_dim=c["hidden_dim"],
                        intermediate_dim=c["intermediate_dim"], sequence_length=c["max_sequence_length"],
                        dropout=cfg.model.dropout)
    t = cfg.training
    if gentler:
        t = dataclasses.replace(t, learning_rate=CONTINUE_LR, min_learning_rate=CONTINUE_LR / 10)
    return dataclasses.replace(cfg, family=family, base_run=str(folder.resolve()), base_family=PRESET,
                               tokenizer=TokenizerConfig(kind="keras-hub", path=str(folder.resolve())),
                               model=model, training=t.fitted())


def base_tokenizer(cfg) -> str | None:
    """The base run's tokenizer folder (a continuation reads text as its base did), or None; a
    preset's folder is its own tokenizer's."""
    if not cfg.base_run:
        return None
    return cfg.base_run if cfg.base_family == PRESET else str(Path(cfg.base_run) / "tokenizer")


def unknown_to_base(cfg, texts) -> float:
    """The share of `texts`' tokens the base's tokenizer writes as unknown (0 without a base)."""
    if not cfg.base_run:
        return 0.0
    from desktop_llm.core.tokenizers import load_tokenizer, unknown_share

    return unknown_share(load_tokenizer(base_tokenizer(cfg)), texts)


def initialise(model, build, cfg, mcfg, emit) -> None:
    """A fresh continuation starts from the base run's best weights. `build(mcfg)` makes a model
    of the base's own shape; where `model` embeds more tokens than the base (a chat template's),
    the new rows start at the mean of the base's embeddings."""
    if not cfg.base_run:
        return
    import numpy as np

    from desktop_llm.core import events as ev
    from desktop_llm.core.checkpoints import CheckpointManager
    from desktop_llm.core.config import ConfigError
    from desktop_llm.core.models.registry import get_family
    from desktop_llm.core.tokenizers import load_tokenizer

    if cfg.base_family == PRESET:  # keras-hub's GPT-2: our backbone's layers, path for path
        import keras_hub

        base, where = keras_hub.models.Backbone.from_preset(cfg.base_run), "the keras-hub preset's weights"
    else:
        ckpt = CheckpointManager(Path(cfg.base_run) / "checkpoints").find("best")
        if ckpt is None:
            raise ConfigError(f"The base run {cfg.base_run} has no checkpoint yet: train it first.")
        # the ids the base embeds: its tokenizer's, and its family's special ids after them
        tokens = load_tokenizer(base_tokenizer(cfg)).vocabulary_size
        base = build(dataclasses.replace(mcfg, vocabulary_size=get_family(cfg.base_family).model_vocabulary(tokens)))
        base.optimizer = None  # the weights file also holds an optimizer: read the model's only
        base.load_weights(str(ckpt.weights_path))
        where = f"the base run's weights (step {ckpt.step})"
    theirs = {w.path: w for w in base.weights}
    for mine in model.weights:  # by path: LoRA's factors (not in the base) keep their start, B = 0
        if mine.path not in theirs:
            continue
        value = theirs[mine.path].numpy()
        if tuple(mine.shape) != value.shape:  # the token embedding, with the template's rows added
            grown = np.repeat(value.mean(axis=0, keepdims=True), mine.shape[0], axis=0)
            grown[: value.shape[0]] = value
            value = grown
        mine.assign(value)
    emit(ev.Phase(phase="model", message=f"Starting from {where}").to_dict())


class ContinuesOnText:
    """What a family that continues a run of its own on new text adds (`train --base RUN`): the
    base's tokenizer, shape and weights, and a text the base cannot read refused before a run
    exists or, read in part, warned about. Mixed in before `Family` (the GPT, the masked LM)."""

    starts_from_base = True
    fine_tune_learning_rate = CONTINUE_LR
    lora = True

    from_presets = False  # `--base` also takes a keras-hub GPT-2 preset folder

    def on_base(self, cfg, base_folder, gentler: bool = True):
        """`cfg` made a continuation of the run in `base_folder`: its tokenizer and shape."""
        return on_base(cfg, base_folder, self.name, (self.name,), gentler, presets=self.from_presets)

    def tokenizer_source(self, cfg) -> str | None:
        """A continuation reads text as its base did: the base run's tokenizer."""
        return base_tokenizer(cfg)

    def unknown_to_base(self, cfg) -> float:
        """The share of the new text's tokens the base's tokenizer writes as unknown."""
        if not cfg.base_run:
            return 0.0
        from desktop_llm.core.data import corpus_of

        return unknown_to_base(cfg, corpus_of(cfg).iter_text())

    def check_data(self, cfg) -> None:
        from desktop_llm.core.models.base import refuse_unreadable

        refuse_unreadable(self.unknown_to_base(cfg), cfg.data.accept_unknown)

    def prepare_data(self, run, cfg, tok, emit):
        from desktop_llm.core import events as ev
        from desktop_llm.core.data import TokenData
        from desktop_llm.core.models.base import unreadable_warning

        fresh = not TokenData.exists(run.data_dir)
        data = super().prepare_data(run, cfg, tok, emit)
        note = unreadable_warning(self.unknown_to_base(cfg)) if fresh and cfg.base_run else None
        if note:
            emit(ev.Warning(message=note).to_dict())
        return data

    def initialise(self, model, cfg, mcfg, emit) -> None:
        """A fresh continuation starts from the base run's best weights (the same shape)."""
        initialise(model, self.build, cfg, mcfg, emit)
