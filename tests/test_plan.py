"""The memory planner (arithmo/plan.py) against every GPU row measured in docs/measurements.md, its parts by hand,
every preset's readable output, bad input, and auto_fit on a fake card size."""

import copy
import dataclasses
import json
import math

import pytest

from arithmo import plan
from arithmo.config import ConfigError
from arithmo.plan import Setup, estimate, find_arch, largest_seq_len

GiB = float(1 << 30)
MISTRAL = "mistralai/Mistral-7B-v0.1"


def bench_setup(stack: str, batch: int, seq: int, **extra) -> Setup:
    """The measured bench's stacks (docs/measurements.md, GPU anchors): NF4 + double quant, bf16, LoRA r=16 on
    the seven linears, AdamW8bit, one plain loop with labels = input ids. The HF and Liger stacks went through
    peft's prepare_model_for_kbit_training (fp32 embeddings and lm_head, checkpointing on the GPU); HF computes
    transformers' full loss, Liger its fused linear cross-entropy; unsloth its own."""
    knobs = {"hf": dict(embed_bytes=4, loss="full", offload=False),
             "liger": dict(embed_bytes=4, loss="fused", offload=False),
             "unsloth": dict(loss="unsloth")}[stack]
    return Setup(engine=stack, micro_batch=batch, seq_len=seq, lora_r=16, optimizer="adamw_bnb_8bit",
                 gradient_checkpointing=True, **knobs, **extra)


# (stack, micro-batch, seq, measured peak reserved GiB): every reserved figure of docs/measurements.md.
MEASURED_RESERVED = [
    ("hf", 4, 2048, 15.38),
    ("hf", 1, 4096, 10.23),
    ("hf", 1, 8192, 15.41),
    ("unsloth", 4, 2048, 6.69),
    ("unsloth", 1, 4096, 5.56),
    ("unsloth", 1, 8192, 6.79),
    ("liger", 4, 2048, 12.37),
    ("liger", 1, 4096, 8.75),
]

# (stack, allocator, longest seq that fit at batch 1 under a 22 GiB cap, the bench's search step). The bench
# doubled from 4096 and bisected in 256-aligned midpoints down to 2048 apart (14,336 and 18,432 are its
# midpoints); the cap (set_per_process_memory_fraction) excludes the CUDA context.
MEASURED_LONGEST = [
    ("hf", "default", 14336, 2048),
    ("hf", "expandable", 16384, 2048),
    ("liger", "expandable", 18432, 2048),
    ("unsloth", "default", 45056, 2048),
]


@pytest.mark.parametrize("stack, batch, seq, measured", MEASURED_RESERVED)
def test_planner_within_15_percent_of_each_measured_row(stack, batch, seq, measured):
    predicted = estimate(find_arch(MISTRAL), bench_setup(stack, batch, seq)).peak_reserved_gib
    print(f"{stack} {batch}x{seq}: measured {measured} GiB, predicted {predicted:.2f} GiB "
          f"({100 * (predicted / measured - 1):+.1f}%)")
    assert abs(predicted / measured - 1) <= 0.15


@pytest.mark.parametrize("stack, allocator, measured, step", MEASURED_LONGEST)
def test_longest_sequence_within_one_step(stack, allocator, measured, step):
    """One-sided, as the measurement means: `measured` fit and `measured + step` did not, so the true longest
    length lies in [measured, measured + step); the exact prediction (binary search to the token) must too. A
    prediction below `measured` (it fit) or at `measured + step` (it did not) is wrong."""
    # limit: the bench searched a copy whose max_position_embeddings was raised past 32,768 (same weights)
    predicted = largest_seq_len(find_arch(MISTRAL), bench_setup(stack, 1, 1024, allocator=allocator), 22.0,
                                limit=131072, context=False)
    print(f"{stack} ({allocator}): longest measured {measured} (next {measured + step} did not fit), "
          f"predicted {predicted}")
    assert measured <= predicted < measured + step


def test_measured_allocated_rows_also_close():
    # The bench printed allocated beside reserved; the planner's allocated = static + transient.
    rows = [("hf", 4, 2048, 12.47), ("hf", 1, 4096, 8.67), ("hf", 1, 8192, 12.76),
            ("unsloth", 4, 2048, 6.35), ("unsloth", 1, 4096, 5.39), ("unsloth", 1, 8192, 6.46)]
    for stack, batch, seq, measured in rows:
        p = estimate(find_arch(MISTRAL), bench_setup(stack, batch, seq))
        assert abs((p.static_gib + p.transient_gib) / measured - 1) <= 0.10, (stack, batch, seq)


# ---- parts by hand -------------------------------------------------------------------------------------------

def test_nf4_bytes_per_parameter_with_and_without_double_quant():
    arch = find_arch(MISTRAL)
    n = arch.decoder_linear_params()
    assert n == 32 * (2 * 4096 * 4096 + 2 * 4096 * 1024 + 3 * 4096 * 14336)
    embeddings = arch.embedding_params() * 2  # bf16, untied: embed_tokens and lm_head
    norms = (2 * 32 + 1) * 4096 * 4
    for dq, per_param in [(True, 0.5 + 1 / 64 + 4 / 16384), (False, 0.5 + 4 / 64)]:  # QLoRA sec. 3
        p = estimate(arch, Setup(engine="unsloth", double_quant=dq))
        assert math.isclose(p.parts["base_weights"] * GiB, n * per_param + embeddings + norms, rel_tol=1e-9)
    # 16-bit base: 2 bytes per parameter
    p16 = estimate(arch, Setup(engine="unsloth", load_in_4bit=False))
    assert math.isclose(p16.parts["base_weights"] * GiB, n * 2 + embeddings + norms, rel_tol=1e-9)


