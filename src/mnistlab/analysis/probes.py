"""Linear probes: how much of the labels a linear classifier reads off some features.

``linear_probe`` fits logistic regression or a linear SVM on training features and scores it on
test features (accuracy, classification report, confusion matrix); ``baseline_probes`` gives the
figures to compare a latent space with: the same probes on raw pixels and on PCA components.

    >>> linear_probe(z_train, y_train, z_test, y_test, "logreg", features="ae 16-d").accuracy
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field

import numpy as np

from mnistlab import data as mdata
from mnistlab import spread
from mnistlab.analysis.projections import single_threaded

PROBES = ("logreg", "linear_svm")
PROBE_NAMES = {"logreg": "logistic regression", "linear_svm": "linear SVM"}
CLASSES = tuple(range(10))  # the rows of every report and confusion matrix


@dataclass
class ProbeResult:
    """One linear probe: trained on (standardised) features, scored on the test digits."""

    features: str  # "ae 16-d latent", "raw pixels", ...
    probe: str  # "logreg" | "linear_svm"
    accuracy: float
    report: dict[str, dict[str, float]]  # classification_report(output_dict=True)
    confusion: np.ndarray  # (10, 10) int counts, rows true, columns predicted
    n_train: int
    n_test: int
    n_features: int
    converged: bool
    seconds: float
    # Whether each test digit was read right (N,): the accuracy is its mean, and two probes on
    # the same test digits compare by a paired bootstrap (``difference_interval``).
    correct: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool), repr=False)

    @property
    def interval(self) -> tuple[float, float]:
        """95% bootstrap interval of the accuracy over the test digits."""
        counts = spread.resample_counts(len(self.correct), spread.BOOTSTRAP)
        return spread.mean_intervals({"a": self.correct.astype(np.float64)}, counts)["a"]


def difference_interval(a: ProbeResult, b: ProbeResult) -> tuple[float, float] | None:
    """95% paired-bootstrap interval of accuracy(a) - accuracy(b) on the same test digits (None
    when they were scored on different test sets): a difference whose interval leaves out 0 is
    larger than its spread."""
    if len(a.correct) != len(b.correct) or not len(a.correct):
        return None
    diff = a.correct.astype(np.float64) - b.correct.astype(np.float64)
    counts = spread.resample_counts(len(diff), spread.BOOTSTRAP)
    return spread.mean_intervals({"d": diff}, counts)["d"]


def linear_probe(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_test: np.ndarray,
    y_test: np.ndarray,
    probe: str,
    *,
    features: str = "",
    seed: int = 0,
    standardise: bool = True,
) -> ProbeResult:
    """Fit a linear classifier on (standardised) features and score it on the test set.

    x_train : (M, F) features, y_train : (M,) labels in 0-9; x_test (N, F), y_test (N,).
    probe : "logreg" (multinomial logistic regression, lbfgs, C = 1) or "linear_svm"
    (one-vs-rest LinearSVC, squared hinge, C = 1, primal solver since M >> F).
    standardise : scale each feature to mean 0, variance 1 first (latents: their units are
    arbitrary). Raw pixels are left in [0, 1]: standardising near-constant border pixels blows
    them up and stops LinearSVC from converging.
    """
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import classification_report, confusion_matrix
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import LinearSVC

    t0 = time.perf_counter()
    if probe == "logreg":
        clf = LogisticRegression(C=1.0, max_iter=1_000, random_state=seed)
    elif probe == "linear_svm":
        clf = LinearSVC(C=1.0, dual=False, max_iter=2_000, random_state=seed)
    else:
        raise ValueError(f"probe must be one of {PROBES}, not {probe!r}")
    pipe = make_pipeline(StandardScaler(), clf) if standardise else make_pipeline(clf)
    with single_threaded(), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        pipe.fit(np.asarray(x_train, dtype=np.float32), y_train)
    converged = not any(issubclass(w.category, ConvergenceWarning) for w in caught)
    pred = pipe.predict(np.asarray(x_test, dtype=np.float32))
    report = classification_report(
        y_test, pred, labels=list(CLASSES), output_dict=True, zero_division=0
    )
    return ProbeResult(
        features=features,
        probe=probe,
        accuracy=float(np.mean(pred == y_test)),
        report={str(k): v for k, v in report.items() if isinstance(v, dict)},
        confusion=confusion_matrix(y_test, pred, labels=list(CLASSES)),
        n_train=len(x_train),
        n_test=len(x_test),
        n_features=int(np.asarray(x_train).reshape(len(x_train), -1).shape[1]),
        converged=converged,
        seconds=time.perf_counter() - t0,
        correct=np.asarray(pred == y_test),
    )


def baseline_probes(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_test: np.ndarray,
    y_test: np.ndarray,
    *,
    pixel_train: int,
    pca_components: int,
    seed: int = 0,
) -> dict[str, ProbeResult]:
    """Every probe of ``PROBES`` on raw pixels and on the pixels' first principal components.

    x_train (M, 28, 28) uint8 or float in [0, 1], y_train (M,); x_test (N, 28, 28), y_test (N,).
    The raw-pixel probes train on the first ``pixel_train`` images (784 features make them the
    slowest fits), the PCA probes on all M, on ``pca_components`` components fitted to them.
    Returns "raw pixels logreg", "raw pixels linear_svm", "PCA logreg", "PCA linear_svm".
    """
    from sklearn.decomposition import PCA

    px_train = mdata.to_float(x_train).reshape(len(x_train), -1)  # (M, 784)
    px_test = mdata.to_float(x_test).reshape(len(x_test), -1)  # (N, 784)
    n_pix = min(pixel_train, len(px_train))
    out = {}
    for p in PROBES:
        out[f"raw pixels {p}"] = linear_probe(
            px_train[:n_pix], y_train[:n_pix], px_test, y_test, p,
            features="raw pixels", seed=seed, standardise=False,
        )  # fmt: skip
    with single_threaded():
        pca = PCA(n_components=pca_components, random_state=seed).fit(px_train)
        pc_train, pc_test = pca.transform(px_train), pca.transform(px_test)  # (M, k), (N, k)
    for p in PROBES:
        out[f"PCA {p}"] = linear_probe(
            pc_train, y_train, pc_test, y_test, p,
            features=f"PCA {pca_components} components", seed=seed,
        )  # fmt: skip
    return out
