"""The training runtime: the pipeline artifact (allow-listed skops), thread shares, frame cache."""

from __future__ import annotations

import os
import subprocess
import sys
import typing
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import skops.io as sio
from sklearn.base import BaseEstimator
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import (
    ExtraTreesClassifier,
    HistGradientBoostingClassifier,
    RandomForestClassifier,
)
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler
from sklearn.svm import SVC
from sklearn.tree import DecisionTreeClassifier, ExtraTreeClassifier
from threadpoolctl import threadpool_info, threadpool_limits

from api_client.train_params import FAMILIES_OF, SelectionMethod
from workers.training.artifact import (
    ALLOWED_TYPES,
    IncompatibleArtifact,
    UntrustedArtifact,
    dump_pipeline,
    file_types,
    library_versions,
    load_pipeline,
)
from workers.training.families import SearchSpace, config_of
from workers.training.frame_cache import FrameCache
from workers.training.pipeline import ENSEMBLES, ModelSpec, build_pipeline
from workers.training.threads import (
    available_cores,
    compute_processes,
    limited_threads,
    register_process,
    threads_per_process,
)

# ------------------------------------------------------------------ artifact


def frame() -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(0)
    n = 120
    X = pd.DataFrame({"amount": rng.normal(size=n), "city": rng.choice(["NY", "LA", "SF"], size=n)})
    X.loc[::7, "amount"] = np.nan
    X.loc[::11, "city"] = None
    y = (X["amount"].fillna(0) + (X["city"] == "NY") + rng.normal(size=n) > 0.5).astype(int)
    return X, y.to_numpy()


def fitted(model: BaseEstimator, numeric: object = None) -> Pipeline:
    numeric_steps = numeric or Pipeline(
        [("impute", SimpleImputer(add_indicator=True)), ("scale", StandardScaler())]
    )
    categorical = Pipeline(
        [
            ("impute", SimpleImputer(strategy="most_frequent", add_indicator=True)),
            ("onehot", OneHotEncoder(handle_unknown="ignore")),
        ]
    )
    prep = ColumnTransformer([("num", numeric_steps, ["amount"]), ("cat", categorical, ["city"])])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # SVC(probability=True) is deprecated in 1.9
        return Pipeline([("prep", prep), ("model", model)]).fit(*frame())


FAMILIES = {
    "logistic": LogisticRegression(class_weight={0: 1.0, 1: 2.0}),
    "forest": RandomForestClassifier(n_estimators=4, random_state=np.random.RandomState(0)),
    "extra_trees": ExtraTreesClassifier(n_estimators=4, random_state=0),
    "hist_gb": HistGradientBoostingClassifier(max_iter=5, random_state=0),
    # early stopping on a metric keeps a scorer skops cannot dump; dump_pipeline drops it
    "hist_gb_auc": HistGradientBoostingClassifier(
        max_iter=20, early_stopping=True, scoring="roc_auc", n_iter_no_change=2, random_state=0
    ),
    "tree": DecisionTreeClassifier(max_depth=3, random_state=0),
    "extra_tree": ExtraTreeClassifier(random_state=0),
}


@pytest.mark.parametrize("family", FAMILIES)
def test_each_family_round_trips(family: str) -> None:
    pipeline = fitted(FAMILIES[family])
    before = dict(vars(pipeline[-1]))
    loaded = load_pipeline(dump_pipeline(pipeline), library_versions())
    X, _ = frame()
    np.testing.assert_array_equal(loaded.predict_proba(X), pipeline.predict_proba(X))
    assert vars(pipeline[-1]) == before  # the caller's model is left as it was


