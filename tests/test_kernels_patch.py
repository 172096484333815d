"""apply_kernels / revert_kernels on whole models: tiny random-initialised Llama, Mistral and Qwen2,
bare or under peft LoRA (dense and bitsandbytes 4-bit), trained with and without the kernels."""

import copy
import subprocess
import sys

import pytest
import torch
from _kernels_env import DEVICE, close, close_in_norm, single_threaded_torch

from arithmo.kernels import applied_kernels, apply_kernels, revert_kernels

pytestmark = pytest.mark.usefixtures(single_threaded_torch.__name__)

TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
VOCAB = 256


def _tiny(family: str, layers: int = 4, seed: int = 0):
    from transformers import LlamaConfig, LlamaForCausalLM, MistralConfig, MistralForCausalLM, Qwen2Config, \
        Qwen2ForCausalLM

    common = dict(vocab_size=VOCAB, hidden_size=64, intermediate_size=96, num_hidden_layers=layers,
                  num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128,
                  tie_word_embeddings=False)
    config, cls = {
        "llama": (lambda: LlamaConfig(**common), LlamaForCausalLM),
        # a window shorter than the sequences below, so Mistral's sliding mask really slides
        "mistral": (lambda: MistralConfig(sliding_window=8, **common), MistralForCausalLM),
        "qwen2": (lambda: Qwen2Config(**common), Qwen2ForCausalLM),  # q/k/v carry biases
    }[family]
    torch.manual_seed(seed)
    model = cls(config()).to(DEVICE)
    model.config._attn_implementation = "sdpa"
    return model


def _with_lora(model, seed: int = 1):
    from peft import LoraConfig, get_peft_model

    model.requires_grad_(False)
    torch.manual_seed(seed)
    model = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0, target_modules=TARGETS))
    for name, param in model.named_parameters():
        if "lora_B" in name:  # peft starts B at zero; nonzero makes the LoRA branch part of every output
            torch.nn.init.normal_(param, std=0.02)
    return model


def _batches(steps: int, batch: int = 2, seq: int = 24, prompt: int = 8):
    """The same random batch `steps` times: the model memorises it, so the loss must fall."""
    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(0, VOCAB, (batch, seq), generator=gen)
    labels = ids.clone()
    labels[:, :prompt] = -100  # prompt tokens carry no loss, as in SFT on completions
    for _ in range(steps):
        yield ids.to(DEVICE), labels.to(DEVICE)


def _train(model, steps: int, kernels: bool, **options) -> list[float]:
    model = copy.deepcopy(model)
    if kernels:
        apply_kernels(model, **options)
    model.train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    losses = []
    for ids, labels in _batches(steps):
        loss = model(input_ids=ids, labels=labels).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.item())
    return losses


# fp32 throughout: the kernels differ from torch only in summation order (~1e-7 relative per op); over 10
# AdamW steps the per-step losses measured agree to <1e-6; 2e-5 leaves room for other BLAS builds.
LOSS_ATOL = 2e-5


@pytest.mark.slow
def test_full_finetune_losses_match_without_kernels_for_ten_steps():
    model = _tiny("llama")
    plain, patched = _train(model, 10, False), _train(model, 10, True)
    assert plain[-1] < plain[0], f"training should reduce the loss: {plain}"
    assert max(abs(a - b) for a, b in zip(plain, patched)) < LOSS_ATOL, (plain, patched)


def test_lora_losses_match_without_kernels_for_ten_steps():
    model = _with_lora(_tiny("llama"))
    plain, patched = _train(model, 10, False), _train(model, 10, True)
    assert plain[-1] < plain[0], f"training should reduce the loss: {plain}"
    assert max(abs(a - b) for a, b in zip(plain, patched)) < LOSS_ATOL, (plain, patched)


def test_offloaded_checkpoints_train_like_no_checkpointing():
    model = _with_lora(_tiny("llama", layers=2))
    plain = _train(model, 3, False)
    offloaded = _train(model, 3, True, offload_checkpoints=True, rms_norm=False, rope=False, swiglu=False,
                       cross_entropy=False, lora_mlp=False, lora_attention=False)
    assert max(abs(a - b) for a, b in zip(plain, offloaded)) < LOSS_ATOL, (plain, offloaded)


def _loss_and_grads(model, ids, labels, **inputs):
    model.zero_grad()
    loss = model(input_ids=ids, labels=labels, **inputs).loss
    loss.backward()
    return loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def _packed_long_batch(rows: int = 3, length: int = 40, prompt: int = 6):
    """One packed sequence of `rows` rows (long CoT packing: position ids restart at each row, prompts carry no
    label), as TRL's padding-free packing hands it to the model: (ids, labels, position_ids) of 1 x rows*length."""
    gen = torch.Generator().manual_seed(3)
    ids = torch.randint(0, VOCAB, (1, rows * length), generator=gen)
    labels = ids.clone()
    for row in range(rows):
        labels[0, row * length: row * length + prompt] = -100
    positions = torch.arange(length).repeat(rows)[None]
    return ids.to(DEVICE), labels.to(DEVICE), positions.to(DEVICE)


