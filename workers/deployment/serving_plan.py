"""What serves a scoring call: the deployment's arms when the model is deployed, else the
version an alias names.

The champion alias of a deployed model is served through its deployment: rows are routed
among the arms with weight > 0 and every shadow arm scores every row. Any other alias (or
a model without a deployment) serves the one version the alias names.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from storage.deployments import ArmRecord, current_arms
from workers.deployment.alias_cache import serving_version, serving_version_by_id
from workers.deployment.rollout_types import CHAMPION, SHADOW
from workers.deployment.routing import Arm
from workers.deployment.serving import ServingVersion


@dataclass(frozen=True)
class ServingPlan:
    stable: ServingVersion  # validates the rows; serves any row another arm cannot score
    arms: tuple[Arm, ...]  # routed arms, weights summing to 1 (arm name = role)
    versions: dict[int, ServingVersion]  # of every arm, by version id
    shadows: tuple[tuple[str, ServingVersion], ...]  # (role, version): log-only arms
    salt: str  # of the routing hash: a customer stays on one arm for a whole rollout
    stable_arm: str  # the arm name rows are logged under when the stable version serves

    @property
    def single(self) -> bool:
        return len(self.arms) == 1 and not self.shadows


def serving_plan(sessions: sessionmaker[Session], model_name: str, alias: str) -> ServingPlan:
    engine = sessions.kw.get("bind")
    if alias == CHAMPION and isinstance(engine, Engine):
        live = current_arms(engine, model_name)
        if live is not None:
            return _deployed(sessions, f"{model_name}:{live.rollout}", live.arms)
    version = serving_version(sessions, model_name, alias)
    return ServingPlan(
        stable=version,
        arms=(Arm(alias, version.id, 1.0),),
        versions={version.id: version},
        shadows=(),
        salt=model_name,
        stable_arm=alias,
    )


def _deployed(
    sessions: sessionmaker[Session], salt: str, records: tuple[ArmRecord, ...]
) -> ServingPlan:
    versions: dict[int, ServingVersion] = {}
    for record in records:
        if record.version_id not in versions:
            versions[record.version_id] = serving_version_by_id(sessions, record.version_id)
    routed = tuple(
        Arm(record.role, record.version_id, record.weight)
        for record in records
        if record.role != SHADOW
    )
    champion = next(record for record in records if record.role == CHAMPION)
    return ServingPlan(
        stable=versions[champion.version_id],
        arms=routed,
        versions=versions,
        shadows=tuple(
            (record.role, versions[record.version_id])
            for record in records
            if record.role == SHADOW
        ),
        salt=salt,
        stable_arm=CHAMPION,
    )
