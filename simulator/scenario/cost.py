"""The optional ``cost`` section: what a node and a kWh cost, so that runs, projections and
sweeps report money as well as energy.

Every figure here is a user choice (a price you pay or a quote you hold), never a default of
the simulator: with no ``cost`` section no cost is reported. Give the hardware either as a
rented GPU-hour price or as a node's capital cost written off over some years; give the
electricity price as one value or 24 (one per hour of day). Facility overheads (cooling,
distribution) enter through ``facility.pue``: the price applies to facility energy.
"""

from __future__ import annotations

import math

from pydantic import Field, field_validator, model_validator

from simulator.strict import Strict

HOURS_PER_DAY = 24


class CostSpec(Strict):
    """Prices of hardware and electricity (all user inputs; no defaults)."""

    gpu_hour_usd: float | None = Field(
        None, ge=0, le=1000, description="price of one GPU for one hour, USD (a rental or"
        " internal transfer price); every GPU of the fleet is paid all day. A user input")
    node_capital_usd: float | None = Field(
        None, ge=0, le=1e8, description="capital cost of one node (GPUs, host, networking share),"
        " USD, written off linearly over amortisation_years; give this or gpu_hour_usd. A user"
        " input")
    amortisation_years: float | None = Field(
        None, gt=0, le=30, description="years over which node_capital_usd is written off"
        " (straight line, no interest); needed with node_capital_usd. A user input")
    electricity_usd_per_kwh: float | list[float] | None = Field(
        None, description="price of facility energy (IT x PUE), USD/kWh: one value, or 24 (one"
        " per hour of day, used hour by hour by projections; a run, which has no hour of day,"
        " uses their mean). A user input")

    @field_validator("electricity_usd_per_kwh")
    @classmethod
    def _price(cls, v: float | list[float] | None) -> float | list[float] | None:
        if v is None:
            return v
        vals = v if isinstance(v, list) else [v]
        if isinstance(v, list) and len(v) != HOURS_PER_DAY:
            raise ValueError(f"needs one value or exactly 24 (one per hour of day), got {len(v)}")
        for i, x in enumerate(vals):
            if not (math.isfinite(x) and 0 <= x <= 100):
                raise ValueError(f"value {i} is {x}, must be in [0, 100] USD/kWh")
        return v

    @model_validator(mode="after")
    def _hardware(self) -> "CostSpec":
        if self.gpu_hour_usd is not None and self.node_capital_usd is not None:
            raise ValueError("give gpu_hour_usd or node_capital_usd (with amortisation_years),"
                             " not both")
        if (self.node_capital_usd is None) != (self.amortisation_years is None):
            raise ValueError("node_capital_usd and amortisation_years go together")
        if (self.gpu_hour_usd is None and self.node_capital_usd is None
                and self.electricity_usd_per_kwh is None):
            raise ValueError("give at least one price: gpu_hour_usd, node_capital_usd (with"
                             " amortisation_years) or electricity_usd_per_kwh")
        return self

    def hourly_price_usd_per_kwh(self) -> list[float] | None:
        v = self.electricity_usd_per_kwh
        if v is None:
            return None
        return list(v) if isinstance(v, list) else [float(v)] * HOURS_PER_DAY

    def node_usd_per_day(self, gpus_per_node: int) -> float | None:
        """Hardware cost of one node for one day, USD (None when no hardware price is given)."""
        if self.gpu_hour_usd is not None:
            return self.gpu_hour_usd * gpus_per_node * HOURS_PER_DAY
        if self.node_capital_usd is not None and self.amortisation_years is not None:
            return self.node_capital_usd / (self.amortisation_years * 365.0)
        return None
