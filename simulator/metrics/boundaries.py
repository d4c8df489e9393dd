"""Energy boundaries: what an energy figure counts, named after the public accountings.

Nested boundaries, each adding one part to the one before:

=======================  ===============================================  ===========================
boundary                 adds                                             public accounting
=======================  ===============================================  ===========================
``accelerators_active``  GPUs while their replica runs iterations          Google's "existing
                         (prefill and decode)                             approach" (0.10 Wh per
                                                                          Gemini prompt); ML.ENERGY
                                                                          (GPU energy, steady state)
``accelerators``         + idle GPUs (capacity provisioned, not in use)
``it``                   + hosts (CPUs, DRAM, NICs, switches, fans,
                         conversion losses)
``facility``             + facility overhead (cooling, power conversion:  Google's "comprehensive
                         IT x (PUE - 1))                                  approach" (0.24 Wh; it also
                                                                          counts embodied emissions
                                                                          and water, not energy)
=======================  ===============================================  ===========================

Every summary carries ``energy_boundaries``: the parts (J for a run, GWh/day for a projection),
each boundary's cumulative total, and the energy per completed query at each boundary, overall
and by class. Per query, the parts are attributed as follows: active GPU energy by the engine's
per-request attribution (tokens in each iteration); idle GPUs, hosts and overhead to the
classes in proportion to their active share. So, for every class, the four parts add up to its
facility-boundary energy per query (a test checks it). The existing keys keep their meaning:
``energy_per_query_wh_*`` / ``wh_per_query_*`` are the engine's busy attribution (GPU + host
busy share) x PUE, which lies between the ``it``-less and the ``facility`` boundary.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from simulator.metrics.requests import COMPLETED

if TYPE_CHECKING:
    from simulator.metrics.requests import RequestTable

J_PER_WH = 3600.0
BOUNDARIES = ("accelerators_active", "accelerators", "it", "facility")
PARTS = ("accelerators_active", "accelerators_idle", "host", "facility_overhead")


def _cumulative(parts: dict[str, float]) -> dict[str, float]:
    out, acc = {}, 0.0
    for b, p in zip(BOUNDARIES, PARTS):
        acc += parts[p]
        out[b] = acc
    return out


def _per_query(parts: dict[str, float], shares: dict[str, float], counts: dict[str, int],
               to_wh: float) -> dict[str, Any]:
    """Energy per completed query at each boundary, overall and by class (``shares``: each
    class's fraction of the active energy; ``counts``: its completed queries)."""
    n = sum(counts.values())
    overall = {b: v * to_wh / n if n else float("nan") for b, v in _cumulative(parts).items()}
    by_class = {}
    for c, k in counts.items():
        cp = {p: parts[p] * shares.get(c, 0.0) for p in PARTS}
        by_class[c] = {b: v * to_wh / k if k else float("nan") for b, v in _cumulative(cp).items()}
    return {"overall": overall, "by_class": by_class}


def run_boundaries(summary: dict[str, Any], requests: "RequestTable") -> dict[str, Any]:
    """The boundaries of a run (whole simulated time, warm-up included, J): the active GPU
    energy is the GPUs' prefill and decode energy; per query over the completed requests."""
    s = summary
    pue = s["energy_facility_j"] / s["energy_it_j"] if s["energy_it_j"] else 1.0
    parts = {"accelerators_active": s["energy_gpu_prefill_j"] + s["energy_gpu_decode_j"],
             "accelerators_idle": s["energy_gpu_idle_j"], "host": s["energy_host_j"],
             "facility_overhead": s["energy_it_j"] * (pue - 1.0)}
    # the request table's columns (RequestTable: numpy arrays, class as category codes)
    done = requests["state"] == COMPLETED
    codes = requests["class"][done]
    k = len(requests.classes)
    n_by = np.bincount(codes, minlength=k)
    e_by = np.bincount(codes, weights=requests["energy_j"][done], minlength=k)
    total = float(e_by.sum())
    counts = {str(c): int(n_by[i]) for i, c in enumerate(requests.classes) if n_by[i] > 0}
    shares = {str(c): float(e_by[i]) / total if total > 0 else 0.0
              for i, c in enumerate(requests.classes) if n_by[i] > 0}
    return {"unit": "J", "parts_j": parts, "cumulative_j": _cumulative(parts),
            "wh_per_query": _per_query(parts, shares, counts, 1.0 / J_PER_WH)}


def projection_boundaries(summary: dict[str, Any], class_queries: dict[str, float],
                          class_active_wh: dict[str, float]) -> dict[str, Any]:
    """The boundaries of a fleet-day (nominal, GWh/day); per query over the day's queries of
    each class, the active part shared by each class's attributed busy energy."""
    s = summary
    overhead = s["gwh_per_day_facility_overhead"]
    parts = {"accelerators_active": s["gwh_per_day_gpu_prefill"] + s["gwh_per_day_gpu_decode"],
             "accelerators_idle": s["gwh_per_day_gpu_idle"], "host": s["gwh_per_day_host"],
             "facility_overhead": overhead}
    total = sum(class_active_wh.values())
    shares = {c: v / total if total > 0 else 0.0 for c, v in class_active_wh.items()}
    counts = {c: int(round(q)) for c, q in class_queries.items()}
    return {"unit": "GWh/day", "parts_gwh_per_day": parts, "cumulative_gwh_per_day": _cumulative(parts),
            "wh_per_query": _per_query(parts, shares, counts, 1e9)}
