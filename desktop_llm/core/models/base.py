"""What a model family is: the interface the trainer, the commands and the pages use, so that
generic code never names a family (the families live beside this file, one folder each, and
`registry.py` lists them)."""

from __future__ import annotations


class Family:
    """What generic code needs from a family: the trainer (data, build, loss, datasets, what each
    evaluation shows) and the commands and pages (defaults, checks, its own commands). Every hook
    has a default that fits a plain next-token model; a family overrides what differs."""

    name = ""
    title = ""
    summary = ""  # what it learns, for `train --family` help ("next token")
    command = ""  # the command that uses a trained run of this family ("generate"), for hints
    starts_from_base = False  # `train --base RUN` fine-tunes a run of another family
    separate_tokenizers = False  # `--separate-tokenizers`: one tokenizer per side of a pair
    embeds_sentences = False  # has an encoder whose states are sentence embeddings (`similar`, `embed`)
    attention_kinds = ("self",)  # the attention maps it has (`attention --kind`)
    tokenizer_in_run = False  # trains its own tokenizer in the run, from its data (the window needs none)
    fine_tune_learning_rate: float | None = None  # the gentler peak rate of a run started from a base
    writes_text = False  # generates text token by token (the Generate page's prompt and chat)
    evaluates_text = False  # its loss is the text's own (the Evaluate page's perplexity of a text, `eval`)
    chat_template = False  # its runs chat with a template (core/chat_template.py): a system prompt, turns that end
    loss_over_tokens = True  # its loss is a cross-entropy over tokens: a perplexity means something
    accuracy_name = "accuracy"  # what an evaluation's accuracy counts, in words
    masked_perplexity = False  # its perplexity is over masked tokens, not text (shown with its figures)

    def model_vocabulary(self, tokenizer_vocabulary: int, cfg=None) -> int:
        """Ids the model embeds: the tokenizer's, plus any special ids the family adds."""
        return tokenizer_vocabulary

    def tokenizer_texts(self, cfg):
        """The text a new tokenizer learns from (None: the corpus as the data page reads it)."""
        return None  # noqa: RET501 - None is the answer here, not a procedure's end

    def train_tokenizer(self, cfg):
        """A tokenizer the family trains its own way (a translator's pair), or None: the default."""
        return None  # noqa: RET501 - None is the answer here, not a procedure's end

    def own_tokenizer(self, tok):
        """The tokenizer a run of this family keeps, made from the one it copied or trained (a chat
        model adds its template's tokens); the same one by default."""
        return tok

    def tokenizer_source(self, cfg) -> str | None:
        """A tokenizer folder the run must copy (a fine-tune reads text as its base did), or None."""
        return None

    def prepare_data(self, run, cfg, tok, emit):
        """The run's training data, made once into its data folder (token windows by default)."""
        from desktop_llm.core.data import ensure_data

        data = ensure_data(run, cfg, tok, emit)
        data.check(cfg.model.sequence_length)
        return data

    def example_data(self):
        """Bundled data this family learns from (to try it, and for the tests that cover every family)."""
        from desktop_llm.resources import sample_corpus

        return sample_corpus()

    def sample_text(self, cfg) -> str | None:
        """A short text of the run's own data, in its language (the window's example inputs), or None
        when the data cannot be read here."""
        from desktop_llm.core.corpus import example_from
        from desktop_llm.core.data import corpus_of
        from desktop_llm.errors import DesktopLLMError

        try:
            return example_from(corpus_of(cfg).iter_text(), lines=1, limit=120) or None
        except (DesktopLLMError, OSError):
            return None

    def default_training(self, training):
        """The training settings a new run of this family starts from when no step count is given."""
        return training

    def on_base(self, cfg, base_folder, gentler: bool = True):
        """`cfg` made a fine-tune of the run in `base_folder` (families with `starts_from_base`)."""
        from desktop_llm.core.config import ConfigError

        raise ConfigError(f"A {self.name} run does not start from another run.")

    def check_data(self, cfg) -> None:
        """Refuse, in one line and before a run exists, data this family cannot read (labels, pairs)."""

    def describe_data(self, paths, column=None, encodings=(), val_fraction: float = 0.1, label_column=None,
                      group_column=None) -> str | None:
        """What this family would learn from these files, in one line for the Data page (a
        classifier's classes, a translator's pairs), or None where it reads them as plain text or
        cannot read them at all. `label_column` and `group_column`: the Train page's columns of
        labelled files (None: found by name, none)."""
        return None

    def example_parts(self, paths, encodings=()) -> list[tuple[str, bool]] | None:
        """The first example as the model reads it, in pieces marked True where the model learns to
        write them (a chat model's replies), or None where every token is learned alike."""
        return None

    def labelled_texts(self, cfg, training: bool = True):
        """(text, label) pairs the family's data already names (a classifier's examples), or None:
        sentence search then reads the corpus, labelled by file. `training=False`: the paths are
        a held-out set, read as the run's data (one class or one text is enough)."""
        return None  # noqa: RET501 - None is the answer here, not a procedure's end

    def add_commands(self, sub, kit) -> None:
        """The family's own commands (`fill-mask`, `classify`...) on the `desktop-llm` parser;
        `kit` is the command line's shared helpers (output, the run a command means)."""

    def data_ready(self, data_dir) -> bool:
        """Whether `prepare_data` has finished making the data in `data_dir`."""
        from desktop_llm.core.data import TokenData

        return TokenData.exists(data_dir)

    # --- exports: formats other tools load (core/export writes the folder, atomically) ---------
    export_formats: tuple[str, ...] = ("keras-hub",)  # of core.export.FORMATS

    def check_export(self, run, fmt: str) -> None:
        """Refuse, before anything loads, a run this format cannot carry (errors.ExportError)."""

    def write_export(self, model, tok, run, fmt: str, folder) -> dict:
        """Write the loaded model in `fmt` into `folder`: what export.json records (files, usage,
        notes). The default: the keras-hub task's own preset (BERT, BART)."""
        from desktop_llm.core.models import lora, task_preset

        if run.config.training.lora_rank:  # plain weights for keras-hub: the LoRA factors folded in
            import dataclasses

            shape = dataclasses.replace(run.config.model, vocabulary_size=model.backbone.vocabulary_size, dropout=0.0)
            model = lora.merged(model, lambda: self.build(shape))
        return task_preset.write(model, tok, folder)

    def attention_maps(self, model, tok, text: str, kind: str = "self"):
        """Attention maps of `kind` (one of `attention_kinds`) for `text`: by default a GPT's or an
        encoder's self-attention, found by the model's backbone (core.inspection)."""
        from desktop_llm.core import inspection

        return inspection.inspect_text(model, tok, text, kind)

    def estimate(self, mcfg, batch_size: int = 12, cfg=None):
        """Parameters, FLOPs per token and training memory of this family's model in shape `mcfg`
        (`cfg`: the run's whole config where known, e.g. a classifier's base). A GPT's by default."""
        from desktop_llm.core.config import estimate

        return estimate(mcfg, batch_size)

    def build(self, mcfg, seed: int | None = None):
        raise NotImplementedError

    lora = False  # `--lora-rank N` fine-tunes its keras-hub backbone with LoRA (core/models/lora.py)
    lora_embeddings = False  # and keeps the token embedding trainable (it adds tokens of its own)

    def build_for_run(self, run, cfg, mcfg, seed: int | None = None):
        """The model of this run (a family may need more than the shape: the classes, the base);
        with LoRA where the run asks for it (before any weights load: a checkpoint holds the factors)."""
        model = self.build(mcfg, seed=seed)
        if cfg.training.lora_rank:
            from desktop_llm.core.models import lora

            lora.enable(model, cfg.training.lora_rank, embeddings_trainable=self.lora_embeddings)
        return model

    def initialise(self, model, cfg, mcfg, emit) -> None:
        """Set the weights a fresh run starts from (a fine-tune: its base run's)."""

    def set_frozen(self, model, frozen: bool) -> None:
        """Freeze or thaw the pretrained part (`training.freeze_steps`); nothing by default."""

    probes = False  # runs the fixed probe at every evaluation (core/probes.py: the Learning page)
    timeline_cells = "greedy continuations"  # what the learning timeline shows of each prompt

    def prober(self, model, jit_compile: bool = False):
        """What runs the fixed probe on this family's model (core/probes.Prober or its own kind),
        where `probes` is set."""
        raise NotImplementedError(f"The {self.name} family has no probes.")

    def probe_tokens(self, data, tok):
        """The validation token ids the probe's window, windows and repeated sequence come from."""
        return data.val

    probe_prompts_origin = "the first words of validation lines"  # where `probe_prompts` takes them from

    def probe_prompts(self, data) -> list[str] | None:
        """The timeline's default prompts, or None: the first words of validation lines."""
        return None

    def probe_extra(self, data) -> dict:
        """What else the family's prober reads from the run's probe (a classifier's classes)."""
        return {}

    def layout_map(self, mesh, mcfg):
        """How its weights shard over `mesh`'s "model" axis (a keras.distribution.LayoutMap), or
        None: this family's model is not sharded yet (`--model-parallel` is refused for it)."""
        return

    def refuse_unsharded(self, model_parallel: int) -> None:
        """One line, before a run exists (CLI, Train page), where `--model-parallel` meets a family
        with no layout of its weights."""
        from desktop_llm.core.config import ConfigError

        if model_parallel > 1 and type(self).layout_map is Family.layout_map:
            raise ConfigError(f"A {self.name.replace('_', ' ')} model is not sharded yet (a GPT's is): leave out "
                              "--model-parallel (the Train page's Model split).")

    baseline_metric = "loss"  # what the verdict against the baselines compares (lower is better)
    selection_metric = "loss"  # what picks the "best" checkpoint: the loss, or an evaluation's score

    def baselines(self, data, tok) -> dict | None:
        """What the model must beat on its own split, made once with its data (core/baselines.py):
        {"figures": {name: {"loss": …, "bits_per_byte": …}}, "bytes_per_token": …,
        "chars_per_token": …}, or None. By default, a language model's: unigram, bigram and
        trigram models of its tokens."""
        from desktop_llm.core.baselines import bits_per_byte, bytes_per_token, chars_per_token, ngram_losses

        per = bytes_per_token(tok, data.val)
        losses = ngram_losses(data.train, data.val, tok.vocabulary_size)
        return {"figures": {name: {"loss": loss, "bits_per_byte": bits_per_byte(loss, per)}
                            for name, loss in losses.items()}, "bytes_per_token": per,
                "chars_per_token": chars_per_token(tok, data.val)}

    def eval_extras(self, ctx) -> dict:
        """More fields for each evaluation event (a classifier's macro-F1 and confusion matrix)."""
        return {}

    def compile_args(self) -> dict:
        """Loss and metrics for `model.compile`: cross-entropy over logits, and accuracy."""
        import keras

        return {"loss": keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                "metrics": [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]}

    token_windows = False  # its training batches are `data.train_batch`'s windows of a token split

    def train_batches(self, data, start_step: int, max_steps: int, batch: int, T: int, seed: int,
                      vocabulary: int):
        """NumPy batches for steps start_step.. and 1024 beyond (deterministic per step: resuming
        repeats them); each runner feeds them to its backend (core/runners)."""
        for step in range(start_step, max_steps + 1024):
            yield data.train_batch(step, batch, T, seed)

    def val_arrays(self, data, n_batches: int, batch: int, T: int, vocabulary: int) -> tuple:
        """The validation set as NumPy arrays (inputs, targets[, weights]), the same at every evaluation."""
        return data.val_batches(n_batches, batch, T)

    def sample(self, ctx) -> str:
        """Text shown with each evaluation (a generated continuation, filled masks...)."""
        return ""


