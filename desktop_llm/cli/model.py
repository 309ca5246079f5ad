"""`desktop-llm model info` and `desktop-llm devices`: a model's size and the machine's devices."""

from __future__ import annotations

from dataclasses import replace

from desktop_llm.cli.common import check_flags, out


def model_args(sp) -> None:
    """The model-shape flags (`model info`, `train`)."""
    from desktop_llm.core.config import PRESETS

    sp.add_argument("--preset", choices=list(PRESETS), help="model size to start from (the options below override it)")
    sp.add_argument("--layers", type=int, help="number of Transformer blocks")
    sp.add_argument("--heads", type=int, help="attention heads per block")
    sp.add_argument("--width", type=int, help="hidden (embedding) width")
    sp.add_argument("--ffn", type=int, help="feed-forward width (default 4 x width)")
    sp.add_argument("--context", type=int, help="context length in tokens")
    sp.add_argument("--dropout", type=float, help="dropout rate, 0 to below 1")
    sp.add_argument("--untied", action="store_true", help="separate output projection")


def model_config(args, base=None):
    from desktop_llm.core.config import ModelConfig, preset

    m = preset(args.preset) if args.preset else (base or ModelConfig())
    over = {}
    for name, attr in (("layers", "num_layers"), ("heads", "num_heads"), ("width", "hidden_dim"),
                       ("ffn", "intermediate_dim"), ("context", "sequence_length"),
                       ("dropout", "dropout")):
        v = getattr(args, name, None)
        if v is not None:
            over[attr] = v
    if getattr(args, "untied", False):
        over["tie_embeddings"] = False
    if over.get("hidden_dim") and "intermediate_dim" not in over:
        over["intermediate_dim"] = 4 * over["hidden_dim"]
    return replace(m, **over)


def cmd_model_info(args) -> int:
    from desktop_llm.core.config import human_bytes, human_count
    from desktop_llm.core.models import get_family

    check_flags(args)
    m = replace(model_config(args), vocabulary_size=args.vocab_size)
    m.validate()
    family = get_family(args.family)
    e = family.estimate(m, args.batch_size)
    if args.json:
        out({"model": m.__dict__, **e.to_dict()})
        return 0
    print(f"{family.title}: layers {m.num_layers}, heads {m.num_heads}, width {m.hidden_dim}, feed-forward "
          f"{m.intermediate_dim}, context {m.sequence_length}, vocabulary {m.vocabulary_size}")
    print(f"parameters:        {e.parameters:,} ({human_count(e.parameters)})")
    print(f"FLOPs per token:   {e.flops_per_token:,} (training: 6 per parameter + attention over the context)")
    print(f"weights:           {human_bytes(e.weights_bytes)}")
    print(f"training memory:   ~{human_bytes(e.training_bytes)} at batch {args.batch_size}")
    return 0


def cmd_devices(args) -> int:
    from desktop_llm.core.device import describe
    from desktop_llm.core.runners import devices

    devs = devices()
    if args.json:
        out({"devices": devs, "summary": describe(devs)})
    else:
        for d in devs:
            print(f"{d['kind']}: {d['name']}")
        print(f"training will use: {describe(devs)}")
    return 0



def add_parser(sub) -> None:
    from desktop_llm.core.config import DEFAULT_FAMILY
    from desktop_llm.core.models import FAMILY_NAMES

    m = sub.add_parser("model", help="model sizes").add_subparsers(dest="action", required=True)
    mi = m.add_parser("info", help="parameters, FLOPs and memory of a configuration")
    model_args(mi)
    mi.add_argument("--vocab-size", type=int, default=65, help="vocabulary size (default %(default)s)")
    mi.add_argument("--batch-size", type=int, default=12,
                    help="batch size for the memory estimate (default %(default)s)")
    mi.add_argument("--family", choices=list(FAMILY_NAMES), default=DEFAULT_FAMILY,
                    help="whose model: its own architecture's figures (default %(default)s)")
    mi.add_argument("--json", action="store_true", help="print one JSON object")
    mi.set_defaults(func=cmd_model_info)

    d = sub.add_parser("devices", help="the devices TensorFlow sees")
    d.add_argument("--json", action="store_true", help="print one JSON object")
    d.set_defaults(func=cmd_devices)
