"""Where the real public GSM8K/MATH rows live: ../shared/data beside the checkout (never copied in)."""

from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
REPO = Path(__file__).resolve().parents[1]


def shared_file(relative: str) -> Path:
    """The path of a file in ../shared/data, or skip the test saying what is missing."""
    path = SHARED_DATA / relative
    if not path.is_file():
        pytest.skip(f"real data not available: {path} is absent (../shared/data beside the checkout)")
    return path


# ChatML, the template SmolLM2 and Qwen use: the tiny model's chat template has the same shape.
CHATML_TEMPLATE = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


def _tokenizer_corpus() -> list[str]:
    """Text to train the tiny tokenizer on: the tiny recipe's questions and solutions plus code symbols."""
    import json

    lines = []
    for name in ("metamathqa.jsonl", "mathinstruct.jsonl", "lila.jsonl"):
        for row in open(REPO / "data_recipes" / "tiny" / name, encoding="utf-8"):
            lines.extend(str(v) for v in json.loads(row).values())
    lines.append("Question: Answer: The answer is: print() = + - * / ( ) [ ] { } \\boxed{} \\frac 0123456789 ####")
    return lines


def make_tokenizer(out_dir: Path, *, chat_template: bool = True, vocab_size: int = 512):
    """Train a byte-level BPE tokenizer on the tiny recipe's text; save it to `out_dir` and return it."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    specials = ["<pad>", "<|im_start|>", "<|im_end|>", "<s>"]
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=specials,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    bpe.train_from_iterator(_tokenizer_corpus(), trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, bos_token="<s>", eos_token="<|im_end|>",
                                        pad_token="<pad>", unk_token=None)
    if chat_template:
        tokenizer.chat_template = CHATML_TEMPLATE
    tokenizer.save_pretrained(out_dir)
    return tokenizer


def make_tiny_model(out_dir: Path, *, chat_template: bool = True, vocab_size: int = 512, seed: int = 0,
                    layers: int = 2, hidden: int = 64, dtype=None) -> Path:
    """Write a random-initialised LlamaForCausalLM and a trained byte-level BPE tokenizer to `out_dir`."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = make_tokenizer(out_dir, chat_template=chat_template, vocab_size=vocab_size)
    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=hidden, intermediate_size=2 * hidden,
                         num_hidden_layers=layers, num_attention_heads=4, num_key_value_heads=2,
                         max_position_embeddings=512, tie_word_embeddings=False,
                         bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id)
    model = LlamaForCausalLM(config)
    (model.to(dtype) if dtype is not None else model).save_pretrained(out_dir)
    return out_dir


def write_sft_folder(out_dir: Path, n_train: int = 24, n_val: int = 4) -> Path:
    """A built-data folder (train.jsonl, val.jsonl, manifest.json) of short PoT and CoT SFT records."""
    import json

    out_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(n_train + n_val):
        a, b = 3 + i, 5 + 2 * i
        if i % 2:
            rows.append({"id": f"t/{i}", "source": "t", "style": "pot",
                         "prompt": f"Sam has {a} apples and gets {b} more. How many apples? Write a Python program.",
                         "completion": f"start = {a}\nmore = {b}\nprint(start + more)"})
        else:
            rows.append({"id": f"t/{i}", "source": "t", "style": "cot",
                         "prompt": f"Sam has {a} apples and gets {b} more. How many apples?",
                         "completion": f"Sam has {a} + {b} = {a + b} apples.\nThe answer is: {a + b}"})
    for name, part in (("train.jsonl", rows[:n_train]), ("val.jsonl", rows[n_train:])):
        (out_dir / name).write_text("".join(json.dumps(r) + "\n" for r in part))
    (out_dir / "manifest.json").write_text(json.dumps({"name": "test", "totals": {"train": n_train}}) + "\n")
    return out_dir


def train_child_script(kill: str = "self") -> str:
    """A script that runs `arithmo.train.main(argv)` (each step lasting at least STEP_SECONDS when that is set) and,
    with KILL_AT_STEP=N in its environment, SIGKILLs at the end of step N (after a checkpoint, before the next one), as an out-of-memory kill would. `kill`: "self" (this
    process) or "group" (rank 0 kills its whole process group: torchrun and every rank)."""
    killer = ("os.kill(os.getpid(), signal.SIGKILL)" if kill == "self" else
              'os.killpg(os.getpgid(0), signal.SIGKILL) if os.environ.get("RANK") == "0" else None')
    return f"""
import os, signal, sys
import arithmo.train as recipe
from transformers import TrainerCallback

kill_at = int(os.environ.get("KILL_AT_STEP", "0"))
step_seconds = float(os.environ.get("STEP_SECONDS", "0"))  # a step as long as a real model's (Ctrl-C tests)
substep_seconds = float(os.environ.get("SUBSTEP_SECONDS", "0"))  # ... and each accumulated micro-batch

class KillAt(TrainerCallback):
    def on_step_begin(self, args, state, control, **kwargs):
        if step_seconds:
            import time
            time.sleep(step_seconds)

    def on_substep_end(self, args, state, control, **kwargs):
        if substep_seconds:
            import time
            time.sleep(substep_seconds)

    def on_step_end(self, args, state, control, **kwargs):
        if kill_at and state.global_step == kill_at:
            {killer}

original = recipe.build_trainer
def build_with_kill(*args, **kwargs):
    trainer, interrupt = original(*args, **kwargs)
    trainer.add_callback(KillAt())
    return trainer, interrupt
recipe.build_trainer = build_with_kill
sys.exit(recipe.main(sys.argv[1:]))
"""
