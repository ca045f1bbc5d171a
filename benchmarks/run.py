"""`make bench`: every speed figure beside the same work done the plain way, with the ratio.

Each benchmarks/*_bench.py module exposes ``run() -> list[dict]``; this script runs them in turn and
prints one table. Figures depend on the machine, so the table starts with it: the CPU model, the
BLAS libraries loaded and the kernel each one runs, with a warning for any that fell back to a
generic kernel (issue 15: faiss-cpu's bundled OpenBLAS ran "Prescott" on an Intel Xeon, 6.7x
slower than the GEMM floor).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import sys
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
MODULES = [
    "data_bench", "nn_bench", "judge_bench", "gen_bench", "flow_bench", "train_bench",
    "sweep_bench",
]  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("only", nargs="*", help="run only these benchmarks (e.g. nn_bench)")
    parser.add_argument("--json", type=Path, help="also write the rows to this JSON file")
    args = parser.parse_args()
    torch.set_num_threads(min(2, os.cpu_count() or 1))
    sys.path.insert(0, str(HERE))
    rows = machine()
    print("== machine")
    for row in rows:
        print("   " + "  ".join(f"{k}={_fmt(v)}" for k, v in row.items()), flush=True)
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


# OpenBLAS and BLIS kernels for no particular CPU, or for CPUs without AVX: on a CPU with AVX2 they
# mean the library did not recognise it and fell back.
GENERIC_KERNELS = {
    "generic", "prescott", "katmai", "coppermine", "northwood", "banias", "core2", "penryn",
    "dunnington", "nehalem", "atom", "opteron", "opteron_sse3", "barcelona", "bobcat",
}  # fmt: skip


def machine() -> list[dict]:
    """The CPU, torch's BLAS and every BLAS library loaded (threadpoolctl), one row each."""
    import numpy  # noqa: F401  (the libraries the benchmarks use, loaded so as to be listed)
    import scipy.linalg  # noqa: F401
    import threadpoolctl

    from mnistlab import neighbors

    with contextlib.suppress(ImportError):
        import faiss  # noqa: F401
    config = torch.__config__.show()
    blas = next((w.split("=")[1].rstrip(",") for w in config.split() if "BLAS_INFO=" in w), "?")
    capability = next(
        (line.split(":")[1].strip() for line in config.splitlines() if "CPU capability" in line),
        "?",
    )
    rows = [
        {
            "what": "cpu",
            "model": neighbors.cpu_model(),
            "cores": os.cpu_count(),
            "torch_blas": f"{blas} ({capability}, linked into torch)",
        }
    ]
    for lib in threadpoolctl.threadpool_info():
        if lib["user_api"] != "blas":
            continue
        row = {
            "what": "blas",
            "library": lib["internal_api"],
            "version": lib.get("version"),
            "kernel": lib.get("architecture", "-"),
            "threads": lib["num_threads"],
            "file": Path(lib["filepath"]).parent.name + "/" + Path(lib["filepath"]).name,
        }
        if str(lib.get("architecture", "")).lower() in GENERIC_KERNELS:
            row["WARNING"] = (
                f"generic fallback kernel {lib['architecture']!r}: this library does not know "
                "this CPU and runs several times below its matrix-multiply rate"
            )
        rows.append(row)
    return rows


def _fmt(v):
    return f"{v:.4g}" if isinstance(v, float) else str(v)


if __name__ == "__main__":
    raise SystemExit(main())
