"""Holdout evaluation of a multiclass classifier: overall metrics, per-class report, confusion.

Pure functions on integer class codes ``y`` (0..C-1) and an (n, C) probability matrix whose
columns are in code order; every number returned is a plain Python float or int so the result
goes straight into JSON.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    f1_score,
    log_loss,
    precision_recall_fscore_support,
    roc_auc_score,
)


def _checked(
    y: np.ndarray, proba: np.ndarray, classes: list[str]
) -> tuple[np.ndarray, np.ndarray, int]:
    y = np.asarray(y)
    proba = np.asarray(proba, dtype=float)
    n_classes = len(classes)
    if n_classes < 2:
        raise ValueError(f"need at least two classes, got {n_classes}")
    if proba.ndim != 2 or proba.shape != (len(y), n_classes) or len(y) == 0:
        raise ValueError(
            f"need non-empty y and proba of shape (len(y), {n_classes}); "
            f"got {len(y)} labels and proba of shape {proba.shape}"
        )
    if not np.all(np.isfinite(proba)):
        raise ValueError("proba holds NaN or infinite values")
    codes = y.astype(int)
    if not np.array_equal(codes, y) or codes.min() < 0 or codes.max() >= n_classes:
        raise ValueError(f"y must hold integer codes in 0..{n_classes - 1}")
    return codes, proba, n_classes


def _roc_auc_ovr(y: np.ndarray, proba: np.ndarray, n_classes: int) -> float | None:
    """Macro one-vs-rest AUC: each class against the rest, averaged unweighted.

    Computed class by class (the same definition as sklearn's ``multi_class="ovr"``) so that
    probabilities which miss summing to one by rounding do not make it refuse. Undefined, so
    None, when a class is absent from ``y``: its one-vs-rest problem has no positives.
    """
    if len(np.unique(y)) < n_classes:
        return None
    aucs = [roc_auc_score(y == code, proba[:, code]) for code in range(n_classes)]
    return float(np.mean(aucs))


def multiclass_metrics(y: np.ndarray, proba: np.ndarray, classes: list[str]) -> dict[str, Any]:
    """Accuracy, macro F1, balanced accuracy, log loss and macro OvR AUC of one holdout, with
    a per-class report, the confusion matrix (rows are true classes) and the true class shares.

    The predicted class is the most probable one. A class absent from both ``y`` and the
    predictions counts as F1 0 in the macro F1 (``zero_division=0``), as in its per-class row;
    balanced accuracy averages the recall of the classes present in ``y`` only.
    """
    y, proba, n_classes = _checked(y, proba, classes)
    labels = list(range(n_classes))
    predicted = proba.argmax(axis=1)
    matrix = confusion_matrix(y, predicted, labels=labels)
    support = matrix.sum(axis=1)
    present = support > 0
    # Balanced accuracy from the matrix: sklearn's own warns when a predicted class is absent.
    recalls = np.diag(matrix)[present] / support[present]
    precision, recall, f1, _ = precision_recall_fscore_support(
        y, predicted, labels=labels, zero_division=0
    )
    rows = len(y)
    return {
        "accuracy": float(accuracy_score(y, predicted)),
        "macro_f1": float(f1_score(y, predicted, labels=labels, average="macro", zero_division=0)),
        "balanced_accuracy": float(recalls.mean()),
        "log_loss": float(log_loss(y, proba, labels=labels)),
        "roc_auc_ovr": _roc_auc_ovr(y, proba, n_classes),
        "per_class": [
            {
                "class": str(name),
                "precision": float(precision[code]),
                "recall": float(recall[code]),
                "f1": float(f1[code]),
                "support": int(support[code]),
            }
            for code, name in enumerate(classes)
        ],
        "confusion": {
            "labels": [str(name) for name in classes],
            "matrix": [[int(count) for count in row] for row in matrix],
        },
        "rows": rows,
        "class_shares": {str(name): int(support[code]) / rows for code, name in enumerate(classes)},
    }
