"""Model catalog: real transformer shapes (from each model's published config.json).

A :class:`ModelShape` is everything the timing, power and memory models need to know about a
dense decoder-only transformer. Scenarios name a catalog entry or give a shape inline.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ModelShape:
    """Architecture of a dense decoder-only transformer.

    ``head_dim`` defaults to ``hidden_size // heads`` (Qwen3 sets it explicitly to 128).
    """

    name: str
    layers: int
    hidden_size: int
    heads: int
    kv_heads: int
    ffn_size: int
    vocab_size: int
    gated_mlp: bool = True
    head_dim: int = 0
    tied_embeddings: bool = False

    def __post_init__(self) -> None:
        if self.head_dim == 0:
            object.__setattr__(self, "head_dim", self.hidden_size // self.heads)

    @property
    def q_size(self) -> int:
        """Width of the query projection output (heads x head_dim)."""
        return self.heads * self.head_dim

    @property
    def kv_size(self) -> int:
        """Width of one of the K or V projection outputs (kv_heads x head_dim)."""
        return self.kv_heads * self.head_dim

    @property
    def params_per_layer(self) -> int:
        """Weights of one layer: QKV, O, MLP (norm weights are negligible and ignored)."""
        d = self.hidden_size
        attn = d * (self.q_size + 2 * self.kv_size) + self.q_size * d
        mlp = (3 if self.gated_mlp else 2) * d * self.ffn_size
        return attn + mlp

    @property
    def params_total(self) -> int:
        """All weights: layers plus input embedding and LM head (counted once if tied)."""
        emb = self.vocab_size * self.hidden_size
        return self.layers * self.params_per_layer + emb * (1 if self.tied_embeddings else 2)

    def kv_bytes_per_token(self, bytes_per_element: float) -> float:
        """KV-cache bytes one token occupies across all layers (K and V), whole model."""
        return 2.0 * self.layers * self.kv_size * bytes_per_element


def _m(name: str, layers: int, d: int, h: int, kvh: int, ffn: int, vocab: int, **kw) -> ModelShape:
    return ModelShape(name, layers, d, h, kvh, ffn, vocab, **kw)


CATALOG: dict[str, ModelShape] = {
    m.name: m
    for m in [
        _m("Llama-2-7B", 32, 4096, 32, 32, 11008, 32000),
        _m("Llama-2-70B", 80, 8192, 64, 8, 28672, 32000),
        _m("CodeLlama-34B", 48, 8192, 64, 8, 22016, 32000),
        _m("Qwen-72B", 80, 8192, 64, 64, 24576, 152064),
        _m("InternLM-20B", 60, 5120, 40, 40, 13824, 103168),
        _m("Llama-3.1-8B", 32, 4096, 32, 8, 14336, 128256),
        _m("Llama-3.1-70B", 80, 8192, 64, 8, 28672, 128256),
        _m("Llama-3.1-405B", 126, 16384, 128, 8, 53248, 128256),
        _m("Qwen3-8B", 36, 4096, 32, 8, 12288, 151936, head_dim=128),
        _m("Qwen3-14B", 40, 5120, 40, 8, 17408, 151936, head_dim=128),
        _m("Qwen3-32B", 64, 5120, 64, 8, 25600, 151936, head_dim=128),
        _m("phi-2", 32, 2560, 32, 32, 10240, 51200, gated_mlp=False),
    ]
}
