"""Model catalog: real transformer shapes (from each model's published config.json).

A :class:`ModelShape` is everything the timing, power and memory models need to know about a
dense decoder-only transformer, including what its FP8 checkpoint keeps in BF16 (weight bytes
per layer type decide the KV budget). Each entry names the checkpoints it models
(``checkpoints``: precision -> Hugging Face repository). Scenarios name a catalog entry or give a
shape inline.
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
    fp8_bf16_gemms: tuple[str, ...] = ()  # GEMMs ("qkv", "o", "up", "down") FP8 keeps in BF16
    fp8_bf16_edge_layers: int = 0  # first and last layers the FP8 checkpoint keeps whole in BF16
    checkpoints: tuple[tuple[str, str], ...] = ()  # (precision, Hugging Face repo) modelled

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


#: an FP8 checkpoint that quantizes every linear layer of the blocks (weights and activations);
#: embeddings and the LM head stay BF16 in every checkpoint
ALL_LINEAR = {}
#: Meta's Llama-3.1 FP8 release (fbgemm row-wise): attention projections, and the first and
#: last layers whole, stay BF16 (its config.json lists them in modules_to_not_convert)
META_FP8 = {"fp8_bf16_gemms": ("qkv", "o"), "fp8_bf16_edge_layers": 1}


def _ck(bf16: str, fp8: str | None = None) -> tuple[tuple[str, str], ...]:
    return (("bf16", bf16),) + ((("fp8", fp8),) if fp8 else ())


CATALOG: dict[str, ModelShape] = {
    m.name: m
    for m in [
        _m("Llama-2-7B", 32, 4096, 32, 32, 11008, 32000, checkpoints=_ck("meta-llama/Llama-2-7b-hf")),
        _m("Llama-2-70B", 80, 8192, 64, 8, 28672, 32000, checkpoints=_ck("meta-llama/Llama-2-70b-hf")),
        _m("CodeLlama-7B", 32, 4096, 32, 32, 11008, 32016,
           checkpoints=_ck("codellama/CodeLlama-7b-hf")),
        _m("CodeLlama-34B", 48, 8192, 64, 8, 22016, 32000,
           checkpoints=_ck("codellama/CodeLlama-34b-Instruct-hf")),
        _m("Qwen-72B", 80, 8192, 64, 64, 24576, 152064, checkpoints=_ck("Qwen/Qwen-72B")),
        _m("InternLM-20B", 60, 5120, 40, 40, 13824, 103168, checkpoints=_ck("internlm/internlm-20b")),
        _m("Llama-3.1-8B", 32, 4096, 32, 8, 14336, 128256, **ALL_LINEAR,
           checkpoints=_ck("meta-llama/Llama-3.1-8B-Instruct",
                           "RedHatAI/Meta-Llama-3.1-8B-Instruct-FP8-dynamic")),
        _m("Llama-3.1-70B", 80, 8192, 64, 8, 28672, 128256, **ALL_LINEAR,
           checkpoints=_ck("meta-llama/Llama-3.1-70B-Instruct",
                           "RedHatAI/Meta-Llama-3.1-70B-Instruct-FP8-dynamic")),
        _m("Llama-3.3-70B", 80, 8192, 64, 8, 28672, 128256, **ALL_LINEAR,
           checkpoints=_ck("meta-llama/Llama-3.3-70B-Instruct",
                           "RedHatAI/Llama-3.3-70B-Instruct-FP8-dynamic")),
        _m("Llama-3.1-405B", 126, 16384, 128, 8, 53248, 128256, **META_FP8,
           checkpoints=_ck("meta-llama/Llama-3.1-405B-Instruct",
                           "meta-llama/Llama-3.1-405B-Instruct-FP8")),
        _m("Llama-3.1-405B-FP8-dynamic", 126, 16384, 128, 8, 53248, 128256, **ALL_LINEAR,
           checkpoints=_ck("meta-llama/Llama-3.1-405B-Instruct",
                           "RedHatAI/Meta-Llama-3.1-405B-Instruct-FP8-dynamic")),
        _m("Qwen2.5-7B", 28, 3584, 28, 4, 18944, 152064, **ALL_LINEAR,
           checkpoints=_ck("Qwen/Qwen2.5-7B-Instruct", "RedHatAI/Qwen2.5-7B-Instruct-FP8-dynamic")),
        _m("Qwen2.5-72B", 80, 8192, 64, 8, 29568, 152064, **ALL_LINEAR,
           checkpoints=_ck("Qwen/Qwen2.5-72B-Instruct", "RedHatAI/Qwen2.5-72B-Instruct-FP8-dynamic")),
        _m("Qwen3-8B", 36, 4096, 32, 8, 12288, 151936, head_dim=128, **ALL_LINEAR,
           checkpoints=_ck("Qwen/Qwen3-8B", "Qwen/Qwen3-8B-FP8")),
        _m("Qwen3-14B", 40, 5120, 40, 8, 17408, 151936, head_dim=128, **ALL_LINEAR,
           checkpoints=_ck("Qwen/Qwen3-14B", "Qwen/Qwen3-14B-FP8")),
        _m("Qwen3-32B", 64, 5120, 64, 8, 25600, 151936, head_dim=128, **ALL_LINEAR,
           checkpoints=_ck("Qwen/Qwen3-32B", "Qwen/Qwen3-32B-FP8")),
        _m("Mistral-Small-3.1-24B", 40, 5120, 32, 8, 32768, 131072, head_dim=128, **ALL_LINEAR,
           checkpoints=_ck("mistralai/Mistral-Small-3.1-24B-Instruct-2503")),
        _m("phi-4", 40, 5120, 40, 10, 17920, 100352, **ALL_LINEAR,
           checkpoints=_ck("microsoft/phi-4")),
        _m("phi-2", 32, 2560, 32, 32, 10240, 51200, gated_mlp=False,
           checkpoints=_ck("microsoft/phi-2")),
    ]
}
