"""Corpus import at scale: a folder of many tiny files, listed, sniffed and counted.

    python benchmarks/corpus_bench.py                  # 1,000,000 files (~4 min on 2 cores)
    python benchmarks/corpus_bench.py --files 100000

Prints the time to create, scan (list + sniff every file) and count (statistics), and the peak
memory after each phase. The files go to a temporary folder that is removed afterwards.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=1_000_000)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    args = ap.parse_args(argv)

    from desktop_llm.core.corpus import Corpus

    folder = Path(tempfile.mkdtemp(prefix="corpus_bench_"))
    try:
        t0 = time.perf_counter()
        per_folder = 1000
        for d in range(0, args.files, per_folder):
            sub = folder / f"{d // per_folder:04d}"
            sub.mkdir()
            for i in range(min(per_folder, args.files - d)):
                fd = os.open(sub / f"{i:04d}.txt", os.O_WRONLY | os.O_CREAT, 0o644)
                os.write(fd, b"x\n")
                os.close(fd)
        create_s, base_mb = time.perf_counter() - t0, peak_mb()
        t0 = time.perf_counter()
        corpus = Corpus(paths=[str(folder)])
        corpus.scan()
        scan_s, scan_mb = time.perf_counter() - t0, peak_mb()
        t0 = time.perf_counter()
        st = corpus.stats()
        stats_s, stats_mb = time.perf_counter() - t0, peak_mb()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    ok = sum(s.ok for s in corpus.sources)
    print(f"{args.files:,} files: created in {create_s:.0f} s; scan {scan_s:.0f} s; statistics {stats_s:.0f} s")
    print(f"listed {len(corpus.sources):,}, usable {ok:,}, characters {st.characters:,}")
    print(f"peak memory: {base_mb:.0f} MB before, {scan_mb:.0f} MB after the scan, {stats_mb:.0f} MB after statistics")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"corpus-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps({"files": args.files, "create_s": create_s, "scan_s": scan_s, "stats_s": stats_s,
                                "peak_mb": {"before": base_mb, "scan": scan_mb, "stats": stats_mb},
                                "listed": len(corpus.sources), "usable": ok}, indent=2))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
