"""The real chain, as a user runs it (issue 23): the real SmolLM2-135M-Instruct (no scripted model) trained by
arithmo's recipe, evaluated by arithmo's evaluation, trained further by GRPO, exported and reloaded. On CPU.

    make e2e          # = pytest -m e2e -s tests/e2e (its own time-bounded CI step; ~15 minutes on 2 cores)

A. TIR: a TIR training set made from the multistep problems (each worked solution's equations become a program;
   its output block is what the sandbox printed), SFT on it, then style=tir on held-out questions: the trained
   model calls its tool (tool_calls_per_item >= 0.8) and every output block is what its code prints; accuracy with
   its interval beside the untrained model's and the trained model's CoT.
B. A non-ChatML template whose end of turn (<|endoftext|>) is not the tokenizer's eos (<|im_end|>): SFT -> 2 GRPO
   steps (every rollout ends at that end of turn, nothing generated past it) -> export -> generation_config.json
   and the Modelfile stop on what evaluation stops on -> the merged model in plain transformers gives the greedy
   answers base + adapter gives on 10 items.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from _shared import REPO

pytestmark = pytest.mark.e2e
HERE = Path(__file__).resolve().parent
MULTISTEP = REPO / "data_recipes" / "multistep"
TEMPLATE = HERE / "zephyr_endoftext.jinja"
_EQUATION = re.compile(r"(\d+) ([-+*/]) (\d+) = (\d+)")


def _program(solution: str) -> str | None:
    """The worked solution's equations as a program: each step a variable, a step that uses an earlier result
    uses its variable, the last one printed."""
    lines, names = [], {}
    for index, (a, op, b, result) in enumerate(_EQUATION.findall(solution)):
        left, right = names.get(a, a), names.get(b, b)
        name = f"step{index + 1}"
        lines.append(f"{name} = {left} {'//' if op == '/' else op} {right}")
        names[result] = name
    return "\n".join(lines + [f"print({name})"]) if lines else None


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    return tmp_path_factory.mktemp("e2e")


@pytest.fixture(scope="module")
def tir_data(work):
    """A built data folder of TIR SFT records; outputs are what the sandbox printed."""
    from arithmo.prompts import TIR_INSTRUCTION, output_block
    from arithmo.sandbox import Sandbox

    rows = [json.loads(line) for line in (MULTISTEP / "sft" / "train.jsonl").read_text().splitlines()]
    records = []
    with Sandbox(workers=1) as box:
        for row in rows:
            program = _program(row["completion"])
            answer = row["completion"].rsplit("The answer is:", 1)[1].strip()
            if program is None:
                continue
            printed = box.run([program], timeout_s=5.0)[0]
            assert printed.error is None and printed.stdout.strip() == answer, (program, printed)
            completion = (f"Let me compute it with Python.\n```python\n{program}\n```\n" + output_block(printed.stdout)
                          + f"The program prints {printed.stdout.strip()}, so the answer is "
                            f"\\boxed{{{printed.stdout.strip()}}}.")
            records.append({"id": row["id"].replace("train", "tir"), "source": "multistep_tir", "style": "tir",
                            "prompt": f"{row['prompt']}\n\n{TIR_INSTRUCTION}", "completion": completion})
    folder = work / "tir_data"
    folder.mkdir()
    (folder / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    (folder / "manifest.json").write_text(json.dumps({"name": "multistep_tir", "totals": {"train": len(records)}}))
    print(f"\n[e2e] TIR training set: {len(records)} rows from {len(rows)} worked solutions")
    return folder


def _eval(work, name, **keys):
    from arithmo.config import load_config
    from arithmo.eval import EvalConfig, evaluate

    overrides = [f"output_dir={work / 'eval' / name}", "benchmark=file",
                 f"path={MULTISTEP / 'heldout.jsonl'}", "n=20", "batch_size=20", "plot=false", "workers=1",
                 "program_timeout_s=5"] + [f"{k}={v}" for k, v in keys.items()]
    return evaluate(load_config(EvalConfig, None, overrides))


def _show(label, metrics):
    low, high = metrics["ci95"]["accuracy"]
    tir = metrics.get("tir") or {}
    calls = f", tool_calls_per_item {tir['tool_calls_per_item']:.2f}" if tir else ""
    print(f"[e2e] {label}: accuracy {metrics['accuracy']:.3f} (95% CI {low:.3f}-{high:.3f}, n={metrics['n']}){calls}")


def test_a_model_trained_on_tir_calls_its_tool(work, tir_data):
    from arithmo.config import load_config
    from arithmo.sandbox import run_program
    from arithmo.settings import TrainConfig
    from arithmo.train import train

    base = _eval(work, "base_tir", model="smollm2-135m-instruct", style="tir", max_new_tokens=128,
                 max_tool_calls=2)
    cfg = load_config(TrainConfig, None, [
        f"data={tir_data}", f"output_dir={work / 'runs'}", "name=tir", "styles=[tir]",
        "model.name=smollm2-135m-instruct", "model.engine=hf", "model.load_in_4bit=false", "model.dtype=float32",
        "model.max_seq_length=256", "model.lora_r=16", "model.lora_alpha=32", "model.gradient_checkpointing=false",
        "epochs=1", "micro_batch_size=8", "grad_accum=1", "lr=1e-3", "warmup_ratio=0.05", "save_steps=100",
        "logging_steps=5", "report_to=none"])
    summary = train(cfg)
    print(f"[e2e] TIR SFT: {summary['steps']} steps, train loss {summary['train_loss']:.4f}, "
          f"{summary['seconds']} s")
    run = work / "runs" / "tir"
    trained = _eval(work, "trained_tir", run=str(run), style="tir", max_new_tokens=128, max_tool_calls=2)
    trained_cot = _eval(work, "trained_cot", run=str(run), style="cot", max_new_tokens=128)
    _show("untrained, style=tir", base)
    _show("TIR-trained, style=tir", trained)
    _show("TIR-trained, style=cot", trained_cot)
    assert trained["tir"]["tool_calls_per_item"] >= 0.8, trained["tir"]
    # the interpreter's outputs are what the code printed: run every recorded block again, alone
    lines = [json.loads(t) for t in (work / "eval" / "trained_tir" / "predictions.jsonl").read_text().splitlines()]
    checked = 0
    for line in lines:
        for call in line["tool_calls"]:
            again = run_program(call["code"], timeout_s=5.0)
            if call["error"] is None and again.error is None:
                assert call["output"] == again.stdout, (call, again)
                assert f"```output\n{again.stdout.rstrip()}\n```" in line["completion"]
                checked += 1
    assert checked > 0
    print(f"[e2e] {checked} tool outputs checked against a fresh run of their code")


def test_a_non_chatml_template_ends_turns_the_same_everywhere(work):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    import arithmo.rewards as rewards
    from arithmo.config import load_config
    from arithmo.export.cli import main as export_main
    from arithmo.generate import end_token_ids, generate
    from arithmo.grpo import GRPOTrainConfig, grpo
    from arithmo.model import load_model
    from arithmo.prompts import prompt_token_ids, render_eval, stop_strings
    from arithmo.settings import TrainConfig
    from arithmo.train import train

    common = ["model.name=smollm2-135m-instruct", "model.engine=hf", "model.load_in_4bit=false",
              "model.dtype=float32", "model.max_seq_length=256", "model.gradient_checkpointing=false",
              f"model.chat_template={TEMPLATE}", "report_to=none"]
    train(load_config(TrainConfig, None, [
        f"data={MULTISTEP / 'sft'}", f"output_dir={work / 'runs'}", "name=zephyr", "styles=[cot]", "max_steps=12",
        "micro_batch_size=8", "grad_accum=1", "lr=1e-3", "warmup_ratio=0.0", "save_steps=100", "logging_steps=4",
        *common]))
    sft = work / "runs" / "zephyr"
    # GRPO, recording the ids of every rollout
    seen: list[list[int]] = []
    original = rewards.Rewards.texts

    def record(self, completions, completion_ids):
        seen.extend(list(ids) for ids in (completion_ids or []))
        return original(self, completions, completion_ids)

    rewards.Rewards.texts = record
    try:
        grpo(load_config(GRPOTrainConfig, None, [
            f"init={sft}", f"output_dir={work / 'runs'}", "name=zephyr_grpo", "benchmark=file",
            f"path={MULTISTEP / 'questions.jsonl'}", "n=8", "styles=[cot]", "num_generations=4",
            "max_completion_length=96", "temperature=0.8", "micro_batch_size=8", "grad_accum=1", "max_steps=2",
            "lr=2e-5", "workers=1", "save_steps=100", "logging_steps=1",
            *[c for c in common if c != "report_to=none"]]))
    finally:
        rewards.Rewards.texts = original
    tokenizer = AutoTokenizer.from_pretrained(sft / "adapter")
    end = tokenizer.convert_tokens_to_ids("<|endoftext|>")
    assert end != tokenizer.convert_tokens_to_ids("<|im_end|>")
    assert seen, "the reward saw the rollouts' ids"
    past = [ids for ids in seen if end in ids and ids.index(end) != len(ids) - 1]
    ended = sum(1 for ids in seen if ids and ids[-1] == end)
    print(f"[e2e] GRPO: {len(seen)} rollouts, {ended} end at <|endoftext|>, {len(past)} go on past it")
    assert not past, "a rollout went on past the template's end of turn"
    log = [json.loads(t) for t in (work / "runs" / "zephyr_grpo" / "train_log.jsonl").read_text().splitlines()]
    assert any("reward" in row for row in log) and any("loss" in row for row in log)

    # export the SFT run, merged; and as GGUF with its Modelfile
    merged = work / "merged"
    assert export_main([str(sft), "--out", str(merged), "--dtype", "float32"]) == 0
    gguf = work / "gguf"
    assert export_main([str(sft), "--out", str(gguf), "--format", "gguf", "--quant", "f32"]) == 0
    config_eos = json.loads((merged / "generation_config.json").read_text())["eos_token_id"]
    config_eos = config_eos if isinstance(config_eos, list) else [config_eos]
    base = load_model("smollm2-135m-instruct", engine="hf", adapter=str(sft / "adapter"), trainable=False,
                      load_in_4bit=False, dtype="float32")
    eval_ids = end_token_ids(base.model, base.tokenizer)
    assert end in config_eos and set(eval_ids) <= set(config_eos), (config_eos, eval_ids)
    modelfile = (gguf / "Modelfile").read_text()
    stops = re.findall(r'PARAMETER stop "(.*)"', modelfile) + re.findall(r'PARAMETER stop """(.*?)"""', modelfile,
                                                                          re.S)
    expected = {base.tokenizer.decode([i]) for i in eval_ids} | set(stop_strings(base.tokenizer, "auto"))
    assert set(stops) == expected, (stops, expected)
    print(f"[e2e] export: generation_config.json eos {config_eos}; Modelfile stops {sorted(stops)}")

    # the merged model in plain transformers = base + adapter, greedy, on 10 items
    items = [json.loads(t) for t in (MULTISTEP / "heldout.jsonl").read_text().splitlines()][:10]
    prompts = [render_eval(item["question"], "cot", base.tokenizer, "auto") for item in items]
    with_adapter = [texts[0] for texts in generate(base.model, base.tokenizer, prompts, max_new_tokens=96,
                                                    batch_size=10)]
    plain = AutoModelForCausalLM.from_pretrained(merged)
    plain_tokenizer = AutoTokenizer.from_pretrained(merged)
    same = 0
    for prompt, expected_text in zip(prompts, with_adapter):
        ids = torch.tensor([prompt_token_ids(plain_tokenizer, prompt)])  # the ids arithmo prompts with
        out = plain.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=96,
                             do_sample=False)  # its own generation_config.json: the eos ids
        text = plain_tokenizer.decode(out[0, ids.shape[1]:], skip_special_tokens=True)
        same += text.strip() == expected_text.strip()
    print(f"[e2e] merged (plain transformers) vs base + adapter: {same}/10 identical greedy completions")
    assert same >= 9
