"""Text generation that streams: prefill the key/value cache once, then compiled loops that each
decode a few tokens (model step + keras-hub sampler inside one XLA while loop) and hand them out
one by one. The number of tokens per call adapts so that a call takes about `CALL_SECONDS`: a
small model gets long runs per call (the host round trip per token was most of its cost), a big
one gets one token per call, so text still appears token by token and Stop answers quickly.

Shapes are fixed to the model's context length and the loop count is a tensor, so requests of any
prompt length reuse the same compiled functions (no retracing). When the window is full, the
oldest half is dropped and the cache is rebuilt from the rest.

Each sampler setting (temperature, top-k, top-p) is its own set of compiled functions, kept for
the Generator's life: keras-hub's samplers hold them as Python numbers. TensorFlow warns of
"retracing" by the fifth setting; that compile is the design, not a mistake, so that one warning
is filtered (`_quiet_retracing`), and the oldest settings are dropped past `SETTINGS_KEPT`.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np

from desktop_llm.core.config import ConfigError

MAX_TOKENS_PER_CALL = 32  # the compiled loop's output buffer; the count per call is a tensor <= this
CALL_SECONDS = 0.02  # aim per compiled call: well under a 20 Hz paint interval
SETTINGS_KEPT = 8  # sampler settings whose compiled functions a Generator keeps


class _NoRetracingWarning(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "triggered tf.function retracing" not in record.getMessage()


def _quiet_retracing() -> None:
    """Drop TensorFlow's retracing warning (once per process; see the module docstring)."""
    tf_logger = logging.getLogger("tensorflow")
    if not any(isinstance(f, _NoRetracingWarning) for f in tf_logger.filters):
        tf_logger.addFilter(_NoRetracingWarning())


class SamplingError(ConfigError):
    """A sampling setting out of its range (the command line prints it as `error: ...`)."""


@dataclass(frozen=True)
class SamplingConfig:
    max_new_tokens: int = 200
    temperature: float = 0.8  # 0: greedy
    top_k: int = 0  # 0: off
    top_p: float = 1.0  # 1: off
    seed: int | None = None
    stop: tuple[str, ...] = ()

    def validate(self) -> None:
        """The one place sampling settings are checked (command line, GUI, library): raises
        SamplingError with a one-line message naming the setting and its allowed range.
        A top-k above the vocabulary size is allowed: it means the whole vocabulary."""
        def whole(v) -> bool:
            return isinstance(v, (int, np.integer)) and not isinstance(v, bool)

        def number(v) -> bool:
            return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool) \
                and math.isfinite(v)

        if not whole(self.max_new_tokens) or self.max_new_tokens < 1:
            raise SamplingError(f"Max tokens must be a whole number of at least 1 (got {self.max_new_tokens}).")
        if not number(self.temperature) or self.temperature < 0:
            raise SamplingError(f"The temperature must be 0 or more, where 0 is greedy (got {self.temperature}).")
        if not whole(self.top_k) or self.top_k < 0:
            raise SamplingError(f"Top-k must be a whole number, 0 or more, where 0 is off (got {self.top_k}).")
        if not number(self.top_p) or not 0 < self.top_p <= 1:
            raise SamplingError(f"Top-p must be more than 0 and at most 1, where 1 is off (got {self.top_p}).")
        if self.seed is not None and (not whole(self.seed) or not 0 <= self.seed < 2**31):
            raise SamplingError(f"The seed must be a whole number from 0 to {2**31 - 1} (got {self.seed}).")
        if isinstance(self.stop, str) or not all(isinstance(s, str) for s in self.stop):
            raise SamplingError("Stop sequences must be a list of texts.")


@dataclass
class GeneratedToken:
    id: int
    text: str  # the new text this token adds (may be "" while a character is incomplete)
    probability: float
    index: int


