"""The one strict pydantic base of every input model (scenario sections, calibration files).

Unknown keys are errors, NaN and infinity are rejected for every float (also inside lists and
dicts), and assignments are validated. :class:`Frozen` is the same for immutable data
(calibration coefficients, shared by every replica of a pool).
"""

from __future__ import annotations

from typing import TypeVar

from pydantic import BaseModel, ConfigDict


class Strict(BaseModel):
    """Base: unknown keys are errors; floats must be finite; assignments are validated."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, validate_assignment=True)


class Frozen(Strict):
    """:class:`Strict` and immutable."""

    model_config = ConfigDict(frozen=True)


ModelT = TypeVar("ModelT", bound=BaseModel)


def replace(model: ModelT, **changes: object) -> ModelT:
    """A validated copy of ``model`` with some fields changed (nested sections are kept as
    they are; the changed values and the model's own validators run)."""
    return type(model).model_validate({**dict(model), **changes})
