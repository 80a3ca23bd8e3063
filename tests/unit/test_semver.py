"""next_version on hand-built versions: every rule, their precedence, the reasons."""

from __future__ import annotations

from typing import Any

import pytest

from storage.models import ModelVersion
from storage.semver import VersionBump, next_version, semver_key

SCHEMA = [{"name": "age", "dtype": "int64"}, {"name": "tenure", "dtype": "float64"}]


def version(
    number: str = "",
    *,
    family: str = "random_forest",
    schema: list[dict[str, str]] | None = None,
    space: str | None = "s1",
    name: str = "churn_model",
) -> ModelVersion:
    training: dict[str, Any] = {} if space is None else {"search_space_sha256": space}
    return ModelVersion(
        model_name=name,
        version=number,
        family=family,
        input_schema=SCHEMA if schema is None else schema,
        training=training,
    )


def test_the_first_version_of_a_name_is_1_0_0() -> None:
    assert next_version(None, version()) == VersionBump(
        "1.0.0", "first", "first version of churn_model"
    )


@pytest.mark.parametrize(
    ("new", "expected"),
    [
        (version(), VersionBump("1.4.3", "patch", "patch: same inputs and family")),
        (
            version(family="hist_gradient_boosting"),
            VersionBump("1.5.0", "minor", "minor: family random_forest -> hist_gradient_boosting"),
        ),
        (version(space="s2"), VersionBump("1.5.0", "minor", "minor: search space changed")),
        (
            version(family="hist_gradient_boosting", space="s2"),
            VersionBump(
                "1.5.0",
                "minor",
                "minor: family random_forest -> hist_gradient_boosting; search space changed",
            ),
        ),
        (
            version(schema=[*SCHEMA, {"name": "recency_days", "dtype": "int64"}]),
            VersionBump("2.0.0", "major", "major: inputs changed (added recency_days)"),
        ),
        (
            version(schema=SCHEMA[:1]),
            VersionBump("2.0.0", "major", "major: inputs changed (removed tenure)"),
        ),
        (
            version(schema=[{"name": "age", "dtype": "float64"}, SCHEMA[1]]),
            VersionBump("2.0.0", "major", "major: inputs changed (retyped age int64 -> float64)"),
        ),
    ],
    ids=["patch", "family", "space", "family-and-space", "added", "removed", "retyped"],
)
def test_each_rule_bumps_its_part(new: ModelVersion, expected: VersionBump) -> None:
    assert next_version(version("1.4.2"), new) == expected


def test_major_wins_over_minor_and_lists_every_input_change() -> None:
    new = version(
        family="hist_gradient_boosting",
        space="s2",
        schema=[
            {"name": "age", "dtype": "float64"},
            {"name": "recency_days", "dtype": "int64"},
            {"name": "frequency", "dtype": "int64"},
        ],
    )
    assert next_version(version("3.2.1"), new) == VersionBump(
        "4.0.0",
        "major",
        "major: inputs changed (added frequency, recency_days; removed tenure; "
        "retyped age int64 -> float64)",
    )


def test_minor_wins_over_patch_and_resets_it() -> None:
    assert next_version(version("0.9.7"), version(family="logistic")).version == "0.10.0"


def test_the_order_of_the_schema_does_not_matter() -> None:
    bump = next_version(version("1.0.0"), version(schema=list(reversed(SCHEMA))))
    assert (bump.version, bump.part) == ("1.0.1", "patch")


@pytest.mark.parametrize(("old_space", "new_space"), [(None, "s2"), ("s1", None), (None, None)])
def test_an_unknown_search_space_bumps_nothing(
    old_space: str | None, new_space: str | None
) -> None:
    bump = next_version(version("1.0.0", space=old_space), version(space=new_space))
    assert (bump.version, bump.part) == ("1.0.1", "patch")


def test_versions_without_recorded_inputs_or_training_compare_as_empty() -> None:
    old = ModelVersion(model_name="m", version="2.0.0", family="f")  # columns not set yet
    bump = next_version(old, ModelVersion(model_name="m", family="f"))
    assert (bump.version, bump.part) == ("2.0.1", "patch")


def test_semver_key_sorts_by_number() -> None:
    assert semver_key("1.10.0") > semver_key("1.9.12")
    assert sorted(["1.10.0", "1.2.0", "1.9.12"], key=semver_key) == ["1.2.0", "1.9.12", "1.10.0"]