@dataclass
class GenerationResult:
    text: str
    tokens: list[GeneratedToken] = field(default_factory=list)
    stopped_by: str = ""  # "", "length", "stop:<seq>", "cancelled"
    seconds: float = 0.0
    first_token_seconds: float = 0.0

    @property
    def tokens_per_second(self) -> float:
        """The decoding rate: tokens after the first over the time after it. The first token's wait
        (compiling the loop the first time, reading the prompt) is `first_token_seconds`, apart:
        counted in, 200 tokens read as 31 tokens/s where 1,000 read as 244."""
        n, after = len(self.tokens), self.seconds - self.first_token_seconds
        if n > 1 and after > 0:
            return (n - 1) / after
        return n / self.seconds if self.seconds else 0.0


def make_sampler(cfg: SamplingConfig):
    import keras_hub

    seed = cfg.seed
    if cfg.temperature == 0:
        return keras_hub.samplers.GreedySampler()
    if cfg.top_p < 1.0:
        return keras_hub.samplers.TopPSampler(p=cfg.top_p, k=cfg.top_k or None, seed=seed,
                                              temperature=cfg.temperature)
    if cfg.top_k > 0:
        return keras_hub.samplers.TopKSampler(k=cfg.top_k, seed=seed, temperature=cfg.temperature)
    return keras_hub.samplers.RandomSampler(seed=seed, temperature=cfg.temperature)