def our_models() -> Iterator[tuple[str, object]]:
    """Every kind of model the training job builds, fitted on a tiny table: each problem's
    families with every preprocessing choice, each selection method, both ensembles."""
    X, y_binary = frame()
    rng = np.random.default_rng(1)
    targets = {
        "binary": y_binary,
        "multiclass": rng.integers(0, 3, size=len(X)),
        "regression": rng.gamma(1.0, 10.0, size=len(X)) * (rng.random(len(X)) > 0.4),
        "clustering": None,
    }
    for problem, y in targets.items():
        space = SearchSpace(
            problem=problem,  # type: ignore[arg-type]
            families=FAMILIES_OF[problem],  # type: ignore[index]
            scaling=("standard", "robust", "none"),
            interactions=(0, 1),
            encoding=("onehot", "ordinal"),
            segments=(2, 3),
        )
        methods = ["none"] if problem == "clustering" else list(typing.get_args(SelectionMethod))
        # Each family once (the small preset), cycling through the preprocessing and
        # selection choices, plus the Poisson loss (the regularised regression preset).
        points = max(len(space.families), len(methods), 3)
        for point in range(points):
            family = space.families[point % len(space.families)]
            config = config_of({"family": family, "preset": space.segments[0]}, space)
            if problem != "clustering":
                preset = 3 if family == "hist_gradient_boosting" else 0  # Poisson loss
                config = config_of({"family": family, "preset": preset}, space)
            config["prep_scaling"] = space.scaling[point % 3]
            config["prep_interactions"] = point % 2
            config["prep_encoding"] = space.encoding[point % 2]
            selection = methods[point % len(methods)]
            spec = ModelSpec(problem, ["amount"], ["city"], seed=0, selection=selection,
                             max_features=1)  # fmt: skip
            model = build_pipeline(config, spec)
            with warnings.catch_warnings(), threadpool_limits(1):
                warnings.simplefilter("ignore")
                model.fit(X) if y is None else model.fit(X, y)
            yield f"{problem}:{config['family']}:{selection}", model
        if problem != "clustering":
            members = [config_of({"family": f, "preset": 0}, space) for f in space.families[-2:]]
            spec = ModelSpec(problem, ["amount"], ["city"], seed=0)
            for method in ENSEMBLES:
                model = build_pipeline({"family": method, "members": members}, spec).fit(X, y)
                yield f"{problem}:{method}", model


def test_our_models_round_trip() -> None:
    X, _ = frame()
    for name, model in our_models():
        loaded = load_pipeline(dump_pipeline(model), library_versions())
        method = "predict_proba" if hasattr(model, "predict_proba") else "predict"
        np.testing.assert_array_equal(
            getattr(loaded, method)(X), getattr(model, method)(X), err_msg=name
        )


def test_allow_list_is_exactly_what_our_pipelines_need() -> None:
    needed = set().union(*(file_types(dump_pipeline(fitted(m))) for m in FAMILIES.values()))
    needed |= set().union(*(file_types(dump_pipeline(model)) for _, model in our_models()))
    assert needed - ALLOWED_TYPES == set()
    assert ALLOWED_TYPES - needed == set()


@pytest.mark.parametrize(
    ("model", "numeric", "named"),
    [
        (SVC(probability=True), None, "sklearn.svm._classes.SVC"),
        (
            LogisticRegression(),
            Pipeline([("impute", SimpleImputer()), ("square", FunctionTransformer(np.square))]),
            "numpy.square",
        ),
    ],
)
def test_a_type_off_the_allow_list_is_refused(
    model: BaseEstimator, numeric: object, named: str
) -> None:
    data = dump_pipeline(fitted(model, numeric))
    assert named not in sio.get_untrusted_types(data=data)  # skops 0.16 would trust it
    with pytest.raises(UntrustedArtifact, match="allow-list") as caught:
        load_pipeline(data, library_versions())
    assert named in caught.value.types and named in str(caught.value)


def test_a_function_skops_does_not_trust_is_refused() -> None:
    data = sio.dumps(Pipeline([("run", FunctionTransformer(func=os.system))]))
    with pytest.raises(UntrustedArtifact, match=r"posix\.system"):
        load_pipeline(data, library_versions())


def test_another_scikit_learn_minor_version_is_refused() -> None:
    data = dump_pipeline(fitted(LogisticRegression()))
    major, minor = library_versions()["scikit-learn"].split(".")[:2]
    older = {**library_versions(), "scikit-learn": f"{major}.{int(minor) - 1}.2"}
    with pytest.raises(IncompatibleArtifact, match=rf"scikit-learn {major}\.{int(minor) - 1}\b"):
        load_pipeline(data, older)
    patch = {**library_versions(), "scikit-learn": f"{major}.{minor}.99"}
    assert isinstance(load_pipeline(data, patch), Pipeline)  # patch releases load


