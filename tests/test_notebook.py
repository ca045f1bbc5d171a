"""The notebook user: figures that show, short reprs, scikit-learn model selection, the example."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mnistlab import generators, metrics
from mnistlab.report import figures

EXAMPLE = Path(__file__).parent.parent / "examples" / "quickstart.ipynb"


def test_figures_show_themselves_as_png(small):
    fig = figures.sample_grid(small.x_test[:20], ncols=10)
    png = fig._repr_png_()
    assert png.startswith(b"\x89PNG") and len(png) > 1000


def test_scores_have_a_short_repr_and_a_table(small):
    s = metrics.Scores(
        n=10, quality=0.123456789, novelty=0.5, diversity=0.9, fid=1.23456, precision=1.0,
        recall=0.75, density=1.1, coverage=0.5, near_copy_rate=0.0, per_image={},
    )  # fmt: skip
    text = repr(s)
    assert text.startswith("Scores(n=10, quality=0.123, novelty=0.500") and "0.1234" not in text
    html = s._repr_html_()
    assert html.count("<tr>") == 2 and "<th>fid</th>" in html and "<td>1.235</td>" in html


def test_a_latent_generator_repr_names_its_model(small):
    from mnistlab import models

    ae = models.get_model("ae", latent_dim=4)
    text = repr(generators.LatentKDE(ae, bandwidth=0.3))
    assert text == "LatentKDE(bandwidth=0.3, model=<ae(latent_dim=4)>)"
    assert "Conv2d" not in text


def test_grid_search_chooses_a_bandwidth_by_held_out_likelihood(small):
    from sklearn.model_selection import GridSearchCV

    x = small.x_train[:300]
    search = GridSearchCV(generators.PixelKDE(), {"bandwidth": [0.02, 0.3, 5.0]}, cv=3).fit(x)
    # Far too narrow and far too wide both lose on held-out digits.
    assert search.best_params_ == {"bandwidth": 0.3}
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()


@pytest.mark.slow
def test_the_example_notebook_runs_from_a_clean_kernel(tmp_path):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    nb = nbformat.read(EXAMPLE, as_version=4)
    nbclient.NotebookClient(nb, timeout=600, kernel_name="python3").execute(cwd=str(tmp_path))
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    assert any("image/png" in o.get("data", {}) for o in outputs)  # the grid shows itself
    assert any("text/html" in o.get("data", {}) for o in outputs)  # Scores as a table
    streams = [o for o in outputs if o.output_type == "stream"]
    assert len(streams) <= 3, streams  # no progress litter
