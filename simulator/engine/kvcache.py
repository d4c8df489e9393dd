"""KV-cache accounting of a replica, in tokens, with vLLM's block rounding bounded in closed form.

Each sequence holds ``ceil(tokens / block)`` blocks; the replica bounds this by
``tokens + block - 1`` (the worst case of its last block), so that what a decode span holds is
a closed form of its length. This is the one formula for that slack, for admission and for the
decode steps that fit before someone must be preempted. Admission keeps a 1 % watermark free,
as vLLM does.
"""

from __future__ import annotations

from dataclasses import dataclass, field

WATERMARK_FRACTION = 0.01  # vLLM's default free-block watermark for admission


@dataclass(frozen=True, slots=True)
class KVCache:
    """The KV-cache budget of one replica (the state, tokens in use, stays with the replica).

    ``slack_tokens``: worst-case unused tokens of one sequence's last block;
    ``admit_limit_tokens``: held tokens above which nothing new is admitted (capacity less the
    watermark). Both derived once (schedulers read them every iteration)."""

    capacity_tokens: int
    block_tokens: int
    slack_tokens: int = field(init=False, compare=False)
    admit_limit_tokens: float = field(init=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "slack_tokens", self.block_tokens - 1)
        object.__setattr__(self, "admit_limit_tokens",
                           self.capacity_tokens - WATERMARK_FRACTION * self.capacity_tokens)

    def held_tokens(self, used_tokens: int, n_seqs: int) -> int:
        """Tokens' worth of blocks that ``n_seqs`` sequences with ``used_tokens`` may hold."""
        return used_tokens + n_seqs * (self.block_tokens - 1)

    def free_tokens(self, used_tokens: int, n_seqs: int) -> int:
        """Tokens still free for sure (negative: someone must be preempted)."""
        return self.capacity_tokens - self.held_tokens(used_tokens, n_seqs)

    def decode_steps(self, used_tokens: int, n_seqs: int, n_decode: int) -> int:
        """Decode steps of ``n_decode`` sequences (one token each per step) that fit before
        someone must be preempted: 0 when none fits now."""
        free = self.free_tokens(used_tokens, n_seqs)
        return free // n_decode + 1 if free >= 0 else 0
