"""What this machine actually achieves: training FLOP/s measured by the runs it has trained.

The Model page turns it into a time per step for the configuration being edited, so estimates
come from measurements on the user's own hardware, not from a datasheet. The same figure
(tokens/s x FLOPs per token) is what benchmarks/train_bench.py reports as achieved GFLOP/s.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, replace

from desktop_llm.core.config import ModelConfig, estimate
from desktop_llm.core.events import Step, parse


@dataclass(frozen=True)
class MachineSpeed:
    flops_per_second: float  # achieved training FLOP/s, median over recent runs
    runs: int  # how many runs it is measured from
    device: str

    def ms_per_step(self, m: ModelConfig, batch_size: int, family=None) -> float:
        """Predicted training step time: FLOPs per step over the measured rate (compute-bound);
        `family`: whose model (core.models; default the GPT's)."""
        shape = replace(m, vocabulary_size=max(1, m.vocabulary_size))
        flops = (family.estimate(shape, batch_size) if family is not None else estimate(shape, batch_size)).flops_per_token
        return 1000.0 * flops * batch_size * m.sequence_length / self.flops_per_second


def median_tokens_per_sec(run, least: int = 5) -> float | None:
    """A run's typical speed: the median tokens/s of its step events after the first fifth (warm-up,
    compiling), None with fewer than `least` of them. The last interval alone can be a spike (a run
    that mostly ran at 25-28k once showed 56,802)."""
    steps = [e.tokens_per_sec for e in map(parse, run.metrics()) if isinstance(e, Step) and e.tokens_per_sec]
    if len(steps) < least:
        return None
    return statistics.median(steps[len(steps) // 5:])


def flops_per_token(run) -> int | None:
    """Training FLOPs per token of a run's model (its family's estimate, at its real vocabulary)."""
    from desktop_llm.core.models import get_family
    cfg = run.config
    vocab = run.vocabulary_size() or cfg.tokenizer.vocabulary_size or 256
    try:
        return int(get_family(cfg.family).estimate(replace(cfg.model, vocabulary_size=vocab), cfg.training.batch_size,
                                                   cfg).flops_per_token)
    except Exception:  # noqa: BLE001 - a run whose base is gone has no estimate, and still a report
        return None


def run_flops_per_second(run) -> float | None:
    """Achieved FLOP/s of one run: median tokens/s after warm-up times FLOPs per token."""
    tps = median_tokens_per_sec(run)
    flops = flops_per_token(run) if tps else None
    return tps * flops if flops else None


def machine_speed(store, limit: int = 5) -> MachineSpeed | None:
    """The median achieved FLOP/s of the newest runs that trained long enough to be measured."""
    rates, device = [], ""
    for row in store.list():
        if row.get("status") not in ("completed", "stopped", "interrupted"):
            continue
        try:
            run = store.get(row["id"])
            rate = run_flops_per_second(run)
        except Exception:  # noqa: BLE001, S112 - a damaged run folder says nothing about speed
            continue
        if rate:
            rates.append(rate)
            device = device or run.status().get("device", "")
        if len(rates) >= limit:
            break
    if not rates:
        return None
    return MachineSpeed(statistics.median(rates), len(rates), device)
