"""The clean job's building blocks: DataFrame transformers, the pipeline builder and safe
skops persistence (no Celery, no database, no files)."""

from workers.preprocessing.cleaning.base import CleaningConfigError, Passthrough
from workers.preprocessing.cleaning.categories import CategoryNormalizer, category_key
from workers.preprocessing.cleaning.imputers import ColumnRule, MissingValueImputer
from workers.preprocessing.cleaning.outliers import (
    IsolationForestFlagger,
    OutlierCapper,
    RobustScaling,
)
from workers.preprocessing.cleaning.persist import (
    UnsafeArtifactError,
    dump_pipeline,
    library_versions,
    load_pipeline,
)
from workers.preprocessing.cleaning.pipeline import (
    CleaningPlan,
    build_cleaning_pipeline,
    fit_transform_frame,
)

__all__ = [
    "CategoryNormalizer",
    "CleaningConfigError",
    "CleaningPlan",
    "ColumnRule",
    "IsolationForestFlagger",
    "MissingValueImputer",
    "OutlierCapper",
    "Passthrough",
    "RobustScaling",
    "UnsafeArtifactError",
    "build_cleaning_pipeline",
    "category_key",
    "dump_pipeline",
    "fit_transform_frame",
    "library_versions",
    "load_pipeline",
]
