"""One module per study: generation, latent, denoising, augmentation.

Each study has a frozen config, a ``run(...)`` that returns its results as data (no files written),
and a ``write(results, out_dir)`` that renders report.html, metrics.json, CSV tables and figures.
"""

from __future__ import annotations
