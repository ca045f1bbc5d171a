"""Compare the numbers of two study runs' metrics.json, timings and paths aside.

    python scripts/compare_metrics.py BEFORE/metrics.json AFTER/metrics.json [--rtol 1e-9]

Both files are flattened to their numeric leaves, each named by its last two keys (list indices
dropped), so a number that moved within the file (say, into the ``results`` envelope of schema
``mnistlab.study/2``) is still matched. Prints every number that differs, or is on one side only,
and exits 1 if there is any. Used to show that restructuring the studies kept their numbers.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections import Counter

# "ci": bootstrap intervals, new with issue 13 (not in older runs)
SKIP = {"seconds", "train_seconds", "elapsed", "path", "cached", "mnistlab", "versions", "time"}
SKIP |= {"ci", "timings"}


def leaves(obj, path=()):
    """(name, value) for every number under obj; name = the last two dict keys on its path
    (schema mnistlab.study/2's ``results`` key left out: it holds what was at the top before)."""
    if isinstance(obj, dict) and path == () and "results" in obj:
        obj = {**{k: v for k, v in obj.items() if k != "results"}, **obj["results"]}
    if isinstance(obj, dict):
        for k, v in obj.items():
            if str(k) in SKIP or "seconds" in str(k):
                continue
            yield from leaves(v, (*path, str(k)))
    elif isinstance(obj, list):
        for v in obj:
            yield from leaves(v, path)
    elif isinstance(obj, bool | int | float):
        yield "/".join(path[-2:]), float(obj)


def _key(value: float, rtol: float) -> float:
    if math.isnan(value) or value == 0 or rtol == 0:
        return value
    digits = max(0, -int(math.floor(math.log10(rtol))))
    return float(f"{value:.{min(digits, 15)}g}")


def compare(before: dict, after: dict, rtol: float = 1e-9) -> list[str]:
    a = Counter((n, _key(v, rtol)) for n, v in leaves(before))
    b = Counter((n, _key(v, rtol)) for n, v in leaves(after))
    problems = [f"only before: {n} = {v}" for (n, v), c in (a - b).items() for _ in range(c)]
    problems += [f"only after:  {n} = {v}" for (n, v), c in (b - a).items() for _ in range(c)]
    return sorted(problems, key=lambda s: s[13:])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("before")
    p.add_argument("after")
    p.add_argument("--rtol", type=float, default=1e-9, help="significant-digit tolerance")
    args = p.parse_args(argv)
    with open(args.before) as f:
        before = json.load(f)
    with open(args.after) as f:
        after = json.load(f)
    problems = compare(before, after, args.rtol)
    n = sum(1 for _ in leaves(before))
    for line in problems:
        print(line)
    print(f"{n} numbers before, {len(problems)} differences")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