def test_lora_grads_and_optimizer_by_hand():
    arch = find_arch(MISTRAL)
    per_layer = 16 * (8192 + 5120 + 5120 + 8192 + 3 * 18432)  # r x (in + out) over q k v o gate up down
    n = 32 * per_layer
    for optimizer, per_param in [("adamw_bnb_8bit", 2 + 8 / 256), ("adamw_torch", 8.0), ("paged_adamw_8bit",
                                                                                         2 + 8 / 256)]:
        p = estimate(arch, Setup(optimizer=optimizer))
        assert math.isclose(p.parts["lora_weights"] * GiB, n * 4)  # fp32 adapters
        assert math.isclose(p.parts["lora_grads"] * GiB, n * 4)
        assert math.isclose(p.parts["optimizer_state"] * GiB, n * per_param)
    only_q = estimate(arch, Setup(targets=("q_proj",)))
    assert math.isclose(only_q.parts["lora_weights"] * GiB, 32 * 16 * 8192 * 4)


def test_grpo_kv_cache_by_hand():
    arch = find_arch("Qwen/Qwen2.5-Math-7B")
    s = Setup(engine="unsloth", grpo=True, micro_batch=8, prompt_len=512, completion_len=512, seq_len=1024,
              generation_batch=64)
    p = estimate(arch, s)
    kv = 64 * 1024 * 28 * 2 * 4 * 128 * 2  # completions x tokens x layers x (K, V) x kv heads x head_dim x bf16
    assert math.isclose(p.parts["rollout_kv_cache"] * GiB, kv)
    # must NOT: an SFT setup has no rollout parts
    assert "rollout_kv_cache" not in estimate(arch, Setup(engine="unsloth")).parts
    # a colocated vLLM adds its share of the card
    card = plan.with_card(estimate(arch, dataclasses.replace(s, rollout="vllm", vllm_share=0.3)), 24.0)
    assert math.isclose(card.parts["rollout_engine_share"], 0.3 * 24.0)


def test_parts_add_up_to_the_peak():
    for stack, batch, seq, _ in MEASURED_RESERVED:
        p = estimate(find_arch(MISTRAL), bench_setup(stack, batch, seq))
        assert math.isclose(sum(p.parts.values()), p.peak_reserved_gib + plan.CUDA_CONTEXT_GIB, rel_tol=1e-9)


# (what changes, must lower the peak): each knob's direction, with the must-NOT direction beside it.
KNOB_DIRECTIONS = [
    (dict(gradient_checkpointing=True), dict(gradient_checkpointing=False)),   # checkpointing saves memory
    (dict(offload=True), dict(offload=False)),                                 # offloading saves more
    (dict(double_quant=True), dict(double_quant=False)),                       # DQ saves 0.37 bits/param
    (dict(optimizer="adamw_bnb_8bit"), dict(optimizer="adamw_torch")),         # 8-bit state is smaller
    (dict(loss="fused"), dict(loss="full")),                                   # no logits held
    (dict(loss="chunked"), dict(loss="full")),
    (dict(lora_r=16), dict(lora_r=64)),
    (dict(micro_batch=1), dict(micro_batch=4)),
    (dict(seq_len=2048), dict(seq_len=8192)),
    (dict(load_in_4bit=True), dict(load_in_4bit=False)),
]


@pytest.mark.parametrize("smaller, larger", KNOB_DIRECTIONS)
def test_each_knob_moves_the_peak_the_right_way(smaller, larger):
    arch = find_arch(MISTRAL)
    base = dict(engine="hf", seq_len=4096, micro_batch=2)
    low = estimate(arch, Setup(**{**base, **smaller})).peak_reserved_gib
    high = estimate(arch, Setup(**{**base, **larger})).peak_reserved_gib
    assert low < high


def test_unsloth_needs_less_than_the_hf_stack_and_fits_decisions():
    arch = find_arch(MISTRAL)
    hf, uns = bench_setup("hf", 4, 2048), bench_setup("unsloth", 4, 2048)
    assert estimate(arch, uns).peak_reserved_gib < estimate(arch, hf).peak_reserved_gib
    assert plan.fits(arch, uns, 24.0) and plan.fits(arch, hf, 24.0)
    assert not plan.fits(arch, hf, 12.0)       # must NOT fit: 15 GiB measured
    assert not plan.fits(arch, uns, 4.0)       # must NOT fit: the weights alone are 3.8 GiB
    assert plan.largest_micro_batch(arch, uns, 3.0) == 0


# ---- architectures and bad input ---------------------------------------------------------------------------