def weighted_token_loss() -> dict:
    """`compile` arguments for batches whose third element weighs each target token (a translator's
    padding, a chat model's non-reply tokens weigh 0): cross-entropy and accuracy averaged over
    the tokens that count, not over every position (Keras' default divides by all of them)."""
    import keras

    return {"loss": keras.losses.SparseCategoricalCrossentropy(from_logits=True, reduction="mean_with_sample_weight"),
            "weighted_metrics": [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]}


# A run started from a base reads its text with the base's tokenizer: above this share of unknown
# tokens it is refused unless asked (`--accept-unknown`); above the first it warns. One rule for
# every family that starts from a base.
UNKNOWN_WARNED, UNKNOWN_REFUSED = 0.005, 0.25


def unreadable_warning(share: float) -> str | None:
    """The warning for a text a little of which the base cannot read (below the refusal)."""
    if share <= UNKNOWN_WARNED:
        return None
    return (f"{share:.1%} of the text is unknown to the base run's tokenizer: the model does not see those "
            "characters.")


def refuse_unreadable(share: float, accept: bool) -> None:
    """A base that cannot read the text: a Chinese character model under English texts sees only
    the spaces (and a classifier on it still reported "83% accuracy" from word lengths)."""
    from desktop_llm.core.config import ConfigError

    if share > UNKNOWN_REFUSED and not accept:
        raise ConfigError(f"{share:.0%} of this text is unknown to the base run's tokenizer: the model would "
                          "not see it. Start from a base trained on text like this one (or train from scratch); "
                          "to go on anyway: --accept-unknown.")
