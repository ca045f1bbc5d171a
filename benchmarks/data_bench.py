"""Loading the bundled MNIST: the cached load against decompressing the IDX files every time."""

from __future__ import annotations

import time

from mnistlab import data


def _best(fn, repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def run() -> list[dict]:
    data.load()  # make sure the cache entry exists
    cached = _best(lambda: data.load())
    plain = _best(lambda: data.load(use_cache=False), repeat=2)
    return [
        {
            "what": "load bundled MNIST (70,000 images)",
            "cached_s": cached,
            "decompress_s": plain,
            "speedup": plain / cached,
            "target_s": 1.0,
            "meets_target": cached <= 1.0,
        }
    ]


if __name__ == "__main__":
    for row in run():
        print(row)
