"""Shapes of models that appear in the calibration data but not in :mod:`simulator.catalog`.

Kept here (owned by the calibration) rather than in the catalog so the two can evolve
independently. Values are from each model's published ``config.json`` (text model only).

Approximations, stated where they matter:

* Gemma 3 uses a 1024-token sliding window on 5 of every 6 layers; the dense model here lets
  every layer attend to the full context. For the lm-arena-chat runs (prompt plus answer
  mostly under 1,500 tokens) the extra KV traffic is small. Gemma 3 also has two extra RMS
  norms per layer and ties its embeddings.
* BLOOM-176B uses ALiBi instead of RoPE and a non-gated GELU MLP; multi-head attention
  (``kv_heads == heads``).
"""

from __future__ import annotations

from simulator.catalog import CATALOG, ModelShape

EXTRA_SHAPES: dict[str, ModelShape] = {
    m.name: m
    for m in [
        ModelShape("Gemma-3-12B", 48, 3840, 16, 8, 15360, 262208, head_dim=256, tied_embeddings=True),
        ModelShape("Gemma-3-27B", 62, 5376, 32, 16, 21504, 262208, head_dim=128, tied_embeddings=True),
        ModelShape("BLOOM-176B", 70, 14336, 112, 112, 57344, 250880, gated_mlp=False,
                   tied_embeddings=True),
    ]
}


def shape(name: str) -> ModelShape:
    """A model shape by name: the catalog first, then the calibration's extra shapes."""
    if name in CATALOG:
        return CATALOG[name]
    return EXTRA_SHAPES[name]


def known_names() -> list[str]:
    return sorted({*CATALOG, *EXTRA_SHAPES})
