"""The one strict pydantic base of every input model (scenario sections, calibration files).

Unknown keys are errors, NaN and infinity are rejected for every float (also inside lists and
dicts), and assignments are validated. Types are pydantic's strict mode: an integer field takes
an integer (not ``true``, ``2.5``, ``2.0`` or ``"2"``), a float field a number (not a boolean or
a string), a string field a string. (YAML input is read by :mod:`simulator.yamlio`, which reads
``1e9`` as a number, as YAML 1.2 does.) :class:`Frozen` is the same for immutable data
(calibration coefficients, shared by every replica of a pool), in pydantic's lax mode: those
files are written by the calibration pipeline, not by hand.

:data:`LaxInt` is for mapping keys that are integers (node and replica indexes): a scenario
written back as JSON or YAML by ``model_dump(mode="json")`` has them as strings.
"""

from __future__ import annotations

from typing import Annotated, TypeVar

from pydantic import BaseModel, ConfigDict
from pydantic import Strict as _StrictMode

#: an integer in lax mode (``"3"`` is 3): for mapping keys only
LaxInt = Annotated[int, _StrictMode(False)]


class Strict(BaseModel):
    """Base: unknown keys are errors; floats must be finite; assignments are validated."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, validate_assignment=True,
                              strict=True)


class Frozen(Strict):
    """:class:`Strict` and immutable."""

    model_config = ConfigDict(frozen=True, strict=False)


ModelT = TypeVar("ModelT", bound=BaseModel)


def replace(model: ModelT, **changes: object) -> ModelT:
    """A validated copy of ``model`` with some fields changed (nested sections are kept as
    they are; the changed values and the model's own validators run)."""
    return type(model).model_validate({**dict(model), **changes})
