"""One spelling per category: 'NY', 'ny ' and ' Ny' become the training rows' favourite."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from workers.preprocessing.cleaning.base import FrameTransformer


def category_key(value: object) -> str:
    """What spellings of one category share: inner whitespace collapsed, lower-cased."""
    return " ".join(str(value).split()).lower()  # lower(), as the quality report groups them


class CategoryNormalizer(FrameTransformer):
    """Map each text value to the most frequent training spelling of its key.

    The canonical spelling of a key is the spelling seen most often in the training rows
    (ties: the lexicographically smallest), with its whitespace trimmed. Values whose key
    was not seen at fit are only stripped of surrounding whitespace; missing values stay
    missing.
    """

    def __init__(self, columns: Sequence[str] = ()) -> None:
        self.columns = columns

    def fit(self, X: pd.DataFrame, y: object = None) -> CategoryNormalizer:
        frame = self._fit_frame(X, self.columns)
        self.canonical_: dict[str, dict[str, str]] = {}
        for column in self.columns:
            counts = frame[column].value_counts(dropna=True)
            # Rank spellings by (-count, spelling): the smallest rank is the canonical one.
            best: dict[str, tuple[int, str]] = {}
            for raw, count in counts.items():
                if count == 0:  # categorical dtypes list unused categories too
                    continue
                rank = (-int(count), str(raw))
                key = category_key(raw)
                if key not in best or rank < best[key]:
                    best[key] = rank
            # Stray whitespace is never part of the canonical spelling ('ny ' -> 'ny').
            self.canonical_[column] = {
                key: " ".join(spelling.split()) for key, (_, spelling) in best.items()
            }
        return self

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        out = self._transform_frame(X)
        for column, canonical in self.canonical_.items():
            series = X[column]
            # Map distinct values only: a column has far fewer spellings than rows.
            lookup = {
                value: canonical.get(category_key(value), _stripped(value))
                for value in series.dropna().unique()
            }
            mapped = series.astype(object).map(lookup)
            if isinstance(series.dtype, pd.CategoricalDtype):
                mapped = mapped.astype("category")
            elif isinstance(series.dtype, pd.StringDtype):
                mapped = mapped.astype(series.dtype)
            out[column] = mapped
        return out


def _stripped(value: object) -> object:
    return value.strip() if isinstance(value, str) else value
