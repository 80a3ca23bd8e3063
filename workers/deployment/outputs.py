"""What a prediction says, per model type: a score (probability or value) and a label."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from workers.deployment.serving import ServingVersion
from workers.training.predict import class_probabilities


@dataclass(frozen=True)
class Outputs:
    """Per row: ``score`` (binary: P(positive); multiclass: the top class's probability;
    regression: the predicted value; clustering: none) and ``label`` (binary: the class
    the version's decision threshold picks; multiclass: the top class; clustering: the
    segment; regression: none)."""

    score: np.ndarray  # float64, NaN where the model type has no score
    label: list[str | None]


def score_rows(pipeline: Any, frame: pd.DataFrame, version: ServingVersion) -> Outputs:
    problem, classes, n = version.problem, list(version.classes), len(frame)
    if n == 0:
        return Outputs(np.zeros(0), [])
    if problem == "binary":
        positive = class_probabilities(pipeline, frame, 2)[:, 1]
        names = classes if len(classes) == 2 else ["0", "1"]
        picked = (positive >= version.threshold).astype(int)
        return Outputs(positive.astype(float), [names[i] for i in picked])
    if problem == "multiclass":
        proba = class_probabilities(pipeline, frame, max(len(classes), 1))
        top = proba.argmax(axis=1)
        return Outputs(proba.max(axis=1).astype(float), [classes[i] for i in top])
    if problem == "regression":
        return Outputs(np.asarray(pipeline.predict(frame), dtype=float), [None] * n)
    segments = np.asarray(pipeline.predict(frame), dtype=np.int64)
    return Outputs(np.full(n, np.nan), [str(s) for s in segments])
