"""Requests of the model registry and of scoring (docs/registry.md, docs/scoring.md).

Registry calls and inline predictions are answered at once (a reply, not a job);
scoring a dataset by reference, erasing a customer and retention are jobs.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, model_validator

from api_client.contract import CONTRACT_VERSION
from api_client.strict import ColumnName, DatasetName, StrictModel, Timestamp
from api_client.train_params import ModelName

AliasName = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-z][a-z0-9_-]*$")]
SemVer = Annotated[str, Field(min_length=5, max_length=32, pattern=r"^\d+\.\d+\.\d+$")]
Actor = Annotated[str, Field(min_length=1, max_length=200)]
RoutingKey = Annotated[str, Field(min_length=1, max_length=200)]
PredictionId = Annotated[str, Field(min_length=32, max_length=32, pattern=r"^[0-9a-f]{32}$")]

# A hard ceiling on one inline message, whatever CIPML_MAX_INLINE_ROWS says: JSON of
# more rows than this costs more to move than to score by reference.
INLINE_ROWS_CEILING = 100_000


class VersionsRequest(StrictModel):
    contract: int = CONTRACT_VERSION
    model_name: ModelName


class LineageRequest(StrictModel):
    contract: int = CONTRACT_VERSION
    model_name: ModelName
    version: SemVer


class SetAliasRequest(StrictModel):
    contract: int = CONTRACT_VERSION
    model_name: ModelName
    alias: AliasName
    version: SemVer
    reason: str = Field(min_length=1, max_length=2000)
    actor: Actor | None = None
    expected_revision: int | None = Field(
        None, ge=0, description="refuse the move unless the alias is at this revision (0: unset)"
    )


class AliasHistoryRequest(StrictModel):
    contract: int = CONTRACT_VERSION
    model_name: ModelName
    alias: AliasName | None = None
    at: Timestamp | None = None

    @model_validator(mode="after")
    def _at_needs_alias(self) -> AliasHistoryRequest:
        if self.at is not None and self.alias is None:
            raise ValueError("'at' asks which version one alias named: give the alias too")
        return self


class PredictRequest(StrictModel):
    contract: int = CONTRACT_VERSION
    model_name: ModelName
    rows: list[dict[str, Any]] = Field(min_length=1, max_length=INLINE_ROWS_CEILING)
    key_column: ColumnName = "customer_id"
    alias: AliasName = "champion"


class OutcomeItem(StrictModel):
    """The true outcome of one prediction (by its id) or of a customer (by routing key)."""

    prediction_id: PredictionId | None = None
    routing_key: RoutingKey | None = None
    value: float | None = Field(None, allow_inf_nan=False)
    label: str | None = Field(None, min_length=1, max_length=200)
    observed_at: Timestamp | None = None

    @model_validator(mode="after")
    def _one_subject_one_value(self) -> OutcomeItem:
        if (self.prediction_id is None) == (self.routing_key is None):
            raise ValueError("give exactly one of prediction_id or routing_key")
        if self.value is None and self.label is None:
            raise ValueError("give the outcome as value (a number) or label (a class)")
        return self


class RecordOutcomesRequest(StrictModel):
    contract: int = CONTRACT_VERSION
    model_name: ModelName
    outcomes: list[OutcomeItem] = Field(min_length=1, max_length=INLINE_ROWS_CEILING)


class ScoreDatasetParams(StrictModel):
    """score_dataset: score a registered dataset by reference, in chunks, into a new one."""

    model_name: ModelName
    dataset_id: int = Field(ge=1)
    alias: AliasName = "champion"
    key_column: ColumnName = Field(
        "customer_id", description="routing key of each row (the customer id)"
    )
    output_name: DatasetName | None = Field(
        None, description="name of the scored dataset (default: <dataset name>-scored)"
    )
    log_predictions: bool = Field(
        True, description="log every prediction for monitoring (with its features)"
    )


class ForgetCustomerParams(StrictModel):
    """forget_customer: erase one customer's predictions, outcomes and dataset rows."""

    customer_id: RoutingKey
    key_column: ColumnName = Field(
        "customer_id", description="the column that identifies the customer in datasets"
    )
    actor: Actor | None = None


class RetentionParams(StrictModel):
    """apply_retention: delete old prediction logs and outcomes, and the artifacts of long
    archived versions nothing holds. A dry run lists what would go."""

    dry_run: bool = False
    artifacts: bool = True
    predictions: bool = True
    artifact_days: float | None = Field(
        None, gt=0, description="override of CIPML_ARTIFACT_RETENTION_DAYS"
    )
    prediction_days: float | None = Field(
        None, gt=0, description="override of CIPML_PREDICTION_RETENTION_DAYS"
    )
