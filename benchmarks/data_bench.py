"""Loading the bundled MNIST: the cached load against decompressing the IDX files every time."""

from __future__ import annotations

from timing import best  # benchmarks/ is on the path: run.py or the file as a script

from mnistlab import data


def run() -> list[dict]:
    data.load()  # make sure the cache entry exists
    cached = best(lambda: data.load(), repeat=5)
    plain = best(lambda: data.load(use_cache=False), repeat=2)
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