# Issue 27: the memory tricks for long sequences together -- offloaded layer checkpoints, the fused (chunked)
# cross-entropy, the fused LoRA kernels -- on packed rows, against the same LoRA model without any kernel.
@pytest.mark.parametrize("options", [
    {},                                                   # everything: offload + fused CE + LoRA kernels
    {"cross_entropy": False},                             # the training recipe's: TRL computes the loss itself
    {"lora_mlp": False, "lora_attention": False},         # offload + fused CE over peft's own LoRA layers
], ids=["all", "recipe", "peft_lora"])
def test_offloaded_checkpoints_fused_loss_and_lora_together_match_plain(options):
    model = _with_lora(_tiny("qwen2", layers=2))
    model.train()
    ids, labels, positions = _packed_long_batch()
    loss, grads = _loss_and_grads(model, ids, labels, position_ids=positions)
    report = apply_kernels(model, offload_checkpoints=True, **options)
    assert report["offload_checkpoints"] == 2 and report["cross_entropy"] == int(options.get("cross_entropy", True))
    assert report["lora_mlp"] == (0 if "lora_mlp" in options else 2)
    patched_loss, patched_grads = _loss_and_grads(model, ids, labels, position_ids=positions)
    close(patched_loss, loss, torch.float32, f"{options} loss")
    assert patched_grads.keys() == grads.keys() and any("lora_A" in name for name in grads)
    for name in grads:
        close_in_norm(patched_grads[name], grads[name], torch.float32, f"{options} grad {name}")
    revert_kernels(model)


@pytest.mark.parametrize("family", ["llama", "mistral", "qwen2"])
def test_each_family_is_patched_and_matches_and_reverts_exactly(family):
    model = _with_lora(_tiny(family, layers=2))
    model.train()
    ids, labels = next(_batches(1, seq=20))
    model.eval()
    with torch.no_grad():
        logits_before = model(input_ids=ids).logits
    model.train()
    loss, grads = _loss_and_grads(model, ids, labels)

    report = apply_kernels(model)
    assert report["family"] == family
    assert report == report | {"rms_norm": 5, "rope": 2, "swiglu": 2, "lora_attention": 4, "lora_mlp": 2,
                               "cross_entropy": 1, "offload_checkpoints": 0, "not_fused": {}}
    assert applied_kernels(model)
    out = model(input_ids=ids, labels=labels)
    assert out.logits is None, "the fused loss never builds the logits"
    patched_loss, patched_grads = _loss_and_grads(model, ids, labels)
    close(patched_loss, loss, torch.float32, f"{family} loss")
    assert patched_grads.keys() == grads.keys()
    for name in grads:
        close_in_norm(patched_grads[name], grads[name], torch.float32, f"{family} grad {name}")
    model.eval()
    with torch.no_grad():
        patched_logits = model(input_ids=ids).logits  # eval, no labels: logits come back
    close(patched_logits, logits_before, torch.float32, f"{family} eval logits")

    assert revert_kernels(model) == sum(report[k] for k in ("rms_norm", "cross_entropy")) + 2 * 2
    assert not applied_kernels(model)
    with torch.no_grad():
        assert torch.equal(model(input_ids=ids).logits, logits_before), "revert must restore exactly"
    inner = model.get_base_model()
    patched_modules = [m for m in inner.modules() if "forward" in m.__dict__]
    assert patched_modules == [], f"instance forwards left behind: {[type(m).__name__ for m in patched_modules]}"


def test_four_bit_lora_model_fuses_and_matches():
    pytest.importorskip("bitsandbytes", reason="bitsandbytes is needed for a 4-bit model")
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    if DEVICE.type != "cpu":
        pytest.skip("the 4-bit CPU path is what this checks; the GPU path runs in bench/bench_train.py")
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        _tiny("mistral", layers=2).save_pretrained(folder)
        quant = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                                   bnb_4bit_compute_dtype=torch.float32)
        base = AutoModelForCausalLM.from_pretrained(folder, quantization_config=quant, dtype=torch.float32,
                                                    device_map="cpu", attn_implementation="sdpa")
    model = _with_lora(base)
    model.train()
    ids, labels = next(_batches(1, seq=20))
    loss, grads = _loss_and_grads(model, ids, labels)
    report = apply_kernels(model)
    assert report["lora_mlp"] == 2 and report["lora_attention"] == 4 and report["not_fused"] == {}
    patched_loss, patched_grads = _loss_and_grads(model, ids, labels)
    close(patched_loss, loss, torch.float32, "4-bit loss")
    for name in grads:
        close_in_norm(patched_grads[name], grads[name], torch.float32, f"4-bit grad {name}")


