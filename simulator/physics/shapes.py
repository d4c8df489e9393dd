"""The shape of one serving iteration: all the timing and power models look at."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class IterationShape:
    """What one forward pass of a replica processes.

    prefill_tokens: prompt tokens computed this iteration (sum of the prefill chunks).
    prefill_attn_pairs: causal (query, key) pairs of those chunks, sum over chunks of
        ``c * p + c * (c + 1) / 2`` for a chunk of ``c`` tokens after a prefix of ``p``.
    prefill_prefix_tokens: cached prefix tokens the prefill chunks read (sum of ``p``).
    prefill_seqs: number of prefill chunks (sequences in prefill).
    sampled_seqs: sequences that produce a token this iteration (decodes plus prefills that
        finish their prompt); the LM head and the sampler run on these rows only.
    decode_seqs: sequences decoding one token each.
    decode_ctx_tokens: sum over decoding sequences of the context each attends to (tokens in
        its KV cache, including the one being generated).
    """

    prefill_tokens: int = 0
    prefill_attn_pairs: float = 0.0
    prefill_prefix_tokens: int = 0
    prefill_seqs: int = 0
    sampled_seqs: int = 0
    decode_seqs: int = 0
    decode_ctx_tokens: int = 0

    @property
    def tokens(self) -> int:
        """Rows through the linear layers: prefill tokens plus one per decoding sequence."""
        return self.prefill_tokens + self.decode_seqs

    @staticmethod
    def causal_pairs(chunk_tokens: int, prefix_tokens: int) -> float:
        """Causal attention pairs of a chunk of ``chunk_tokens`` after ``prefix_tokens``."""
        c = chunk_tokens
        return c * prefix_tokens + c * (c + 1) / 2.0


def decode_shape(n_seqs: int, ctx_tokens: int) -> IterationShape:
    """A decode-only iteration of ``n_seqs`` sequences with total context ``ctx_tokens``."""
    return IterationShape(sampled_seqs=n_seqs, decode_seqs=n_seqs, decode_ctx_tokens=ctx_tokens)