def test_config_json_from_a_local_folder(tmp_path):
    config = {"model_type": "llama", "vocab_size": 1000, "hidden_size": 64, "intermediate_size": 128,
              "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2, "tie_word_embeddings": True}
    (tmp_path / "config.json").write_text(json.dumps(config))
    arch = find_arch(str(tmp_path))
    assert (arch.head_dim, arch.kv_heads, arch.tied, arch.sliding_window) == (16, 2, True, None)
    assert arch.embedding_params() == 1000 * 64  # tied: counted once


# (what is wrong, the words the error must contain)
BAD = [
    ({"vocab_size": 10}, "hidden_size"),                       # missing keys are named
    ({"vocab_size": 0, "hidden_size": 8, "intermediate_size": 8, "num_hidden_layers": 1,
      "num_attention_heads": 1}, "vocab_size"),                 # non-positive is refused
    ([1, 2], "expected a JSON object"),
]


@pytest.mark.parametrize("config, words", BAD)
def test_bad_config_json_names_the_key(tmp_path, config, words):
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(plan.PlanError, match=words):
        find_arch(str(tmp_path))


def test_unknown_model_and_bad_knobs_are_clear_errors(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))  # nothing cached
    with pytest.raises(plan.PlanError, match="no config.json found"):
        find_arch("someone/unknown-model")
    with pytest.raises(plan.PlanError, match="plan.nonsense"):
        plan.report("mistral7b_qlora", ["plan.nonsense=1"], 24.0)
    with pytest.raises(plan.PlanError, match="plan.loss"):
        plan.report("mistral7b_qlora", ["plan.loss=tiny"], 24.0)
    with pytest.raises(plan.PlanError, match="GRPO configs only"):
        plan.report("mistral7b_qlora", ["plan.rollout=vllm"], 24.0)
    with pytest.raises(plan.PlanError, match="target_modules"):
        estimate(find_arch(MISTRAL), Setup(targets=("lm_head_typo",)))
    with pytest.raises(plan.PlanError, match="optimizer"):
        estimate(find_arch(MISTRAL), Setup(optimizer="adamw_quantum"))


def test_the_hub_cache_config_wins_over_the_table(tmp_path, monkeypatch):
    snap = tmp_path / "models--mistralai--Mistral-7B-v0.1" / "snapshots" / "abc"
    snap.mkdir(parents=True)
    (snap / "config.json").write_text(json.dumps({**{k: v for k, v in plan.KNOWN_ARCHITECTURES[MISTRAL].items()
                                                     if not k.startswith("_")}, "num_hidden_layers": 2}))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    assert find_arch(MISTRAL).layers == 2
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty"))
    assert find_arch(MISTRAL).layers == 32


# ---- the command, for every preset ---------------------------------------------------------------------------