def test_unfusable_projections_fall_back_and_are_reported():
    from peft import LoraConfig, get_peft_model

    base = _tiny("llama", layers=2)
    base.requires_grad_(False)
    model = get_peft_model(base, LoraConfig(r=4, lora_alpha=8, lora_dropout=0.1, target_modules=["gate_proj"]))
    report = apply_kernels(model)
    assert report["lora_mlp"] == 0
    assert report["not_fused"] == {"mlp: LoRA dropout > 0 while training": 2}
    assert report["lora_attention"] == 4, "frozen dense q/k/v/o without LoRA still fuse"
    model.train()
    ids, labels = next(_batches(1))
    torch.manual_seed(3)
    patched = model(input_ids=ids, labels=labels).loss
    revert_kernels(model)
    torch.manual_seed(3)  # same dropout masks
    plain = model(input_ids=ids, labels=labels).loss
    close(patched, plain, torch.float32, "loss with dropout fallback")


def test_num_items_in_batch_and_return_dict_pass_through():
    model = _tiny("llama", layers=1)
    ids, labels = next(_batches(1))
    model.train()
    want = model(input_ids=ids, labels=labels, num_items_in_batch=torch.tensor(5)).loss
    apply_kernels(model)
    got = model(input_ids=ids, labels=labels, num_items_in_batch=torch.tensor(5))
    close(got.loss, want, torch.float32, "loss / num_items_in_batch")
    as_tuple = model(input_ids=ids, labels=labels, return_dict=False)
    assert isinstance(as_tuple, tuple) and torch.is_tensor(as_tuple[0])


def test_errors_name_the_problem():
    from transformers import GPT2Config, GPT2LMHeadModel

    gpt2 = GPT2LMHeadModel(GPT2Config(n_layer=1, n_embd=32, n_head=2, vocab_size=64, n_positions=32))
    with pytest.raises(ValueError, match=r"model_type 'gpt2' \(GPT2LMHeadModel\) is not supported"):
        apply_kernels(gpt2)
    model = _tiny("llama", layers=1)
    with pytest.raises(RuntimeError, match="no kernels are applied"):
        revert_kernels(model)
    apply_kernels(model)
    with pytest.raises(RuntimeError, match="already applied"):
        apply_kernels(model)


def test_importing_arithmo_does_not_import_triton():
    code = "import sys, arithmo, arithmo.kernels; print('triton' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


def test_sliding_window_mask_at_window_length_is_dropped_only_when_purely_causal():
    from arithmo.kernels.layers import _CausalMaskCheck

    model = _tiny("mistral", layers=1)
    model.config.sliding_window = 20  # == the sequence: transformers still builds a (20 x 20) mask
    ids, _ = next(_batches(1, seq=20))
    padded = torch.ones_like(ids)
    padded[0, :3] = 0  # left padding on the first row: that mask is more than causal
    model.eval()
    with torch.no_grad():
        want_plain, want_padded = model(input_ids=ids).logits, model(input_ids=ids, attention_mask=padded).logits
        apply_kernels(model)
        got_plain = model(input_ids=ids).logits
        assert _CausalMaskCheck.result, "a purely causal mask should have been recognised (and dropped)"
        got_padded = model(input_ids=ids, attention_mask=padded).logits
        assert not _CausalMaskCheck.result, "a padding mask must be kept"
    close(got_plain, want_plain, torch.float32, "logits, causal mask dropped")
    close(got_padded[1], want_padded[1], torch.float32, "logits, padding mask kept")
    close(got_padded[0, 3:], want_padded[0, 3:], torch.float32, "logits, padding mask kept (real tokens)")


def test_kernels_under_transformers_gradient_checkpointing():
    """arithmo.model applies the kernels and then transformers' own (non-reentrant) checkpointing: the fused
    functions' saved tensors are then recomputed tensors, which the LoRA MLP backward overwrites in place."""
    model = _with_lora(_tiny("llama", layers=2))
    ids, labels = next(_batches(1))
    model.train()
    loss, grads = _loss_and_grads(model, ids, labels)
    apply_kernels(model)
    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    patched_loss, patched_grads = _loss_and_grads(model, ids, labels)
    close(patched_loss, loss, torch.float32, "loss under checkpointing")
    assert patched_grads.keys() == grads.keys()
    for name in grads:
        close_in_norm(patched_grads[name], grads[name], torch.float32, f"grad {name} under checkpointing")


@pytest.mark.slow
def test_bench_train_quick_runs_and_prints_the_table():
    from _shared import REPO

    result = subprocess.run([sys.executable, str(REPO / "bench" / "bench_train.py"), "--quick"], capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    rows = [line.split() for line in result.stdout.splitlines() if line.startswith("2x64")]
    assert [row[1] for row in rows] == ["hf", "kernels"], result.stdout[-3000:]
    assert "'lora_mlp': 2" in result.stdout and "'not_fused': {}" in result.stdout
