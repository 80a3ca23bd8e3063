"""What a skops file would build, read from the file itself before anything is built.

skops 0.16 trusts every scikit-learn estimator and many numpy functions by default, so
``get_untrusted_types`` alone would let an ``SVC`` or a ``FunctionTransformer(np.log1p)``
through an allow-list check. Every type the file's schema names is read here, so callers
can refuse any type off their own allow-list.
"""

from __future__ import annotations

import io
import json
import zipfile
from typing import Any

import skops.io as sio


def _named_types(node: Any) -> set[str]:
    """Every ``module.class`` a skops schema names, at any depth. Each object skops builds
    is described by such a dict, so this is a superset of what loading would import."""
    found: set[str] = set()
    if isinstance(node, dict):
        module, name = node.get("__module__"), node.get("__class__")
        if isinstance(module, str) and isinstance(name, str):
            found.add(f"{module}.{name}")
        for value in node.values():
            found |= _named_types(value)
    elif isinstance(node, list):
        for value in node:
            found |= _named_types(value)
    return found


def file_types(data: bytes) -> list[str]:
    """The types an artifact would build: those its schema names plus those skops reports
    as untrusted (which adds method names such as ``module.Class.method``)."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        schema = json.loads(archive.read("schema.json"))
    return sorted(_named_types(schema) | set(sio.get_untrusted_types(data=data)))
