"""DAPO's dynamic sampling on TRL's GRPOTrainer: groups whose rewards are all equal are dropped and refilled.

A group of `num_generations` completions whose rewards are all equal (all right, all wrong, all unscorable) has
zero advantage everywhere, so it adds no gradient but still takes a share of the loss's token count and of the
batch. DAPO (Yu et al. 2025, arXiv 2503.14476, sec. 3.2, eq. 11) over-samples and keeps only groups with
0 < correct < G; here "all equal" is judged on the summed, weighted reward the advantages are computed from (with
format_weight 0 and no overlong shaping that is DAPO's rule exactly).

`trainer_class()` returns a GRPOTrainer subclass (trl 1.14.2) that, after each generation batch is generated and
scored:
- counts the all-equal groups (`groups_all_equal`, and their share `groups_all_equal_share`) into the logged
  metrics (train_log.jsonl, the progress bar), always;
- with `dynamic_sampling=True`, drops them and generates groups for new questions (drawn from the training set
  in a seeded order) for at most `rounds` extra rounds, keeping the informative ones until the batch is whole
  again (`groups_refilled`, `refill_rounds`); still missing groups are filled with dropped ones (zero advantage,
  so they only dilute) and counted (`groups_short`).
Each step also logs `rollout_s`, the seconds of its (first) generation call, weight sync included.
The logged reward and accuracy stay those of the first draw (a sample of the training set, comparable across
steps); verdict totals count every completion graded, refills included. The merged batch keeps TRL's layout:
prompts left-padded, completions right-padded, and `num_items_in_batch` recounted over the kept tokens.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from typing import Any

# batch keys padded on the left (prompts) or on the right (completions and per-token values); 1-D keys are
# concatenated as they are. Any other key (images) is refused: arithmo's GRPO is text-only.
LEFT_PADDED = {"prompt_ids": "pad", "prompt_mask": 0}
RIGHT_PADDED = {"completion_ids": "pad", "completion_mask": 0, "old_per_token_logps": 0.0,
                "ref_per_token_logps": 0.0, "sampling_per_token_logps": 0.0, "importance_sampling_ratio": 0.0,
                "tool_mask": 0}
FLAT = {"advantages"}


def all_equal_groups(rewards: list[float], group_size: int, tolerance: float = 1e-6) -> list[bool]:
    """For consecutive groups of `group_size` rewards: True where every scorable reward (not NaN) is equal within
    `tolerance`, or none is scorable. Raises ValueError when the rewards do not split into whole groups."""
    if group_size < 1 or len(rewards) % group_size:
        raise ValueError(f"all_equal_groups: {len(rewards)} rewards do not split into groups of {group_size}")
    flags = []
    for start in range(0, len(rewards), group_size):
        scored = [r for r in rewards[start:start + group_size] if r == r]  # NaN != NaN: unscorable
        flags.append(not scored or max(scored) - min(scored) <= tolerance)
    return flags


def merge_batches(parts: list[tuple[dict[str, Any], list[int]]], pad_token_id: int) -> dict[str, Any]:
    """One TRL generation batch from rows of several: `parts` is [(batch, row indices to keep)], in order.

    Prompt tensors are left-padded to the widest, completion tensors right-padded, 1-D tensors concatenated;
    `num_items_in_batch` is recounted as the kept completion tokens (times tool_mask when present). Raises
    ValueError for a key this does not know how to merge (images, per-image counts).
    """
    import torch

    keys = list(parts[0][0])
    merged: dict[str, Any] = {}
    for key in keys:
        if key == "num_items_in_batch":
            continue
        pieces = [batch[key][torch.as_tensor(rows, dtype=torch.long, device=batch[key].device)]
                  for batch, rows in parts if rows]
        if key in FLAT:
            merged[key] = torch.cat(pieces)
            continue
        if key not in LEFT_PADDED and key not in RIGHT_PADDED:
            raise ValueError(f"dynamic sampling cannot merge the batch key {key!r} (text-only GRPO)")
        fill = (LEFT_PADDED | RIGHT_PADDED)[key]
        value = pad_token_id if fill == "pad" else fill
        width = max(piece.size(1) for piece in pieces)
        padded = []
        for piece in pieces:
            extra = piece.new_full((piece.size(0), width - piece.size(1)), value)
            padded.append(torch.cat([extra, piece] if key in LEFT_PADDED else [piece, extra], dim=1))
        merged[key] = torch.cat(padded)
    mask = merged["completion_mask"] * merged["tool_mask"] if "tool_mask" in merged else merged["completion_mask"]
    merged["num_items_in_batch"] = mask.sum()
    return merged


def trainer_class():
    """A GRPOTrainer subclass with the counting and (when `dynamic_sampling`) refilling above. Its instances take
    `dynamic_sampling` (bool) and `dynamic_sampling_rounds` (int) as attributes set after construction."""
    import torch
    from trl import GRPOTrainer

    class ArithmoGRPOTrainer(GRPOTrainer):
        dynamic_sampling = False
        dynamic_sampling_rounds = 3
        dynamic_seed = 0

        def _generate_single_turn(self, *args, **kwargs):
            # the rollout's seconds (weight sync included) beside TRL's step_time: what bench/ compares
            start = time.perf_counter()
            result = super()._generate_single_turn(*args, **kwargs)
            self._metrics["train" if self.model.training else "eval"]["rollout_s"].append(time.perf_counter() - start)
            return result

        def _calculate_rewards(self, inputs, prompts, completions, completion_ids_list):
            rewards_per_func = super()._calculate_rewards(inputs, prompts, completions, completion_ids_list)
            weighted = (rewards_per_func * self.reward_weights.to(rewards_per_func.device).unsqueeze(0)).nansum(dim=1)
            weighted[torch.isnan(rewards_per_func).all(dim=1)] = float("nan")  # unscorable, as TRL marks them
            self._last_rewards = weighted.tolist()
            return rewards_per_func

        @property
        def dynamic_totals(self) -> Counter:
            if not hasattr(self, "_dynamic_totals"):
                self._dynamic_totals = Counter()
            return self._dynamic_totals

        def _refill_rows(self, count: int) -> list[dict]:
            """`count` training rows in a seeded shuffled order that continues across steps (a second pass
            reshuffles)."""
            if not hasattr(self, "_refill_order"):
                self._refill_rng = random.Random(self.dynamic_seed)
                self._refill_order: list[int] = []
            rows = []
            for _ in range(count):
                if not self._refill_order:
                    self._refill_order = list(range(len(self.train_dataset)))
                    self._refill_rng.shuffle(self._refill_order)
                rows.append(self.train_dataset[self._refill_order.pop()])
            return rows

        def _generate_and_score_completions(self, inputs):
            output = super()._generate_and_score_completions(inputs)
            if not self.model.training:
                return output
            size = self.num_generations
            flat = all_equal_groups(self._last_rewards, size)
            metrics = self._metrics["train"]
            count = sum(flat)
            self.dynamic_totals.update(groups=len(flat), groups_all_equal=count)
            if not self.dynamic_sampling or not count:
                metrics["groups_all_equal"].append(float(count))
                metrics["groups_all_equal_share"].append(count / len(flat))
                if self.dynamic_sampling:
                    metrics["groups_refilled"].append(0.0)
                    metrics["groups_short"].append(0.0)
                    metrics["refill_rounds"].append(0.0)
                return output
            # refills log their own reward and accuracy through TRL: keep only the first draw's
            lengths = {key: len(values) for key, values in metrics.items()}

            def rows_of(groups: list[int]) -> list[int]:
                return [g * size + i for g in groups for i in range(size)]

            keep = [(output, rows_of([g for g, equal in enumerate(flat) if not equal]))]
            missing, rounds = count, 0
            while missing and rounds < self.dynamic_sampling_rounds:
                rounds += 1
                extra_rows = [row for row in self._refill_rows(missing) for _ in range(size)]
                extra = super()._generate_and_score_completions(extra_rows)
                good = [g for g, equal in enumerate(all_equal_groups(self._last_rewards, size)) if not equal]
                self.dynamic_totals.update(refill_groups_generated=missing, refill_groups_all_equal=missing - len(good))
                good = good[:missing]
                if good:
                    keep.append((extra, rows_of(good)))
                    missing -= len(good)
            if missing:  # still short after the last round: dropped groups fill the shape (zero advantage)
                keep.append((output, rows_of([g for g, equal in enumerate(flat) if equal][:missing])))
            for key in list(metrics):
                if key in lengths:
                    del metrics[key][lengths[key]:]
                else:
                    del metrics[key]
            metrics["groups_all_equal"].append(float(count))
            metrics["groups_all_equal_share"].append(count / len(flat))
            metrics["groups_refilled"].append(float(count - missing))
            metrics["groups_short"].append(float(missing))
            metrics["refill_rounds"].append(float(rounds))
            self.dynamic_totals.update(groups_refilled=count - missing, groups_short=missing, refill_rounds=rounds)
            merged = merge_batches(keep, self._tokenizer.pad_token_id)
            merged["num_items_in_batch"] = self.accelerator.gather(merged["num_items_in_batch"]).sum()
            return merged

    return ArithmoGRPOTrainer
