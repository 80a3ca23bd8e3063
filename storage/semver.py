"""Semantic versions of a model, decided by what changed since the latest version.

The first version of a model name is 1.0.0. Against the latest registered version (the
highest semver of the same name):

- an added, removed or retyped input feature bumps major;
- otherwise a different estimator family or a different search space bumps minor;
- otherwise the patch is bumped.

A search space recorded on only one side is unknown, not different: it bumps nothing.
Pure: no database, no session; ``ModelVersionRepository.register`` applies it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from storage.models import ModelVersion

FIRST_VERSION = "1.0.0"

BumpPart = Literal["first", "major", "minor", "patch"]


def semver_key(version: str) -> tuple[int, int, int]:
    """``"1.10.2"`` -> ``(1, 10, 2)``: sorts versions by number, not text."""
    major, minor, patch = (int(part) for part in version.split("."))
    return major, minor, patch


@dataclass(frozen=True)
class VersionBump:
    """The version a new model gets, which part was bumped and why (a readable sentence)."""

    version: str
    part: BumpPart
    reason: str


def next_version(previous: ModelVersion | None, new: ModelVersion) -> VersionBump:
    """The version ``new`` is registered under, ``previous`` being the latest version of
    the same model name (None when there is none)."""
    if previous is None:
        return VersionBump(FIRST_VERSION, "first", f"first version of {new.model_name}")
    major, minor, patch = semver_key(previous.version)
    inputs = _input_changes(_schema(previous), _schema(new))
    if inputs:
        return VersionBump(
            f"{major + 1}.0.0", "major", f"major: inputs changed ({'; '.join(inputs)})"
        )
    changes = []
    if previous.family != new.family:
        changes.append(f"family {previous.family} -> {new.family}")
    old_space, new_space = _search_space(previous), _search_space(new)
    if old_space is not None and new_space is not None and old_space != new_space:
        changes.append("search space changed")
    if changes:
        return VersionBump(f"{major}.{minor + 1}.0", "minor", f"minor: {'; '.join(changes)}")
    return VersionBump(f"{major}.{minor}.{patch + 1}", "patch", "patch: same inputs and family")


def _schema(version: ModelVersion) -> dict[str, str]:
    """Input feature name -> dtype (the order of the recorded list does not matter)."""
    return {str(field["name"]): str(field["dtype"]) for field in version.input_schema or []}


def _search_space(version: ModelVersion) -> str | None:
    training: dict[str, Any] = version.training or {}
    space = training.get("search_space_sha256")
    return None if space is None else str(space)


def _input_changes(old: dict[str, str], new: dict[str, str]) -> list[str]:
    """``["added a, b", "removed c", "retyped d int64 -> float64"]``, empty when equal."""
    changes = []
    added = sorted(new.keys() - old.keys())
    removed = sorted(old.keys() - new.keys())
    retyped = sorted(name for name in old.keys() & new.keys() if old[name] != new[name])
    if added:
        changes.append(f"added {', '.join(added)}")
    if removed:
        changes.append(f"removed {', '.join(removed)}")
    if retyped:
        changes.append(
            "retyped " + ", ".join(f"{name} {old[name]} -> {new[name]}" for name in retyped)
        )
    return changes
