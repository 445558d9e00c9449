"""Length-sorted batches under a token budget (pure functions, easy to test)."""
from __future__ import annotations


def token_budget_batches(lengths: list[int], max_tokens: int, max_batch: int = 256) -> list[list[int]]:
    """Indices grouped so each batch's padded size (count x longest) stays within max_tokens.

    Texts are taken longest first, so the first batch shows peak memory at once.

    Example:
        >>> token_budget_batches([3, 10, 4], max_tokens=12)
        [[1], [2, 0]]
    """
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    batches: list[list[int]] = []
    current: list[int] = []
    longest = 0
    for i in order:
        new_longest = max(longest, lengths[i])
        if current and (new_longest * (len(current) + 1) > max_tokens or len(current) >= max_batch):
            batches.append(current)
            current, new_longest = [], lengths[i]
        current.append(i)
        longest = new_longest
    if current:
        batches.append(current)
    return batches
