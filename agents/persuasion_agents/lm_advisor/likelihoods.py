"""Teacher-forced log-likelihoods of signals under every information item (``LMAdvisor.log_likelihoods``).

The prompts of one question under the m information items differ only where the item goes, so
each question's (signal, item) pairs are packed into one row of the batch: first the prefix its
prompts share (the system text and the question), once; then the rest of each item's prompt,
once an item; then each pair's signal tokens but the last. An attention mask lets a token see
only the earlier tokens of its own prompt (the shared prefix and its item's part) and of its own
signal, and positions run on from its own prompt: every token has the context and the position
it has in one pass over prompt + signal, and the shared prefix's keys and values are computed
once for all the question's pairs. A batch holds the rows of several questions, at most
``batch_size`` pairs in all, right-padded to its longest row (padding is masked out). Logits are
made only at the positions that predict a signal token, and the float32 log-softmax runs over
just those rows of the vocabulary, never over the whole sequence.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np


def common_prefix_length(sequences: Sequence[Sequence[int]]) -> int:
    """How many leading tokens all ``sequences`` share."""
    first = sequences[0]
    length = min(len(s) for s in sequences)
    for other in sequences[1:]:
        length = next((k for k in range(length) if other[k] != first[k]), length)
    return length


def teacher_forced(model: Any, prompts: Sequence[Sequence[Sequence[int]]], signals: Sequence[Sequence[int]],
                   owners: Sequence[int], *, device: Any, batch_size: int, temperature: float = 1.0) -> np.ndarray:
    """``out[j, x]`` = sum over t of log p(signals[j][t] | prompts[owners[j]][x] + signals[j][:t]),
    the logits divided by ``temperature``; an empty signal scores 0.

    ``prompts[k][x]`` holds the token ids of question k's prompt under item x (each non-empty;
    the same number of items for every question) and ``signals[j]`` those of signal j, written
    for question ``owners[j]``. At most ``batch_size`` (signal, item) pairs run in one forward
    pass. Call it under ``torch.inference_mode`` with the model in eval mode."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, not {batch_size}")
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, not {temperature}")
    items = len(prompts[0]) if prompts else 0
    totals = np.zeros((len(signals), items))
    by_owner: dict[int, list[int]] = {}
    for j, owner in enumerate(owners):
        if signals[j] and items:
            by_owner.setdefault(owner, []).append(j)
    rows = []  # a question's pairs, by item; one with more than batch_size pairs takes several rows
    for owner, scored in by_owner.items():
        if min(len(p) for p in prompts[owner]) == 0:
            raise ValueError("every prompt needs at least one token before the signal")
        pairs = [(j, x) for x in range(items) for j in scored]
        rows += [_Row.pack([(j, x, prompts[owner][x], signals[j]) for j, x in pairs[start:start + batch_size]])
                 for start in range(0, len(pairs), batch_size)]
    batch: list[_Row] = []
    for row in rows:
        if batch and sum(len(r.pairs) for r in batch) + len(row.pairs) > batch_size:
            _score(model, batch, totals, device, temperature)
            batch = []
        batch.append(row)
    if batch:
        _score(model, batch, totals, device, temperature)
    return totals


