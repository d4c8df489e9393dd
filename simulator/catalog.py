"""Model catalog: real transformer shapes (from each model's published config.json).

A :class:`ModelShape` is everything the timing, power and memory models need to know about a
decoder-only transformer — dense or a mixture of experts (MoE), with grouped-query, sliding-
window or multi-head latent attention — including what its quantized checkpoint keeps in BF16
(weight bytes per layer type decide the KV budget). Each entry names the checkpoints it models
(``checkpoints``: precision -> Hugging Face repository). Scenarios name a catalog entry or give a
shape inline.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ModelShape:
    """Architecture of a decoder-only transformer.

    ``head_dim`` defaults to ``hidden_size // heads`` (Qwen3 sets it explicitly to 128).

    Mixture of experts (``experts > 0``): after the first ``dense_layers`` layers (a dense MLP of
    ``ffn_size``), every ``moe_layer_step``-th layer is an MoE layer (the others dense): a
    router over ``experts`` experts, each token sent to ``experts_per_token`` of them (an
    expert is a gated MLP of ``expert_ffn_size``), plus an always-on shared expert of
    ``shared_expert_ffn_size`` (0: none).

    Attention: ``sliding_window_layers`` layers attend to the last ``sliding_window_tokens``
    tokens only (gpt-oss); ``kv_lora_rank > 0`` is multi-head latent attention (DeepSeek-V2/V3:
    the cache holds a ``kv_lora_rank + qk_rope_head_dim`` latent per token and layer, the same
    on every GPU; ``head_dim`` is then the query/key head dimension, nope + rope, and
    ``v_head_dim`` the value one).
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
    # GEMMs ("qkv", "o", "up", "down", "shared", "experts") a quantized (FP8, MXFP4) checkpoint
    # keeps in BF16
    fp8_bf16_gemms: tuple[str, ...] = ()
    fp8_bf16_edge_layers: int = 0  # first and last layers the FP8 checkpoint keeps whole in BF16
    checkpoints: tuple[tuple[str, str], ...] = ()  # (precision, Hugging Face repo) modelled
    experts: int = 0
    experts_per_token: int = 0
    expert_ffn_size: int = 0
    shared_expert_ffn_size: int = 0
    dense_layers: int = 0
    moe_layer_step: int = 1
    sliding_window_tokens: int = 0
    sliding_window_layers: int = 0
    kv_lora_rank: int = 0
    q_lora_rank: int = 0
    qk_rope_head_dim: int = 0
    v_head_dim: int = 0
    # memory a serving stack holds beside the text model's GEMMs: a vision encoder loaded even
    # for text (split over the GPUs), and a rotary-embedding table of this many positions in
    # BF16 on every GPU (vLLM sizes it by max_position_embeddings: Llama-4-Scout's 10M: 2.5 GiB)
    vision_params: int = 0
    rope_cache_positions: int = 0

    def __post_init__(self) -> None:
        if self.head_dim == 0:
            object.__setattr__(self, "head_dim", self.hidden_size // self.heads)
        if self.v_head_dim == 0:
            object.__setattr__(self, "v_head_dim", self.head_dim)

    @property
    def is_moe(self) -> bool:
        return self.experts > 0

    @property
    def mla(self) -> bool:
        """Multi-head latent attention."""
        return self.kv_lora_rank > 0

    @property
    def moe_layers(self) -> int:
        """Layers whose MLP is a mixture of experts."""
        return (self.layers - self.dense_layers) // self.moe_layer_step if self.is_moe else 0

    @property
    def dense_mlp_layers(self) -> int:
        """Layers with a dense MLP of ``ffn_size``."""
        return self.layers - self.moe_layers

    @property
    def full_attention_layers(self) -> int:
        """Layers that attend to the whole context (the rest use the sliding window)."""
        return self.layers - self.sliding_window_layers

    @property
    def q_size(self) -> int:
        """Width of the query projection output (heads x head_dim)."""
        return self.heads * self.head_dim

    @property
    def kv_size(self) -> int:
        """Width of one of the K or V projection outputs (kv_heads x head_dim)."""
        return self.kv_heads * self.head_dim

    @property
    def attention_params_per_layer(self) -> int:
        """Weights of one layer's attention projections."""
        d = self.hidden_size
        if self.mla:
            nope = self.head_dim - self.qk_rope_head_dim
            q = (d * self.q_lora_rank + self.q_lora_rank * self.heads * self.head_dim
                 if self.q_lora_rank else d * self.heads * self.head_dim)
            kv = d * (self.kv_lora_rank + self.qk_rope_head_dim) + self.kv_lora_rank * self.heads * (nope + self.v_head_dim)
            return q + kv + self.heads * self.v_head_dim * d
        return d * (self.q_size + 2 * self.kv_size) + self.q_size * d

    def mlp_params(self, ffn: int) -> int:
        return (3 if self.gated_mlp else 2) * self.hidden_size * ffn

    @property
    def params_total(self) -> int:
        """All weights: attention, dense MLPs, experts (all of them), shared experts and
        routers, plus input embedding and LM head (counted once if tied); norms are ignored."""
        emb = self.vocab_size * self.hidden_size
        moe = (self.experts * self.mlp_params(self.expert_ffn_size) + self.mlp_params(self.shared_expert_ffn_size)
               + self.hidden_size * self.experts)
        return (self.layers * self.attention_params_per_layer + self.dense_mlp_layers * self.mlp_params(self.ffn_size)
                + self.moe_layers * moe + emb * (1 if self.tied_embeddings else 2))

    @property
    def params_active(self) -> int:
        """Weights one token uses (its experts only)."""
        idle = self.moe_layers * (self.experts - self.experts_per_token) * self.mlp_params(self.expert_ffn_size)
        return self.params_total - idle


def _m(name: str, layers: int, d: int, h: int, kvh: int, ffn: int, vocab: int, **kw) -> ModelShape:
    return ModelShape(name, layers, d, h, kvh, ffn, vocab, **kw)


#: an FP8 checkpoint that quantizes every linear layer of the blocks (weights and activations);
#: embeddings and the LM head stay BF16 in every checkpoint
ALL_LINEAR = {}
#: Meta's Llama-3.1 FP8 release (fbgemm row-wise): attention projections, and the first and
#: last layers whole, stay BF16 (its config.json lists them in modules_to_not_convert)
META_FP8 = {"fp8_bf16_gemms": ("qkv", "o"), "fp8_bf16_edge_layers": 1}


#: Llama-4's vision encoder and projector (vLLM loads them for text too): ~0.88 B parameters,
#: from the 0.41 GiB per GPU at TP 4 they add to the Scout start-up log (docs/validation.md, P31)
LLAMA4_EXTRAS = {"vision_params": 880_000_000}


def _moe(experts: int, per_token: int, ffn: int, shared: int = 0, dense: int = 0,
         step: int = 1) -> dict:
    return {"experts": experts, "experts_per_token": per_token, "expert_ffn_size": ffn,
            "shared_expert_ffn_size": shared, "dense_layers": dense, "moe_layer_step": step}


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
        # ---- mixtures of experts (shapes from each config.json; ffn_size is the dense MLP's,
        # used only by dense layers)
        _m("Qwen3-30B-A3B", 48, 2048, 32, 4, 6144, 151936, head_dim=128, **ALL_LINEAR,
           **_moe(128, 8, 768), checkpoints=_ck("Qwen/Qwen3-30B-A3B-Instruct-2507",
                                               "Qwen/Qwen3-30B-A3B-Instruct-2507-FP8")),
        _m("Qwen3-Coder-30B-A3B", 48, 2048, 32, 4, 6144, 151936, head_dim=128, **ALL_LINEAR,
           **_moe(128, 8, 768), checkpoints=_ck("Qwen/Qwen3-Coder-30B-A3B-Instruct",
                                               "Qwen/Qwen3-Coder-30B-A3B-Instruct-FP8")),
        _m("Qwen3-235B-A22B", 94, 4096, 64, 4, 12288, 151936, head_dim=128, **ALL_LINEAR,
           **_moe(128, 8, 1536), checkpoints=_ck("Qwen/Qwen3-235B-A22B-Instruct-2507",
                                                "Qwen/Qwen3-235B-A22B-Instruct-2507-FP8")),
        _m("Qwen3-Coder-480B-A35B", 62, 6144, 96, 8, 8192, 151936, head_dim=128, **ALL_LINEAR,
           **_moe(160, 8, 2560), checkpoints=_ck("Qwen/Qwen3-Coder-480B-A35B-Instruct",
                                                "Qwen/Qwen3-Coder-480B-A35B-Instruct-FP8")),
        # gpt-oss: MXFP4 experts, BF16 attention; alternate layers attend to a 128-token window
        _m("gpt-oss-20b", 24, 2880, 64, 8, 2880, 201088, head_dim=64, fp8_bf16_gemms=("qkv", "o"),
           sliding_window_tokens=128, sliding_window_layers=12, **_moe(32, 4, 2880),
           checkpoints=(("mxfp4", "openai/gpt-oss-20b"),)),
        _m("gpt-oss-120b", 36, 2880, 64, 8, 2880, 201088, head_dim=64, fp8_bf16_gemms=("qkv", "o"),
           sliding_window_tokens=128, sliding_window_layers=18, **_moe(128, 4, 2880),
           checkpoints=(("mxfp4", "openai/gpt-oss-120b"),)),
        # Llama-4: a shared expert in every MoE layer; Maverick alternates dense (16,384) and MoE
        # layers. Its chunked local attention (8,192-token chunks in 3 of 4 layers) is modelled
        # as full attention: exact for contexts up to 8,192 tokens, an overestimate beyond.
        # Meta's Maverick FP8 quantizes the routed experts only.
        _m("Llama-4-Scout-17B-16E", 48, 5120, 40, 8, 16384, 202048, head_dim=128,
           **_moe(16, 1, 8192, shared=8192), **LLAMA4_EXTRAS, rope_cache_positions=10_485_760,
           checkpoints=_ck("meta-llama/Llama-4-Scout-17B-16E-Instruct",
                           "RedHatAI/Llama-4-Scout-17B-16E-Instruct-FP8-dynamic")),
        _m("Llama-4-Maverick-17B-128E", 48, 5120, 40, 8, 16384, 202048, head_dim=128,
           fp8_bf16_gemms=("qkv", "o", "up", "down", "shared"),
           **_moe(128, 1, 8192, shared=8192, step=2), **LLAMA4_EXTRAS,
           rope_cache_positions=1_048_576,
           checkpoints=_ck("meta-llama/Llama-4-Maverick-17B-128E-Instruct",
                           "meta-llama/Llama-4-Maverick-17B-128E-Instruct-FP8")),
        # DeepSeek-V3 (and V3.1, R1: the same shape): multi-head latent attention, one shared
        # expert, the first 3 layers dense; the FP8 checkpoint is block-wise FP8 throughout
        _m("DeepSeek-V3", 61, 7168, 128, 128, 18432, 129280, head_dim=192, v_head_dim=128,
           kv_lora_rank=512, q_lora_rank=1536, qk_rope_head_dim=64, **ALL_LINEAR,
           **_moe(256, 8, 2048, shared=2048, dense=3),
           checkpoints=(("fp8", "deepseek-ai/DeepSeek-V3"),)),
        _m("DeepSeek-V2-Lite", 27, 2048, 16, 16, 10944, 102400, head_dim=192, v_head_dim=128,
           kv_lora_rank=512, qk_rope_head_dim=64, **_moe(64, 6, 1408, shared=2816, dense=1),
           checkpoints=_ck("deepseek-ai/DeepSeek-V2-Lite-Chat")),
        _m("Mixtral-8x7B", 32, 4096, 32, 8, 14336, 32000, **ALL_LINEAR, **_moe(8, 2, 14336),
           checkpoints=_ck("mistralai/Mixtral-8x7B-Instruct-v0.1")),
        _m("Mixtral-8x22B", 56, 6144, 48, 8, 16384, 32768, **ALL_LINEAR, **_moe(8, 2, 16384),
           checkpoints=_ck("mistralai/Mixtral-8x22B-Instruct-v0.1")),
    ]
}
#: other names of catalog models (the same shape)
ALIASES = {"DeepSeek-V3.1": "DeepSeek-V3", "DeepSeek-R1": "DeepSeek-V3",
           "Qwen3-30B-A3B-Thinking": "Qwen3-30B-A3B", "Qwen3-235B-A22B-Thinking": "Qwen3-235B-A22B"}
CATALOG.update({alias: CATALOG[name] for alias, name in ALIASES.items()})