class Generator:
    """Streams tokens from a GPTCausalLM with a tokenizer."""

    def __init__(self, model, tokenizer, jit_compile: bool = True):
        self.model = model
        self.tokenizer = tokenizer
        self.length = int(model.backbone.max_sequence_length)
        self.vocabulary_size = int(model.backbone.vocabulary_size)  # the logits' width
        self.jit_compile = jit_compile
        self._sampled: dict = {}

    # --- model pieces, compiled inside `_SampledSteps` (fixed shapes: (1, length) and (1, 1)) ---
    def _prefill_fn(self, ids, n):
        ops = _ops()
        cache = self.model.empty_cache(1, self.length)
        logits, _, cache = self.model.call_with_cache(ids, cache, 0)
        return ops.cast(ops.take(logits[0], n - 1, axis=0), "float32"), cache  # take: no per-n recompiles

    def _step_fn(self, token, cache, index):
        logits, _, cache = self.model.call_with_cache(token, cache, index)
        return _ops().cast(logits[0, 0], "float32"), cache

    def _full_fn(self, ids, n):
        ops = _ops()
        logits = self.model(ids, training=False)
        return ops.cast(ops.take(logits[0], n - 1, axis=0), "float32")

    def _padded(self, ids: Sequence[int]) -> np.ndarray:
        out = np.zeros((1, self.length), dtype=np.int32)
        out[0, : len(ids)] = ids
        return out

    def next_tokens(self, prompt: str, k: int = 10) -> list[tuple[str, float]]:
        """The k likeliest next tokens after `prompt` (its last `length` tokens), with their
        probabilities at temperature 1: what the model believes before any sampler reshapes it.
        Placeholders (<unk>, padding) are left out, as sampling never picks them."""
        ids = self.prompt_ids(prompt)[-self.length:]
        logits = np.asarray(_ops().convert_to_numpy(self._full_fn(self._padded(ids), len(ids))),
                            np.float64)[: self.vocabulary_size]
        for i in getattr(self.tokenizer, "placeholder_ids", []):
            if 0 <= i < len(logits):
                logits[i] = -np.inf
        p = np.exp(logits - logits.max())
        p /= p.sum()
        best = np.argsort(-p)[: max(1, k)]
        return [(self.tokenizer.token_text(int(i)), float(p[i])) for i in best]

    def prompt_ids(self, prompt: str) -> list[int]:
        ids = self.tokenizer.encode(prompt) if prompt else []
        if not ids:
            ids = self.tokenizer.encode("\n") or [1]
        return ids

    def stream(self, prompt: str | Sequence[int], cfg: SamplingConfig = SamplingConfig(),
               use_cache: bool = True, cancelled: Callable[[], bool] | None = None,
               stop_ids: Sequence[int] = ()) -> Iterator[GeneratedToken]:
        """Yield tokens as they are produced. Stops at max_new_tokens, a stop sequence, or after
        yielding one of `stop_ids` (a chat template's end of turn)."""
        cfg.validate()
        ids = list(prompt) if not isinstance(prompt, str) else self.prompt_ids(prompt)
        fns = self._sampling(cfg)
        decoder = self.tokenizer.stream_decoder()
        window = ids[-(self.length - 1):] if len(ids) >= self.length else list(ids)
        tok, p, cache = fns.start(self._padded(window), len(window), use_cache)
        produced = [(int(tok), float(p))]
        per_call = 1  # tokens per compiled call, adapted to the measured time per token
        text = ""
        i = 0
        while True:
            for token_id, prob in produced:
                if cancelled and cancelled():
                    return
                if token_id in stop_ids:
                    yield GeneratedToken(token_id, "", prob, i)
                    return
                piece = decoder.feed(token_id)
                text += piece
                yield GeneratedToken(token_id, piece, prob, i)
                i += 1
                if i >= cfg.max_new_tokens or (cfg.stop and any(s and s in text for s in cfg.stop)):
                    return
                window.append(token_id)
            if len(window) > self.length:
                # Context full: keep the newest half and rebuild the cache from it.
                window = window[-(self.length // 2):]
                tok, p, cache = fns.start(self._padded(window), len(window), use_cache)
                produced = [(int(tok), float(p))]
                continue
            # The last token of `window` is not fed yet; each loop turn feeds one and samples the next.
            count = max(1, min(per_call, cfg.max_new_tokens - i, self.length - len(window) + 1))
            t0 = time.perf_counter()
            if use_cache:
                toks, probs, cache = fns.decode(window[-1], cache, len(window) - 1, count)
            else:
                toks, probs = fns.recompute(self._padded(window), len(window), count)
            toks, probs = np.asarray(toks)[:count], np.asarray(probs)[:count]
            per_token = (time.perf_counter() - t0) / count
            per_call = int(min(MAX_TOKENS_PER_CALL, max(1, CALL_SECONDS / max(per_token, 1e-6))))
            produced = list(zip(toks.tolist(), probs.tolist()))

    def _sampling(self, cfg: SamplingConfig) -> _SampledSteps:
        """Compiled functions that also sample (no eager sampler ops between tokens),
        cached per sampler setting; the seed is reset per request without recompiling."""
        top_k = min(cfg.top_k, self.vocabulary_size)  # as nanoGPT: a k beyond the vocabulary is all of it
        key = (cfg.temperature, top_k, cfg.top_p)
        fns = self._sampled.pop(key, None)
        if fns is None:
            from desktop_llm.core.backend import current

            if current().name != "tensorflow":
                fns = _HostSampledSteps(self, SamplingConfig(temperature=cfg.temperature, top_k=top_k,
                                                             top_p=cfg.top_p))
            else:
                _quiet_retracing()
                fns = _SampledSteps(self, make_sampler(SamplingConfig(
                    temperature=cfg.temperature, top_k=top_k, top_p=cfg.top_p, seed=0)))
        self._sampled[key] = fns  # the most recent last
        while len(self._sampled) > SETTINGS_KEPT:
            self._sampled.pop(next(iter(self._sampled)))
        fns.reseed(cfg.seed)
        return fns

    def generate(self, prompt: str | Sequence[int], cfg: SamplingConfig = SamplingConfig(),
                 use_cache: bool = True, on_token: Callable[[GeneratedToken], None] | None = None,
                 cancelled: Callable[[], bool] | None = None, stop_ids: Sequence[int] = ()) -> GenerationResult:
        t0 = time.perf_counter()
        result = GenerationResult("")
        for tok in self.stream(prompt, cfg, use_cache, cancelled, stop_ids):
            if tok.id in stop_ids:  # the end of the turn: no text, not a token of the reply
                result.stopped_by = "end"
                break
            if not result.tokens:
                result.first_token_seconds = time.perf_counter() - t0
            result.tokens.append(tok)
            result.text += tok.text
            if on_token:
                on_token(tok)
        result.seconds = time.perf_counter() - t0
        if cancelled and cancelled():
            result.stopped_by = "cancelled"
        for s in cfg.stop:
            if s and s in result.text:
                result.text = result.text[: result.text.index(s)]
                result.stopped_by = f"stop:{s}"
                break
        else:
            if not result.stopped_by:
                result.stopped_by = "length"
        return result


class _SampledSteps:
    """Compiled functions for one keras-hub sampler: prefill+sample (the first token), a decode loop
    over the cache, and a loop that recomputes the whole window for every token (the reference the
    cache is measured against, and the path for models without one)."""

    def __init__(self, gen: Generator, sampler):
        import tensorflow as tf

        self.gen, self.sampler = gen, sampler
        banned = [i for i in getattr(gen.tokenizer, "placeholder_ids", []) if 0 <= i < gen.vocabulary_size]
        self.banned = None  # added to the logits: placeholders (<unk>, padding) are never sampled
        if banned:
            bias = np.zeros(gen.vocabulary_size, np.float32)
            bias[banned] = -1e9
            self.banned = tf.constant(bias)
        self._prefill = tf.function(self._prefill_fn, jit_compile=gen.jit_compile)
        self._decode = tf.function(self._decode_fn, jit_compile=gen.jit_compile)
        self._recompute = tf.function(self._recompute_fn, jit_compile=gen.jit_compile)

    def functions(self) -> tuple:
        return self._prefill, self._decode, self._recompute

    def reseed(self, seed: int | None) -> None:
        state = getattr(getattr(self.sampler, "seed_generator", None), "state", None)
        if state is not None:
            seed = int(np.random.SeedSequence().entropy % 2**31) if seed is None else int(seed)
            state.assign(np.array([seed, 0], dtype=state.dtype))

    def _sample(self, logits):
        import tensorflow as tf

        if self.banned is not None:
            logits = logits + self.banned
        probs = self.sampler.compute_probabilities(logits[None, :])  # (1, vocab)
        tok = tf.cast(tf.reshape(self.sampler.get_next_token(probs), ()), tf.int32)
        return tok, tf.gather(probs[0], tok)

    def _prefill_fn(self, ids, n):
        logits, cache = self.gen._prefill_fn(ids, n)
        return (*self._sample(logits), cache)

    def _loop(self, count, body, state):
        """Run `body` `count` times (a tensor: no retracing), collecting one (token, p) per turn."""
        import tensorflow as tf

        def turn(i, toks, probs, state):
            tok, p, state = body(i, state)
            return i + 1, toks.write(i, tok), probs.write(i, p), state

        toks = tf.TensorArray(tf.int32, size=MAX_TOKENS_PER_CALL)
        probs = tf.TensorArray(tf.float32, size=MAX_TOKENS_PER_CALL)
        _, toks, probs, state = tf.while_loop(lambda i, *_: i < count, turn, (tf.constant(0), toks, probs, state),
                                              maximum_iterations=MAX_TOKENS_PER_CALL)
        return toks.stack(), probs.stack(), state

    def _decode_fn(self, token, cache, index, count):
        import tensorflow as tf

        def body(i, state):
            token, cache = state
            logits, cache = self.gen._step_fn(tf.reshape(token, (1, 1)), cache, index + i)
            tok, p = self._sample(logits)
            return tok, p, (tok, cache)

        toks, probs, (_, cache) = self._loop(count, body, (token, cache))
        return toks, probs, cache

    def _recompute_fn(self, ids, n, count):
        import tensorflow as tf

        def body(i, ids):
            tok, p = self._sample(self.gen._full_fn(ids, n + i))
            at = tf.minimum(n + i, self.gen.length - 1)  # the last turn's token is never fed back
            return tok, p, tf.tensor_scatter_nd_update(ids, [[0, at]], [tok])

        toks, probs, _ = self._loop(count, body, ids)
        return toks, probs

    def start(self, ids, n: int, use_cache: bool):
        """The first token for a window of `n` ids: (token, probability, cache or None)."""
        import tensorflow as tf

        n = tf.constant(n, tf.int32)  # a tensor, not a Python int: no retracing per prompt length
        if use_cache:
            return self._prefill(ids, n)
        toks, probs = self._recompute(ids, n, tf.constant(1))
        return toks[0], probs[0], None

    def decode(self, token: int, cache, index: int, count: int):
        import tensorflow as tf

        return self._decode(tf.constant(token, tf.int32), cache, tf.constant(index, tf.int32),
                            tf.constant(count, tf.int32))

    def recompute(self, ids, n: int, count: int):
        import tensorflow as tf

        return self._recompute(ids, tf.constant(n, tf.int32), tf.constant(count, tf.int32))


class _HostSampledSteps:
    """`_SampledSteps` for the JAX and PyTorch backends: the model's prefill, cached step and full
    window compiled by the backend's runner (core/runners `compiled`), one token per call, and the
    sampler on the host in NumPy (the logits of one position: microseconds). TensorFlow keeps
    `_SampledSteps`, whose loop over tokens and sampler are inside its compiled program."""

    def __init__(self, gen: Generator, cfg: SamplingConfig):
        from desktop_llm.core import runners

        self.gen, self.cfg = gen, cfg
        self.rng = np.random.default_rng(cfg.seed)
        self.banned = [i for i in getattr(gen.tokenizer, "placeholder_ids", []) if 0 <= i < gen.vocabulary_size]
        runner = runners.get()
        self._prefill = runner.compiled(gen.model, gen._prefill_fn, gen.jit_compile)
        self._step = runner.compiled(gen.model, gen._step_fn, gen.jit_compile)
        self._full = runner.compiled(gen.model, gen._full_fn, gen.jit_compile)

    def reseed(self, seed: int | None) -> None:
        self.rng = np.random.default_rng(seed)

    def _sample(self, logits) -> tuple[int, float]:
        """One token from a position's logits, as keras-hub's samplers choose it (greedy, top-k,
        top-p, temperature), and its probability under the sampler."""
        x = np.asarray(_ops().convert_to_numpy(logits), np.float64)
        x[self.banned] = -np.inf
        cfg = self.cfg
        if cfg.temperature == 0:
            p = np.exp(x - x.max())
            p /= p.sum()
            t = int(np.argmax(x))
            return t, float(p[t])
        x = x / cfg.temperature
        p = np.exp(x - x.max())
        p /= p.sum()
        order = np.argsort(-p)
        keep = np.zeros_like(p, bool)
        top = order[: cfg.top_k] if cfg.top_k else order
        if cfg.top_p < 1.0:
            cum = np.cumsum(p[top])
            top = top[: int(np.searchsorted(cum, cfg.top_p)) + 1]
        keep[top] = True
        p = np.where(keep, p, 0.0)
        p /= p.sum()
        t = int(self.rng.choice(len(p), p=p))
        return t, float(p[t])

    def start(self, ids, n: int, use_cache: bool):
        n_ = np.asarray(n, np.int32)
        if use_cache:
            logits, cache = self._prefill(ids, n_)
            return (*self._sample(logits), cache)
        return (*self._sample(self._full(ids, n_)), None)

    def decode(self, token: int, cache, index: int, count: int):
        toks, probs = [], []
        for i in range(count):
            logits, cache = self._step(np.full((1, 1), token, np.int32), cache, np.asarray(index + i, np.int32))
            token, p = self._sample(logits)
            toks.append(token)
            probs.append(p)
        return np.asarray(toks), np.asarray(probs), cache

    def recompute(self, ids, n: int, count: int):
        ids, toks, probs = np.array(ids), [], []
        for i in range(count):
            token, p = self._sample(self._full(ids, np.asarray(n + i, np.int32)))
            ids[0, min(n + i, self.gen.length - 1)] = token
            toks.append(token)
            probs.append(p)
        return np.asarray(toks), np.asarray(probs)


def _ops():
    import keras

    return keras.ops


class ChatSession:
    """A chat with a run, trimmed from the oldest turns so that prompt + reply fit in the context.

    A chat model's tokenizer carries its template (core/chat_template.py): the conversation is
    written with it, a system prompt leads, and a reply ends where the model writes <|end|>. A
    plain language model gets a "User: … / Bot: …" transcript to continue (`templated` False), which
    chats only as well as its training text allows and stops at the end of a line."""

    def __init__(self, generator: Generator, user_prefix: str = "User: ", bot_prefix: str = "Bot: ",
                 system: str = ""):
        self.gen = generator
        self.user_prefix = user_prefix
        self.bot_prefix = bot_prefix
        self.system = system  # a chat model's system prompt (a transcript has none)
        self.templated = bool(getattr(generator.tokenizer, "applies_template", False))
        self.history: list[tuple[str, str]] = []  # (role, text): "user" and "assistant" in turn
        self.dropped = 0  # the oldest turns the last prompt left out: the context was full
        self.stopped_by = ""  # how the last reply ended: "end" (the model ended its turn), "length"...

    def prompt(self, reserve: int) -> list[int]:
        budget = max(1, self.gen.length - reserve)
        if self.templated:
            lead = [("system", self.system)] if self.system.strip() else []
            kept = list(self.history)
            ids, _ = self.gen.tokenizer.render(lead + kept, reply=True)
            while len(ids) > budget and len(kept) > 1:
                kept = kept[2:] if len(kept) > 2 else kept[1:]  # a whole exchange at a time
                ids, _ = self.gen.tokenizer.render(lead + kept, reply=True)
            self.dropped = len(self.history) - len(kept)
            return ids[-budget:]
        turns: list[list[int]] = []
        for role, text in reversed(self.history):
            prefix = self.user_prefix if role == "user" else self.bot_prefix
            ids = self.gen.tokenizer.encode(f"{prefix}{text}\n")
            if sum(map(len, turns)) + len(ids) > budget and turns:
                break
            turns.insert(0, ids)
        self.dropped = len(self.history) - len(turns)
        ids = [i for t in turns for i in t] + self.gen.tokenizer.encode(self.bot_prefix)
        return ids[-budget:]

    def reply(self, message: str, cfg: SamplingConfig = SamplingConfig(),
              on_token: Callable[[GeneratedToken], None] | None = None,
              cancelled: Callable[[], bool] | None = None) -> str:
        self.history.append(("user", message))
        return self.answer(cfg, on_token, cancelled)

    def regenerate(self, cfg: SamplingConfig = SamplingConfig(),
                   on_token: Callable[[GeneratedToken], None] | None = None,
                   cancelled: Callable[[], bool] | None = None) -> str:
        """Another reply to the last message, in place of the last one."""
        if self.history and self.history[-1][0] == "assistant":
            self.history.pop()
        if not self.history:
            raise SamplingError("Nothing to answer yet: say something first.")
        return self.answer(cfg, on_token, cancelled)

    def answer(self, cfg: SamplingConfig = SamplingConfig(),
               on_token: Callable[[GeneratedToken], None] | None = None,
               cancelled: Callable[[], bool] | None = None) -> str:
        """The model's reply to the history as it stands, appended to it."""
        reserve = min(cfg.max_new_tokens, self.gen.length // 2)
        stop = tuple(cfg.stop) if self.templated else tuple(cfg.stop) + ("\n" + self.user_prefix.strip(), "\n")
        cfg = SamplingConfig(cfg.max_new_tokens, cfg.temperature, cfg.top_k, cfg.top_p, cfg.seed, stop)
        end = (self.gen.tokenizer.end_id,) if self.templated else ()
        result = self.gen.generate(self.prompt(reserve), cfg, on_token=on_token, cancelled=cancelled, stop_ids=end)
        self.stopped_by = result.stopped_by
        text = result.text.strip()
        self.history.append(("assistant", text))
        return text
