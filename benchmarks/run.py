"""`make bench`: every speed figure beside the same work done the plain way, with the ratio.

Each benchmarks/*_bench.py module exposes ``run() -> list[dict]``; this script runs them in turn and
prints one table. Figures depend on the machine: the README's were measured on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
MODULES = ["data_bench", "nn_bench", "judge_bench", "gen_bench", "flow_bench", "train_bench"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("only", nargs="*", help="run only these benchmarks (e.g. nn_bench)")
    parser.add_argument("--json", type=Path, help="also write the rows to this JSON file")
    args = parser.parse_args()
    torch.set_num_threads(min(2, os.cpu_count() or 1))
    sys.path.insert(0, str(HERE))
    rows = []
    for name in args.only or MODULES:
        if not (HERE / f"{name}.py").exists():
            continue
        print(f"== {name}", flush=True)
        t0 = time.perf_counter()
        module_rows = importlib.import_module(name).run()
        for row in module_rows:
            row.setdefault("bench", name)
            print("   " + "  ".join(f"{k}={_fmt(v)}" for k, v in row.items()), flush=True)
        print(f"   ({time.perf_counter() - t0:.0f} s)", flush=True)
        rows += module_rows
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2, default=str))
    return 0


def _fmt(v):
    return f"{v:.4g}" if isinstance(v, float) else str(v)


if __name__ == "__main__":
    raise SystemExit(main())
