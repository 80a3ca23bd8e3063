"""Storage errors, translated once from database and filesystem errors.

StorageError
 +-- NotFound (also LookupError)
 |    +-- ArtifactMissing
 +-- Conflict
 |    +-- ArtifactInUse
 +-- ArtifactCorrupt
 +-- SchemaOutOfDate
 +-- DatabaseUnavailable (also ConnectionError)   transient: retry later
"""

from __future__ import annotations


class StorageError(Exception):
    """A storage operation failed."""

    code = "storage_error"


class NotFound(StorageError, LookupError):
    """The row or object does not exist."""

    code = "not_found"


class Conflict(StorageError):
    """A unique key or state check refused the write."""

    code = "conflict"


class ArtifactMissing(NotFound):
    """The artifact store has no object with that sha256."""

    code = "artifact_not_found"


class ArtifactCorrupt(StorageError):
    """The stored bytes do not hash to the recorded sha256: the load is refused."""

    code = "artifact_corrupt"


class ArtifactInUse(Conflict):
    """The artifact is still referenced and cannot be deleted."""

    code = "artifact_in_use"


class SchemaOutOfDate(StorageError):
    """The database schema is not the one this code was written for."""

    code = "schema_out_of_date"


class DatabaseUnavailable(StorageError, ConnectionError):
    """The database could not be reached or dropped the connection; safe to retry."""

    code = "database_unavailable"