@pytest.mark.parametrize("preset", plan.all_presets())
def test_every_preset_prints_a_readable_breakdown(preset, capsys):
    assert plan.main(["--preset", preset, "--gpu-gb", "24"]) == 0
    out = capsys.readouterr().out
    for words in ("base weights", "LoRA weights", "optimizer state", "activations", "logits and loss",
                  "CUDA context", "allocator cache", "peak reserved", "largest micro-batch"):
        assert words in out, (preset, words)
    assert ("fits a 24 GiB card" in out) or ("does NOT fit" in out)
    if preset.startswith("grpo/"):
        assert "rollout KV cache" in out
    assert plan.main(["--preset", preset, "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert set(result) >= {"peak_reserved_gib", "parts", "fits"}
    assert isinstance(result["fits"], bool) and result["peak_reserved_gib"] > 0


def test_fits_flips_with_the_card_size(capsys):
    assert plan.main(["--preset", "mistral7b_qlora", "--gpu-gb", "80", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["fits"] is True
    assert plan.main(["--preset", "mistral7b_qlora", "--gpu-gb", "4", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["fits"] is False
    assert plan.main(["--preset", "mistral7b_qlora", "--gpu-gb", "-1"]) == 2
    assert plan.main(["--preset", "no_such_preset"]) == 2
    assert "not found" in capsys.readouterr().err


def test_overrides_reach_the_plan(capsys):
    plan.main(["--preset", "mistral7b_qlora", "plan.engine=hf", "micro_batch_size=1", "--json"])
    one = json.loads(capsys.readouterr().out)
    plan.main(["--preset", "mistral7b_qlora", "plan.engine=hf", "micro_batch_size=8", "--json"])
    eight = json.loads(capsys.readouterr().out)
    assert one["peak_reserved_gib"] < eight["peak_reserved_gib"]
    assert one["parts"]["base_weights"] == eight["parts"]["base_weights"]


# ---- auto_fit on a fake card ---------------------------------------------------------------------------------

def _cfg(**overrides):
    cfg, knobs = plan.load_any_config("mistral7b_qlora", [f"{k}={v}" for k, v in overrides.items()])
    return cfg


# (card GiB, start, expected micro-batch, expected checkpointing, must the reasons say "still does not fit")
AUTO_FIT = [
    (80.0, dict(micro_batch_size=4, grad_accum=16), 4, True, False),      # fits: unchanged
    (12.0, dict(micro_batch_size=16, grad_accum=4), None, True, False),   # halves until it fits, keeps 64
    (12.0, {"model.gradient_checkpointing": "false", "micro_batch_size": 4, "grad_accum": 16}, None, True, False),
    (3.0, dict(micro_batch_size=4, grad_accum=16), 1, True, True),        # not even micro 1: says so
]


@pytest.mark.parametrize("card, start, micro, checkpointing, hopeless", AUTO_FIT)
def test_auto_fit_keeps_the_effective_batch(card, start, micro, checkpointing, hopeless, monkeypatch):
    monkeypatch.setattr(plan, "offload_engine_available", lambda: False)  # engine hf stays hf on every machine
    cfg = _cfg(**start)
    knobs = {"engine": "hf"}  # the same on every machine, whatever is installed
    new, reasons = plan.auto_fit(cfg, card, knobs)
    print(reasons)
    assert new.micro_batch_size * new.grad_accum == cfg.micro_batch_size * cfg.grad_accum
    assert new.model.gradient_checkpointing is checkpointing
    if micro is not None:
        assert new.micro_batch_size == micro
    assert ("still does not fit" in reasons[-1]) is hopeless
    if not hopeless:
        arch, s, _ = plan.setup_from_config(new, knobs)
        assert plan.fits(arch, s, card)
    assert cfg.micro_batch_size == start.get("micro_batch_size", cfg.micro_batch_size)  # the input is not edited


# (card GiB, must the result fit): the GRPO preset (64 completions per rollout, peak in the rollout's KV cache)
AUTO_FIT_GRPO = [
    (24.0, True),    # fits as configured: unchanged
    (12.0, True),    # the rollout is the peak: fewer completions per rollout
    (10.0, True),
    (8.5, True),     # one question's 8 completions per step
    (8.0, False),    # must NOT claim a fit: not even one question's group fits -> says so
    (4.0, False),    # must NOT: the weights alone are 4.5 GiB
]


@pytest.mark.parametrize("card, fits", AUTO_FIT_GRPO)
def test_auto_fit_grpo_keeps_whole_groups(card, fits):
    """auto_fit shrinks what drives a GRPO peak (the generation batch, micro x accum completions generated at once)
    in whole groups, and the config it returns fits; keeping micro x accum fixed (the old behaviour) could not."""
    cfg, _ = plan.load_any_config("grpo/qwen25math7b_qlora", [])
    knobs = {"engine": "unsloth"}
    new, reasons = plan.auto_fit(cfg, card, knobs)
    print(card, reasons)
    assert (new.micro_batch_size * new.grad_accum) % new.num_generations == 0
    new.validate()  # arithmo.grpo accepts it
    arch, s, _ = plan.setup_from_config(new, knobs)
    assert plan.fits(arch, s, card) is fits
    assert ("still does not fit" in reasons[-1]) is (not fits)
    if fits and card < 24:
        assert new.micro_batch_size * new.grad_accum < cfg.micro_batch_size * cfg.grad_accum
        assert "generation batch" in reasons[-1] and "effective batch is now" in reasons[-1]
    if card >= 24:  # must NOT change a config that fits
        assert (new.micro_batch_size, new.grad_accum) == (cfg.micro_batch_size, cfg.grad_accum)


# (card GiB, start, offload available here, expected engine, checkpointing, micro, words in the reasons, words
# that must NOT be there). The engine is model.engine=hf (plan.engine unset), so the switch is visible.
AUTO_FIT_MEMORY = [
    (80.0, {"model.gradient_checkpointing": "false"}, True, "hf", False, 4, "fits as configured", "offload:"),
    (40.0, {"model.gradient_checkpointing": "false"}, True, "hf", True, 4, "checkpointing:", "offload:"),
    (10.0, {}, True, "kernels", True, 4, "offload: engine=hf", "micro_batch_size=2"),
    (10.0, {"model.gradient_checkpointing": "false"}, True, "kernels", True, 4, "offload: engine=hf",
     "still does not fit"),
    (10.0, {}, False, "hf", True, 2, "offload: not available", "engine=kernels keeps"),
    (10.0, {"plan.engine": "liger"}, True, "kernels", True, 4, "offload: engine=liger", "micro_batch_size=2"),
    (10.0, {"model.engine": "unsloth", "model.gradient_checkpointing": "false"}, True, "unsloth", True, 4,
     "checkpointing:", "offload:"),                                    # unsloth offloads already: no switch
]


@pytest.mark.parametrize("card, start, available, engine, checkpointing, micro, said, unsaid", AUTO_FIT_MEMORY)
def test_auto_fit_chooses_checkpointing_and_offload(card, start, available, engine, checkpointing, micro, said,
                                                    unsaid, monkeypatch):
    monkeypatch.setattr(plan, "offload_engine_available", lambda: available)
    knobs = {k.removeprefix("plan."): v for k, v in start.items() if k.startswith("plan.")}
    cfg = _cfg(**{"micro_batch_size": 4, "grad_accum": 16, "model.max_seq_length": 2048, "model.engine": "hf",
                  **{k: v for k, v in start.items() if not k.startswith("plan.")}})
    new, reasons = plan.auto_fit(cfg, card, knobs)
    if new.model.engine != cfg.model.engine:
        knobs.pop("engine", None)  # the switch replaces a plan.engine the run was planned with
    text = " | ".join(reasons)
    print(text)
    assert (new.model.engine, new.model.gradient_checkpointing, new.micro_batch_size) == (engine, checkpointing,
                                                                                          micro)
    assert said in text and unsaid not in text
    arch, s, _ = plan.setup_from_config(new, knobs)
    assert plan.fits(arch, s, card)


def test_training_plan_on_a_fake_12_gib_card(monkeypatch):
    """The recipe's hook: on a CUDA device of 12 GiB (faked), auto_fit halves the micro-batch and the plan for
    summary.json carries the prediction; without CUDA it changes nothing and returns no plan."""
    import types

    import torch

    cfg = _cfg(micro_batch_size=16, grad_accum=4, **{"model.auto_fit": "true", "model.engine": "hf"})
    monkeypatch.setattr(plan, "offload_engine_available", lambda: False)  # the same choices on every machine
    said = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    same, none = plan.training_plan(cfg, say=lambda *a, **k: said.append(a[0]))
    assert same is cfg and none is None and "no CUDA" in said[-1]
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda i: types.SimpleNamespace(total_memory=12 * 2**30))
    fitted, memory_plan = plan.training_plan(cfg, say=lambda *a, **k: said.append(a[0]))
    assert fitted.micro_batch_size < 16 and fitted.micro_batch_size * fitted.grad_accum == 64
    assert memory_plan["gpu_gib"] == 12.0 and memory_plan["predicted_required_gib"] <= 12.0
    assert memory_plan["auto_fit"] and any("auto_fit" in line for line in said)
    # must NOT change anything without model.auto_fit, but still predicts
    cfg.model.auto_fit = False
    kept, predicted_only = plan.training_plan(cfg, say=lambda *a, **k: None)
    assert kept.micro_batch_size == 16 and predicted_only["auto_fit"] == []
    assert predicted_only["predicted_required_gib"] > 12.0


# ---- mixture of experts and attention the formula does not model ---------------------------------------------

def _arch_of(tmp_path, config: dict) -> plan.Arch:
    (tmp_path / "config.json").write_text(json.dumps(config))
    return find_arch(str(tmp_path))


_LLAMA = {"model_type": "llama", "vocab_size": 32000, "hidden_size": 4096, "intermediate_size": 14336,
          "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 8,
          "max_position_embeddings": 32768, "tie_word_embeddings": False}
# the published config.json fields of each model (huggingface.co/<id>/blob/main/config.json)
MIXTRAL = {**_LLAMA, "model_type": "mixtral", "num_local_experts": 8, "num_experts_per_tok": 2}
QWEN3_MOE = {"model_type": "qwen3_moe", "vocab_size": 151936, "hidden_size": 2048, "intermediate_size": 6144,
             "moe_intermediate_size": 768, "num_experts": 128, "num_experts_per_tok": 8, "num_hidden_layers": 48,
             "num_attention_heads": 32, "num_key_value_heads": 4, "head_dim": 128, "max_position_embeddings": 40960,
             "decoder_sparse_step": 1, "mlp_only_layers": [], "tie_word_embeddings": False}
QWEN15_MOE = {"model_type": "qwen2_moe", "vocab_size": 151936, "hidden_size": 2048, "intermediate_size": 5632,
              "moe_intermediate_size": 1408, "shared_expert_intermediate_size": 5632, "num_experts": 60,
              "num_experts_per_tok": 4, "num_hidden_layers": 24, "num_attention_heads": 16,
              "num_key_value_heads": 16, "max_position_embeddings": 8192, "tie_word_embeddings": False}
DEEPSEEK_MOE = {"model_type": "deepseek", "vocab_size": 102400, "hidden_size": 2048, "intermediate_size": 10944,
                "moe_intermediate_size": 1408, "n_routed_experts": 64, "n_shared_experts": 2,
                "num_experts_per_tok": 6, "first_k_dense_replace": 1, "num_hidden_layers": 28,
                "num_attention_heads": 16, "num_key_value_heads": 16, "max_position_embeddings": 4096}


def _moe_params(h, layers, attn, dense_layers, i, moe_layers, experts, width, shared):
    return layers * attn + dense_layers * 3 * h * i + moe_layers * (experts * 3 * h * width + 3 * h * shared
                                                                     + h * experts)


# (config, decoder linear parameters by hand, published total parameters in billions): every expert is resident
MOE_PARAMS = [
    (MIXTRAL, _moe_params(4096, 32, 2 * 4096 * 4096 + 2 * 4096 * 1024, 0, 14336, 32, 8, 14336, 0), 46.7),
    (QWEN3_MOE, _moe_params(2048, 48, 2 * 2048 * 4096 + 2 * 2048 * 512, 0, 6144, 48, 128, 768, 0), 30.5),
    (QWEN15_MOE, _moe_params(2048, 24, 4 * 2048 * 2048, 0, 5632, 24, 60, 1408, 5632), 14.3),
    (DEEPSEEK_MOE, _moe_params(2048, 28, 4 * 2048 * 2048, 1, 10944, 27, 64, 1408, 2 * 1408), 16.4),
]


@pytest.mark.parametrize("config, by_hand, published_b", MOE_PARAMS)
def test_moe_weights_count_every_expert(tmp_path, config, by_hand, published_b):
    arch = _arch_of(tmp_path, config)
    assert arch.decoder_linear_params() == by_hand
    total_b = (arch.decoder_linear_params() + arch.embedding_params()) / 1e9
    assert abs(total_b / published_b - 1) < 0.03, total_b  # the model cards' parameter counts
    # must NOT plan it as the dense model its attention and intermediate_size describe
    dense = _arch_of(tmp_path, {k: v for k, v in config.items() if k not in (
        "num_local_experts", "num_experts", "n_routed_experts")})
    assert dense.moe_layers == 0 and dense.decoder_linear_params() < 0.6 * by_hand


# (config, card GiB, fits): Mixtral's NF4 weights alone are 22.8 GiB (the review found 3.84 and "fits 24 GiB")
MOE_FITS = [
    (MIXTRAL, 24.0, False),     # must NOT fit 24 GiB
    (MIXTRAL, 40.0, True),
    (QWEN3_MOE, 12.0, False),   # must NOT fit: 15.5 GiB of NF4 experts
    (QWEN3_MOE, 24.0, True),
]


@pytest.mark.parametrize("config, card, fits", MOE_FITS)
def test_moe_fits_by_all_experts(tmp_path, config, card, fits):
    arch = _arch_of(tmp_path, config)
    assert plan.fits(arch, Setup(engine="unsloth", seq_len=2048), card) is fits


def test_moe_activations_use_the_active_experts_only(tmp_path):
    """Per token a MoE layer runs experts_per_tok experts (+ a shared MLP): its activations grow like a dense
    model of that width, not of all experts' width (must NOT) and not of one expert's (must NOT)."""
    arch = _arch_of(tmp_path, MIXTRAL)
    setup = Setup(engine="hf", seq_len=4096, gradient_checkpointing=False, loss="fused")
    moe = estimate(arch, setup).transient_gib
    like = {**_LLAMA}
    low = estimate(_arch_of(tmp_path, {**like, "intermediate_size": 14336}), setup).transient_gib      # 1 expert
    high = estimate(_arch_of(tmp_path, {**like, "intermediate_size": 8 * 14336}), setup).transient_gib  # all 8
    two = estimate(_arch_of(tmp_path, {**like, "intermediate_size": 2 * 14336}), setup).transient_gib   # top-2
    assert low < moe < high
    assert abs(moe / two - 1) < 0.10  # top-2 plus routing copies


# (config change, words of the error, or None: must plan). Variants the formula does not model are refused.
ATTENTION = [
    ({"kv_lora_rank": 512, "qk_rope_head_dim": 64, "q_lora_rank": None}, "multi-head latent attention"),
    ({"q_lora_rank": 1536}, "multi-head latent attention"),
    ({"layer_types": ["linear_attention", "full_attention"]}, "unsupported layer_types linear_attention"),
    ({"is_encoder_decoder": True}, "encoder-decoder"),
    ({"num_local_experts": 8}, "num_experts_per_tok"),               # experts without a routing width
    ({"num_local_experts": 8, "num_experts_per_tok": 9}, "num_experts_per_tok"),
    ({"kv_lora_rank": None, "q_lora_rank": None}, None),              # must NOT refuse: nulls are not MLA
    ({"layer_types": ["sliding_attention", "full_attention"]}, None),  # Gemma-2/3 style windows are modelled
    ({"num_experts": 1}, None),                                        # one expert: a dense MLP
    ({"is_encoder_decoder": False}, None),
    ({"num_local_experts": 8, "num_experts_per_tok": 2}, None),
    ({"head_dim": 128, "num_key_value_heads": 32}, None),
]


@pytest.mark.parametrize("change, words", ATTENTION)
def test_unmodelled_attention_is_one_error(tmp_path, change, words):
    if words is None:
        assert _arch_of(tmp_path, {**_LLAMA, **change}).layers == 32
    else:
        with pytest.raises(plan.PlanError, match=words):
            _arch_of(tmp_path, {**_LLAMA, **change})


# ---- bad input: one error: line, exit 2 ----------------------------------------------------------------------

# (config.json text or None for the Mistral preset's own, extra arguments, words of the one error line or None:
# must run and exit 0). Each bad row is a kind the review found accepted or crashing.
CLI_INPUT = [
    (json.dumps({**_LLAMA, "num_key_value_heads": "8"}), [], "num_key_value_heads: expected an integer"),
    (json.dumps({**_LLAMA, "vocab_size": True}), [], "vocab_size: expected an integer"),
    (json.dumps({**_LLAMA, "num_attention_heads": -32}), [], "num_attention_heads: expected an integer >= 1"),
    (json.dumps({**_LLAMA, "num_key_value_heads": 0}), [], "num_key_value_heads"),
    (json.dumps({**_LLAMA, "num_key_value_heads": 8.0}), [], "num_key_value_heads: expected an integer"),
    (json.dumps({**_LLAMA, "num_key_value_heads": 5}), [], "not a multiple"),
    (json.dumps({**_LLAMA, "sliding_window": "4096"}), [], "sliding_window"),
    (json.dumps({**_LLAMA, "tie_word_embeddings": "no"}), [], "tie_word_embeddings: expected true or false"),
    (json.dumps({"text_config": {**_LLAMA, "max_position_embeddings": "4096"}}), [], "max_position_embeddings"),
    ("{not json", [], "not valid JSON"),
    ('{"vocab_size": NaN}', [], "not valid JSON"),
    ("null", [], "expected a JSON object"),
    (b'{"model_type": "\xe9"}', [], "not UTF-8"),
    ("", [], "not valid JSON"),
    (None, ["plan.prompt_length=600"], "GRPO configs only"),
    (None, ["plan.offload=maybe"], "plan.offload: expected true or false"),
    (None, ["plan.double_quant=1"], "plan.double_quant"),
    (None, ["plan.engine=7"], "plan.engine"),
    (None, ["plan.allocator=3"], "plan.allocator"),
    (None, ["--gpu-gb", "nan"], "--gpu-gb"),
    (None, ["--gpu-gb", "inf"], "--gpu-gb"),
    (None, ["--gpu-gb", "0"], "--gpu-gb"),
    ("GRPO", ["plan.prompt_length=abc"], "plan.prompt_length: expected an integer"),
    ("GRPO", ["plan.prompt_length=-5"], "plan.prompt_length"),
    ("GRPO", ["plan.prompt_length=true"], "plan.prompt_length"),
    ("GRPO", ["plan.prompt_length=0.5"], "plan.prompt_length"),
    ("GRPO", ["plan.vllm_share=1.5", "plan.rollout=vllm"], "plan.vllm_share: expected a fraction in (0, 1)"),
    ("GRPO", ["plan.vllm_share=0", "plan.rollout=vllm"], "plan.vllm_share"),
    ("GRPO", ["plan.vllm_share=.nan", "plan.rollout=vllm"], "plan.vllm_share"),
    ("GRPO", ["plan.vllm_share=abc"], "plan.vllm_share"),
    ("GRPO", ["plan.rollout=sglang"], "plan.rollout"),
    # must NOT refuse: well-typed inputs, nulls where config.json allows them, edge values inside the ranges
    (json.dumps({**_LLAMA, "sliding_window": None}), [], None),
    (json.dumps({k: v for k, v in _LLAMA.items() if k != "num_key_value_heads"}), [], None),
    (json.dumps({**_LLAMA, "rope_theta": 500000.0, "rms_norm_eps": 1e-5, "head_dim": None}), [], None),
    (json.dumps({"model_type": "llava", "text_config": _LLAMA}), [], None),
    (json.dumps({**_LLAMA, "use_sliding_window": False, "sliding_window": 4096}), [], None),
    (json.dumps({**_LLAMA, "max_position_embeddings": None}), [], None),
    (json.dumps(MIXTRAL), ["--json"], None),
    (json.dumps(QWEN3_MOE), [], None),
    (None, ["plan.offload=true", "plan.double_quant=false"], None),
    (None, ["plan.engine=liger", "plan.allocator=expandable"], None),
    (None, ["--gpu-gb", "0.5"], None),
    (None, ["--gpu-gb", "1e3", "--json"], None),
    ("GRPO", ["plan.prompt_length=1"], None),
    ("GRPO", ["plan.prompt_length=3000"], None),
    ("GRPO", ["plan.vllm_share=0.5", "plan.rollout=vllm", "--json"], None),
    ("GRPO", ["plan.vllm_share=0.01", "plan.rollout=vllm"], None),
    ("GRPO", ["plan.rollout=hf"], None),
    (None, ["model.max_seq_length=32768", "--json"], None),
    (json.dumps({**_LLAMA, "num_key_value_heads": 32}), [], None),
    (json.dumps({**_LLAMA, "tie_word_embeddings": True}), [], None),
    (json.dumps({**_LLAMA, "layer_types": ["full_attention"] * 32}), [], None),
    (json.dumps({**_LLAMA, "num_experts": None}), [], None),
    (json.dumps({**_LLAMA, "num_experts": 1}), [], None),
    (json.dumps({**_LLAMA, "kv_lora_rank": None}), [], None),
    (json.dumps({**_LLAMA, "max_position_embeddings": 131072}), ["--json"], None),
    (json.dumps({**_LLAMA, "sliding_window": 1024}), [], None),
    (None, ["plan.embed_dtype=float32"], None),
    (None, ["plan.loss=fused"], None),
]


@pytest.mark.parametrize("config, args, words", CLI_INPUT)
def test_bad_input_is_one_error_line(tmp_path, capsys, config, args, words):
    preset = ["--preset", "grpo/qwen25math7b_qlora"] if config == "GRPO" else ["--preset", "mistral7b_qlora"]
    if config not in (None, "GRPO"):
        model = tmp_path / "model"
        model.mkdir()
        (model / "config.json").write_bytes(config if isinstance(config, bytes) else config.encode())
        preset.append(f"model.name={model}")
    code = plan.main(preset + args)
    out, err = capsys.readouterr()
    if words is None:
        assert code == 0 and err == "", err
        if "--json" in args:
            text = out
            assert "NaN" not in text and "Infinity" not in text
            json.loads(text, parse_constant=lambda word: pytest.fail(f"non-finite {word} in --json"))
        return
    assert code == 2 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and words in lines[0], err
    if config not in (None, "GRPO"):
        assert "config.json" in lines[0]  # names the file


def test_a_folder_named_config_json_is_one_error(tmp_path, capsys):
    (tmp_path / "config.json").mkdir()
    assert plan.main(["--preset", "mistral7b_qlora", f"model.name={tmp_path}"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "found a folder" in err[0] and str(tmp_path) in err[0]


# ---- GRPO prompt length and the model's positions ------------------------------------------------------------

def _grpo_plan(overrides: list[str], gpu: float = 24.0) -> dict:
    return plan.report("grpo/qwen25math7b_qlora", overrides, gpu)


# (overrides a, overrides b, relation of a's peak to b's): the prompt is plan.prompt_length, not
# model.max_seq_length - max_completion_length (a shorter completion predicted MORE memory that way)
PROMPT_ROWS = [
    (["max_completion_length=256"], ["max_completion_length=512"], "<"),     # shorter completion: less
    (["max_completion_length=512"], ["max_completion_length=1024"], "<"),
    (["model.max_seq_length=1024"], ["model.max_seq_length=4096"], "=="),    # must NOT depend on it
    (["model.max_seq_length=600", "max_completion_length=500"], ["model.max_seq_length=600",
                                                                  "max_completion_length=100"], ">"),
    (["plan.prompt_length=256"], ["plan.prompt_length=1024"], "<"),          # the knob moves it
    ([], ["plan.prompt_length=512"], "=="),                                  # the documented default is 512
]


@pytest.mark.parametrize("a, b, relation", PROMPT_ROWS)
def test_grpo_prompt_length_comes_from_the_knob(a, b, relation):
    pa, pb = _grpo_plan(a)["peak_reserved_gib"], _grpo_plan(b)["peak_reserved_gib"]
    assert {"<": pa < pb, ">": pa > pb, "==": pa == pb}[relation], (pa, pb)


# (preset, overrides, exceeds max_position_embeddings, the cap on the longest length answer)
POSITION_ROWS = [
    ("mistral7b_qlora", ["model.max_seq_length=40000", "micro_batch_size=1"], True, 32768),
    ("qwen25math7b_qlora", ["model.max_seq_length=8192"], True, 4096),
    ("qwen25math7b_qlora", ["model.max_seq_length=4097", "micro_batch_size=1"], True, 4096),
    ("grpo/qwen25math7b_qlora", ["plan.prompt_length=3800", "max_completion_length=512"], True, 4096 - 3800),
    ("qwen25math7b_qlora", ["model.max_seq_length=4096"], False, 4096),        # must NOT: exactly at the limit
    ("qwen25math7b_qlora", ["model.max_seq_length=1024"], False, 4096),
    ("grpo/qwen25math7b_qlora", ["plan.prompt_length=512", "max_completion_length=512"], False, 4096 - 512),
    ("mistral7b_qlora", ["model.max_seq_length=2048"], False, 32768),
]


@pytest.mark.parametrize("preset, overrides, exceeds, cap", POSITION_ROWS)
def test_lengths_past_the_models_positions_are_flagged_and_capped(preset, overrides, exceeds, cap, capsys):
    assert plan.main(["--preset", preset, *overrides, "--gpu-gb", "80", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["exceeds_max_positions"] is exceeds
    longest = result.get("largest_seq_len", result.get("largest_completion_length"))
    assert 0 < longest <= cap
    assert plan.main(["--preset", preset, *overrides, "--gpu-gb", "80"]) == 0
    text = capsys.readouterr().out
    assert ("max_position_embeddings" in text and "warning:" in text) is exceeds


# ---- the longest length is exact, below 256 too ---------------------------------------------------------------

# (card GiB, setup): cards where the longest length is short; the answer n must fit and n + 1 must NOT
SHORT_LENGTHS = [(5.9, "hf"), (6.05, "hf"), (6.3, "hf"), (7.45, "hf"), (5.7, "unsloth"), (6.7, "unsloth")]


@pytest.mark.parametrize("card, engine", SHORT_LENGTHS)
def test_longest_length_is_exact_below_256(card, engine):
    arch = find_arch(MISTRAL)
    s = Setup(engine=engine, micro_batch=4, seq_len=1024, loss="full", embed_bytes=4)
    n = largest_seq_len(arch, s, card)
    print(card, engine, n)
    assert n > 0 and plan.fits(arch, dataclasses.replace(s, seq_len=n), card)
    assert not plan.fits(arch, dataclasses.replace(s, seq_len=n + 1), card)


def test_some_longest_lengths_are_below_256():
    arch = find_arch(MISTRAL)
    s = Setup(engine="hf", micro_batch=4, seq_len=1024, loss="full", embed_bytes=4)
    found = [largest_seq_len(arch, s, card) for card, engine in SHORT_LENGTHS if engine == "hf"]
    assert any(0 < n < 256 for n in found), found  # the old search stopped at 256 and answered 0 here
    assert any(n % 256 for n in found)              # must NOT be rounded to 256


# ---- the CLI's largest micro-batch agrees with its fits verdict -----------------------------------------------

@pytest.mark.parametrize("preset", plan.all_presets())
def test_largest_micro_batch_agrees_with_fits(preset):
    """For each card, `largest micro-batch` >= the config's micro-batch exactly when it fits, and the config it
    names (that micro-batch, grad_accum unchanged) is one the recipe accepts (GRPO: whole groups) and fits, while
    the next accepted one does NOT."""
    cfg, knobs = plan.load_any_config(preset, [])
    arch, s, _ = plan.setup_from_config(cfg, knobs)
    for card in (6.0, 10.0, 16.0, 24.0, 48.0):
        best = plan.largest_micro_batch(arch, s, card)
        assert (best >= s.micro_batch) is plan.fits(arch, s, card), (card, best)
        if best == 0:
            continue
        produced = copy.deepcopy(cfg)
        produced.micro_batch_size = best
        produced.validate()
        arch2, s2, _ = plan.setup_from_config(produced, knobs)
        assert plan.fits(arch2, s2, card)
        unit = best
        nxt = best + 1
        while True:  # the next micro-batch the recipe would accept
            trial = copy.deepcopy(cfg)
            trial.micro_batch_size = nxt
            try:
                trial.validate()
                break
            except ConfigError:  # GRPO: not whole groups per step
                nxt += 1
        if nxt <= 4096:
            arch3, s3, _ = plan.setup_from_config(trial, knobs)
            assert not plan.fits(arch3, s3, card), (card, unit, nxt)
