"""What a prediction says, per model type: a score (probability or value) and a label."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from workers.deployment.serving import ServingVersion
from workers.training.predict import class_probabilities


@dataclass(frozen=True)
class Outputs:
    """Per row: ``score`` (binary: P(positive); multiclass: the top class's probability;
    regression: the predicted value; clustering: none) and a label (binary: the class the
    version's decision threshold picks; multiclass: the top class; clustering: the
    segment; regression: none), kept as codes into ``names`` so a million labels cost
    one integer array, not a million strings."""

    score: np.ndarray  # float64, NaN where the model type has no score
    codes: np.ndarray | None  # label of each row as an index into names; None: no labels
    names: tuple[str, ...] = ()

    @cached_property
    def label(self) -> list[str | None]:
        if self.codes is None:
            return [None] * len(self.score)
        return [self.names[i] for i in self.codes.tolist()]

    def label_array(self) -> pa.Array:
        """The labels as an Arrow string column (null where there is none)."""
        if self.codes is None:
            return pa.nulls(len(self.score), pa.string())
        dictionary = pa.array(self.names, pa.string())
        codes = pa.array(self.codes.astype(np.int32))
        return pa.DictionaryArray.from_arrays(codes, dictionary).cast(pa.string())


def score_rows(pipeline: Any, frame: pd.DataFrame, version: ServingVersion) -> Outputs:
    problem, classes, n = version.problem, tuple(version.classes), len(frame)
    if n == 0:
        return Outputs(np.zeros(0), None if problem == "regression" else np.zeros(0, int))
    if problem == "binary":
        positive = class_probabilities(pipeline, frame, 2)[:, 1]
        names: tuple[str, ...] = classes if len(classes) == 2 else ("0", "1")
        picked = (positive >= version.threshold).astype(np.int64)
        return Outputs(positive.astype(float), picked, names)
    if problem == "multiclass":
        proba = class_probabilities(pipeline, frame, max(len(classes), 1))
        return Outputs(proba.max(axis=1).astype(float), proba.argmax(axis=1), classes)
    if problem == "regression":
        return Outputs(np.asarray(pipeline.predict(frame), dtype=float), None)
    segments = np.asarray(pipeline.predict(frame), dtype=np.int64)
    names = tuple(str(i) for i in range(int(segments.max()) + 1))
    return Outputs(np.full(n, np.nan), segments, names)