def test_another_numpy_major_version_is_refused() -> None:
    data = dump_pipeline(fitted(LogisticRegression()))
    with pytest.raises(IncompatibleArtifact, match=r"numpy 1\.26\.4.*numpy 1\.x"):
        load_pipeline(data, {**library_versions(), "numpy": "1.26.4"})
    with pytest.raises(IncompatibleArtifact, match="unrecorded"):
        load_pipeline(data, {})


def test_not_a_pipeline_is_refused() -> None:
    data = sio.dumps(LogisticRegression().fit([[0.0], [1.0]], [0, 1]))
    with pytest.raises(ValueError, match="not a Pipeline"):
        load_pipeline(data, library_versions())


def test_library_versions() -> None:
    versions = library_versions()
    assert set(versions) == {"scikit-learn", "numpy", "pandas", "scipy", "skops"}
    assert versions["numpy"] == np.__version__


# ------------------------------------------------------------------ threads


@pytest.fixture
def sleeper() -> Iterator[int]:
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        yield process.pid
    finally:
        process.kill()
        process.wait()


def test_configured_threads_are_used_as_given(tmp_path: Path) -> None:
    assert threads_per_process(3, tmp_path) == 3
    with pytest.raises(ValueError):
        threads_per_process(-1, tmp_path)


def test_auto_shares_the_cores_between_live_processes(tmp_path: Path, sleeper: int) -> None:
    assert compute_processes(tmp_path) == 1  # nobody registered: this process alone
    register_process(tmp_path)
    (tmp_path / str(sleeper)).touch()
    assert compute_processes(tmp_path) == 2
    assert threads_per_process(0, tmp_path) == max(1, available_cores() // 2)


def test_a_dead_process_is_forgotten(tmp_path: Path) -> None:
    finished = subprocess.Popen([sys.executable, "-c", "pass"])
    finished.wait()
    (tmp_path / str(finished.pid)).touch()
    register_process(tmp_path)
    assert compute_processes(tmp_path) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == [str(os.getpid())]


def test_limited_threads_caps_and_restores() -> None:
    before = [pool["num_threads"] for pool in threadpool_info()]
    assert before  # numpy's BLAS and scikit-learn's OpenMP are loaded
    with limited_threads(1):
        assert all(pool["num_threads"] == 1 for pool in threadpool_info())
    assert [pool["num_threads"] for pool in threadpool_info()] == before


# ------------------------------------------------------------------ frame cache


def small(n: int) -> pd.DataFrame:
    return pd.DataFrame({"x": np.arange(n, dtype="int64")})


def test_least_recently_used_frame_is_evicted() -> None:
    one = int(small(10).memory_usage(deep=True).sum())
    cache = FrameCache(max_bytes=2 * one)
    loads: list[str] = []

    def loader(key: str) -> Callable[[], pd.DataFrame]:
        def load() -> pd.DataFrame:
            loads.append(key)
            return small(10)

        return load

    cache.get("a", loader("a"))
    cache.get("b", loader("b"))
    cache.get("a", loader("a"))  # hit: b is now the least recently used
    cache.get("c", loader("c"))  # evicts b
    assert len(cache) == 2 and cache.total_bytes == 2 * one
    cache.get("a", loader("a"))
    cache.get("b", loader("b"))  # loaded again, evicting c
    assert loads == ["a", "b", "c", "b"]
    assert (cache.hits, cache.misses) == (2, 4)


def test_a_frame_larger_than_the_cache_is_returned_not_kept() -> None:
    cache = FrameCache(max_bytes=int(small(10).memory_usage(deep=True).sum()))
    cache.get("small", lambda: small(10))
    big = cache.get("big", lambda: small(1000))
    assert len(big) == 1000
    assert len(cache) == 1  # the small frame stays
    cache.get("big", lambda: small(1000))
    assert (cache.hits, cache.misses) == (0, 3)