@dataclass
class _Row:
    """One question's pairs packed into one row: its tokens and their positions, its segments
    (columns ``[start, end)``, and the earlier segments each sees whole), and the columns whose
    logits predict a signal token (that token, and which pair's signal it is)."""

    pairs: list[tuple[int, int]] = field(default_factory=list)  # (signal j, item x)
    tokens: list[int] = field(default_factory=list)
    positions: list[int] = field(default_factory=list)
    segments: list[tuple[int, int, list[int]]] = field(default_factory=list)
    predicts: list[tuple[int, int, int]] = field(default_factory=list)  # (column, token, pair)

    def add(self, tokens: Sequence[int], first_position: int, sees: list[int]) -> int:
        self.segments.append((len(self.tokens), len(self.tokens) + len(tokens), sees))
        self.tokens += tokens
        self.positions += range(first_position, first_position + len(tokens))
        return len(self.segments) - 1

    @classmethod
    def pack(cls, pairs: list[tuple[int, int, Sequence[int], Sequence[int]]]) -> _Row:
        """(j, x, prompt, signal) of one question; each prompt keeps its last token out of the
        shared prefix, as its logits predict the signal's first token."""
        row = cls(pairs=[(j, x) for j, x, _, _ in pairs])
        prompts = {x: prompt for _, x, prompt, _ in pairs}
        shared = min(common_prefix_length(list(prompts.values())), min(len(p) for p in prompts.values()) - 1)
        prefix = [row.add(list(pairs[0][2][:shared]), 0, [])] if shared else []
        segment = {x: row.add(list(prompt[shared:]), shared, prefix) for x, prompt in prompts.items()}
        for p, (_, x, prompt, signal) in enumerate(pairs):
            row.predicts.append((row.segments[segment[x]][1] - 1, signal[0], p))
            row.predicts += [(len(row.tokens) + t, token, p) for t, token in enumerate(signal[1:])]
            if len(signal) > 1:
                row.add(list(signal[:-1]), len(prompt), prefix + [segment[x]])
        return row


def _score(model: Any, rows: list[_Row], totals: np.ndarray, device: Any, temperature: float) -> None:
    """One forward pass over ``rows``; each pair's log-likelihood goes into ``totals[j, x]``."""
    import torch

    width = max(len(r.tokens) for r in rows)
    ids = torch.zeros((len(rows), width), dtype=torch.long)
    positions = torch.zeros((len(rows), width), dtype=torch.long)
    visible = torch.zeros((len(rows), width, width), dtype=torch.bool)
    for r, row in enumerate(rows):
        ids[r, :len(row.tokens)] = torch.tensor(row.tokens)
        positions[r, :len(row.positions)] = torch.tensor(row.positions)
        for a, b, sees in row.segments:
            visible[r, a:b, a:b] = torch.ones((b - a, b - a), dtype=torch.bool).tril()
            for s in sees:
                visible[r, a:b, row.segments[s][0]:row.segments[s][1]] = True
    dtype = getattr(model, "dtype", torch.float32)
    # Additive, as eager and SDPA attention both take it; a padding query sees nothing and is never read.
    mask = torch.zeros(visible.shape, dtype=dtype).masked_fill(~visible, torch.finfo(dtype).min)[:, None]
    # The columns any row predicts from, as a 1-D logits_to_keep: transformers 5.0 takes no 2-D one.
    columns = sorted({c for row in rows for c, _, _ in row.predicts})
    where = {c: k for k, c in enumerate(columns)}
    logits = model(input_ids=ids.to(device), position_ids=positions.to(device), attention_mask=mask.to(device),
                   use_cache=False, logits_to_keep=torch.tensor(columns, device=device)).logits
    at_row = torch.tensor([r for r, row in enumerate(rows) for _ in row.predicts], device=logits.device)
    at_column = torch.tensor([where[c] for row in rows for c, _, _ in row.predicts], device=logits.device)
    picked = logits[at_row, at_column].float()  # (predicted tokens, vocabulary): float32 only here
    logp = torch.log_softmax(picked if temperature == 1.0 else picked / temperature, dim=-1)
    targets = torch.tensor([t for row in rows for _, t, _ in row.predicts], device=logp.device)
    values = logp[torch.arange(len(targets), device=logp.device), targets].double().cpu().numpy()
    k = 0
    for row in rows:
        sums = np.bincount([p for _, _, p in row.predicts], weights=values[k:k + len(row.predicts)],
                           minlength=len(row.pairs))
        k += len(row.predicts)
        for (j, x), value in zip(row.pairs, sums, strict=True):
            totals[j, x] = value
