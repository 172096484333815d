"""A run killed with SIGKILL resumes from its last checkpoint and follows the uninterrupted loss curve;
an adapter merges into weights that plain transformers loads."""

import json
import os
import shutil
import signal
import subprocess
import sys

import pytest
import torch

from arithmo.trainlog import read_train_log

from _shared import REPO, train_child_script, write_sft_folder

# Runs `arithmo.train.main` in a child; with KILL_AT_STEP set, the child SIGKILLs itself at the end of
# that step — after checkpoint-2 was written and before checkpoint-4 — as an out-of-memory kill would.
CHILD = train_child_script(kill="self")


def _run(tmp_path, model_dir, name, kill_at=0, resume=False, extra=()):
    args = [f"data={tmp_path / 'data'}", f"output_dir={tmp_path / 'runs'}", f"name={name}",
            f"model.name={model_dir}", "model.engine=hf", "model.load_in_4bit=false", "model.dtype=float32",
            "model.max_seq_length=128", "model.gradient_checkpointing=false", "micro_batch_size=4",
            "grad_accum=2", "max_steps=6", "save_steps=2", "logging_steps=1", "lr=5e-3", "warmup_ratio=0.2",
            "lr_scheduler=cosine", "model.lora_dropout=0.1", f"resume={str(resume).lower()}", *extra]
    env = dict(os.environ, KILL_AT_STEP=str(kill_at), PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, "-c", CHILD, *args], env=env, capture_output=True, text=True,
                          timeout=300)


@pytest.fixture(scope="module")
def runs(tmp_path_factory, tiny_model_dir):
    tmp_path = tmp_path_factory.mktemp("resume")
    write_sft_folder(tmp_path / "data", n_train=40)
    whole = _run(tmp_path, tiny_model_dir, "whole")
    assert whole.returncode == 0, whole.stderr[-3000:]
    killed = _run(tmp_path, tiny_model_dir, "cut", kill_at=3)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    resumed = _run(tmp_path, tiny_model_dir, "cut", resume=True)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    return tmp_path / "runs", resumed


def test_resume_after_sigkill_follows_the_same_curve(runs):
    root, resumed = runs
    assert "resuming from" in resumed.stdout and "checkpoint-2" in resumed.stdout
    whole = {r["step"]: r for r in read_train_log(root / "whole" / "train_log.jsonl") if "loss" in r}
    cut = {r["step"]: r for r in read_train_log(root / "cut" / "train_log.jsonl") if "loss" in r}
    assert sorted(whole) == sorted(cut) == [1, 2, 3, 4, 5, 6]
    for step in whole:
        # same data order (seeded sampler skips the batches already seen), same LR schedule, same dropout
        # RNG (restored from the checkpoint): fp32 on CPU reproduces the loss to rounding.
        assert cut[step]["learning_rate"] == pytest.approx(whole[step]["learning_rate"], rel=1e-9), step
        assert cut[step]["loss"] == pytest.approx(whole[step]["loss"], rel=1e-4), step
    assert json.loads((root / "cut" / "summary.json").read_text())["steps"] == 6


def test_summary_after_a_resume_reports_the_whole_runs_loss(runs):
    # pitfall: transformers' training_loss divides this session's summed loss by the global step, so a run
    # resumed at step 2 of 6 reported about 4/6 of the true mean (0.0346 against 0.4183 in the issue)
    root, _ = runs
    whole = json.loads((root / "whole" / "summary.json").read_text())
    cut = json.loads((root / "cut" / "summary.json").read_text())
    losses = [r["loss"] for r in read_train_log(root / "whole" / "train_log.jsonl") if "loss" in r]
    assert whole["train_loss"] == pytest.approx(sum(losses) / len(losses), rel=1e-6)  # logging_steps=1
    assert cut["train_loss"] == pytest.approx(whole["train_loss"], rel=1e-4)
    assert cut["resumed_from_step"] == 2 and cut["train_loss_steps"] == 6
    assert "resumed_from_step" not in whole  # must NOT: an uninterrupted run keeps transformers' own figure


# (overrides on resume, every `key: saved -> asked` the refusal must name); the pitfall of each row: the change
# was accepted and silently ignored (lr comes back from the checkpoint's scheduler) or changed what the saved steps
# meant (the batch shape reorders the data), while config.yaml claimed the new value
REFUSED = [
    (["lr=1e-5"], ["lr: 0.005 -> 1e-05"]),
    (["micro_batch_size=2", "grad_accum=4"], ["micro_batch_size: 4 -> 2", "grad_accum: 2 -> 4"]),
    (["model.lora_r=8", "seed=1"], ["model.lora_r: 16 -> 8", "seed: 42 -> 1"]),
    (["max_steps=8"], ["max_steps: 6 -> 8", "learning-rate schedule"]),
    (["styles=[cot]", "model.max_seq_length=64"], ["styles: ['cot', 'pot', 'tir'] -> ['cot']",
                                                   "model.max_seq_length: 128 -> 64"]),
]


@pytest.mark.parametrize("extra, named", REFUSED)
def test_a_resume_refuses_every_changed_setting_naming_both_values(runs, tiny_model_dir, extra, named):
    root, _ = runs
    config = (root / "whole" / "config.yaml").read_text()
    refused = _run(root.parent, tiny_model_dir, "whole", resume=True, extra=extra)
    assert refused.returncode == 2, refused.stderr[-3000:]
    error = refused.stderr.strip().splitlines()[-1]
    assert error.startswith("error: resume=true continues") and "Traceback" not in refused.stderr
    for text in named:
        assert text in error, (text, error)
    assert f"{len(extra)} setting" in error  # every key that differs, not the first one
    assert (root / "whole" / "config.yaml").read_text() == config  # must NOT: a refused resume rewrites it


def test_a_resume_compares_data_by_content_and_the_process_count(runs, tiny_model_dir):
    # pitfalls: data compared as path text (other rows under the same folder resumed silently; "./data" vs "data"
    # refused), and a resume under another process count (another effective batch) accepted
    root, _ = runs
    tmp = root.parent
    data = tmp / "moving_data"
    shutil.copytree(tmp / "data", data)
    killed = _run(tmp, tiny_model_dir, "moving", kill_at=3, extra=[f"data={data}"])
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    run = root / "moving"
    config, log = (run / "config.yaml").read_text(), (run / "train_log.jsonl").read_text()
    original = (data / "train.jsonl").read_text()
    rows = original.splitlines()
    changed = json.loads(rows[0])
    changed["completion"] += " (edited)"
    (data / "train.jsonl").write_text("\n".join([json.dumps(changed), *rows[1:]]) + "\n")
    refused = _run(tmp, tiny_model_dir, "moving", resume=True, extra=[f"data={data}"])
    assert refused.returncode == 2 and "Traceback" not in refused.stderr, refused.stderr[-3000:]
    assert "training data content" in refused.stderr, refused.stderr[-3000:]
    # must NOT: a refused resume rewrites what describes the run
    assert (run / "config.yaml").read_text() == config and (run / "train_log.jsonl").read_text() == log
    (data / "train.jsonl").write_text(original)
    manifest = json.loads((run / "manifest.json").read_text())
    manifest["training"]["world_size"] = 2  # as torchrun --nproc_per_node 2 had recorded it
    (run / "manifest.json").write_text(json.dumps(manifest))
    refused = _run(tmp, tiny_model_dir, "moving", resume=True, extra=[f"data={data}"])
    assert refused.returncode == 2 and "processes" in refused.stderr and "2 -> 1" in refused.stderr, \
        refused.stderr[-3000:]
    manifest["training"]["world_size"] = 1
    (run / "manifest.json").write_text(json.dumps(manifest))
    # must NOT be refused: the same bytes named another way (a path through "..", then a copy elsewhere)
    spelled = tmp / "moving_data" / ".." / "moving_data"
    copy = tmp / "copied_data"
    shutil.copytree(data, copy)
    resumed = _run(tmp, tiny_model_dir, "moving", resume=True, extra=[f"data={spelled}"])
    assert resumed.returncode == 0 and "resuming from" in resumed.stdout, resumed.stderr[-3000:]
    again = _run(tmp, tiny_model_dir, "moving", resume=True, extra=[f"data={copy}"])
    assert again.returncode == 0 and "already finished" in again.stdout, again.stderr[-3000:]


def test_a_recipe_resume_rebuilds_beside_the_runs_data_and_compares_it(runs, tiny_model_dir):
    # pitfall: a recipe YAML was rebuilt into <run>/data on resume, so a changed recipe (here another seed: another
    # shuffle) both trained on other rows and overwrote the rows the run had trained on
    root, _ = runs
    tmp = root.parent
    rows = [json.loads(line) for line in (tmp / "data" / "train.jsonl").read_text().splitlines()]
    (tmp / "rows.jsonl").write_text("".join(json.dumps({"prompt": r["prompt"], "completion": r["completion"]}) + "\n"
                                            for r in rows))
    recipe = tmp / "recipe.yaml"
    recipe.write_text("name: t\nseed: 42\nsources:\n  - {name: t, adapter: prompt_completion, path: rows.jsonl}\n"
                      "decontaminate: {enabled: false}\ndedup: {exact: true, near: false}\nval_size: 4\n")
    killed = _run(tmp, tiny_model_dir, "recipe", kill_at=3, extra=[f"data={recipe}"])
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    run = root / "recipe"
    trained_on = (run / "data" / "train.jsonl").read_bytes()
    refused = _run(tmp, tiny_model_dir, "recipe", resume=True, extra=[f"data={recipe}", "data_overrides=[seed=7]"])
    assert refused.returncode == 2 and "training data content" in refused.stderr, refused.stderr[-3000:]
    assert (run / "data" / "train.jsonl").read_bytes() == trained_on  # must NOT: the run's rows overwritten
    assert not (run / "data.resume-check").exists()
    resumed = _run(tmp, tiny_model_dir, "recipe", resume=True, extra=[f"data={recipe}"])
    assert resumed.returncode == 0 and "resuming from" in resumed.stdout, resumed.stderr[-3000:]
    assert (run / "data" / "train.jsonl").read_bytes() == trained_on and not (run / "data.resume-check").exists()


def test_ctrl_c_saves_exits_130_and_resumes_to_the_same_adapter(runs, tiny_model_dir):
    # pitfalls: an interrupted run printed "done" and exited 0 (so `train && eval` scored a half-trained adapter);
    # after the resume summary.json divided the whole run's tokens by the last session's seconds
    import time

    root, _ = runs
    tmp = root.parent
    args = [f"data={tmp / 'data'}", f"output_dir={tmp / 'runs'}", "name=ctrlc", f"model.name={tiny_model_dir}",
            "model.engine=hf", "model.load_in_4bit=false", "model.dtype=float32", "model.max_seq_length=128",
            "model.gradient_checkpointing=false", "micro_batch_size=4", "grad_accum=2", "max_steps=6", "save_steps=2",
            "logging_steps=1", "lr=5e-3", "warmup_ratio=0.2", "lr_scheduler=cosine", "model.lora_dropout=0.1"]
    env = dict(os.environ, PYTHONPATH=str(REPO), STEP_SECONDS="1")
    child = subprocess.Popen([sys.executable, "-c", CHILD, *args], env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, start_new_session=True)
    log = root / "ctrlc" / "train_log.jsonl"
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and child.poll() is None:
        if log.is_file() and any('"step": 3,' in line for line in log.read_text().splitlines()):
            break
        time.sleep(0.1)
    os.killpg(child.pid, signal.SIGINT)  # as a terminal delivers it: to the whole foreground group
    out, err = child.communicate(timeout=240)
    assert child.returncode == 130, err[-3000:]
    assert "stopped by Ctrl-C at step" in err and "[train] done" not in out and "Traceback" not in err, err[-3000:]
    summary = json.loads((root / "ctrlc" / "summary.json").read_text())
    assert summary["interrupted"] is True and 3 <= summary["steps"] < 6
    resumed = _run(tmp, tiny_model_dir, "ctrlc", resume=True)
    assert resumed.returncode == 0 and "this session" in resumed.stdout, resumed.stderr[-3000:]
    whole = (root / "whole" / "adapter" / "adapter_model.safetensors").read_bytes()
    assert (root / "ctrlc" / "adapter" / "adapter_model.safetensors").read_bytes() == whole  # bit-identical
    done = json.loads((root / "ctrlc" / "summary.json").read_text())
    session_share = (6 - done["resumed_from_step"]) / 6
    # this session's tokens over its seconds: not the whole run's (within rounding of `seconds` to 0.1 s)
    assert done["tokens_per_s"] * done["seconds"] <= done["tokens_seen"] * (session_share + 0.1)


# must NOT be refused: the keys a resume honours (arithmo.resume.SFT_MAY_CHANGE); a finished run says so
@pytest.mark.parametrize("extra", [["logging_steps=3"], ["save_steps=3", "save_total_limit=1"], ["report_to=none"]])
def test_a_resume_accepts_the_keys_it_honours(runs, tiny_model_dir, extra):
    root, _ = runs
    again = _run(root.parent, tiny_model_dir, "whole", resume=True, extra=extra)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "already finished" in again.stdout


def test_a_changed_logging_interval_is_honoured_from_the_resumed_step(runs, tiny_model_dir):
    # pitfall: transformers restores logging_steps/save_steps from trainer_state.json and only warns, so the
    # resumed run kept logging every step while config.yaml said 2
    root, _ = runs
    killed = _run(root.parent, tiny_model_dir, "relog", kill_at=3)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    resumed = _run(root.parent, tiny_model_dir, "relog", resume=True, extra=["logging_steps=2", "save_steps=4"])
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    logged = [r["step"] for r in read_train_log(root / "relog" / "train_log.jsonl") if "loss" in r]
    assert logged == [1, 2, 4, 6]  # step 3 (logged before the kill, trained again) is gone; then every 2 steps
    assert sorted(p.name for p in (root / "relog" / "checkpoints").glob("checkpoint-*")) == ["checkpoint-4", "checkpoint-6"]
    config = (root / "relog" / "config.yaml").read_text()
    assert "logging_steps: 2" in config and "save_steps: 4" in config
    whole = json.loads((root / "whole" / "summary.json").read_text())
    summary = json.loads((root / "relog" / "summary.json").read_text())
    assert summary["train_loss"] == pytest.approx(whole["train_loss"], rel=1e-4)


def _snapshot(run):
    return ((run / "summary.json").read_text(), sorted(p.name for p in (run / "checkpoints").iterdir()),
            (run / "adapter" / "adapter_model.safetensors").read_bytes())


@pytest.mark.parametrize("budget", [
    [],                                 # max_steps=6: a rerun used to train step 7, then 8 (the finished
                                        # checkpoint rotated away)
    ["max_steps=-1", "epochs=1"],       # epochs mode: a rerun used to write train_loss 0.0 into summary.json
])
def test_resuming_a_finished_run_does_nothing_and_says_so(runs, tiny_model_dir, budget):
    root, _ = runs
    name = "done_" + ("steps" if not budget else "epochs")
    first = _run(root.parent, tiny_model_dir, name, extra=budget)
    assert first.returncode == 0, first.stderr[-3000:]
    before = _snapshot(root / name)
    for _ in range(2):
        again = _run(root.parent, tiny_model_dir, name, resume=True, extra=budget)
        assert again.returncode == 0, again.stderr[-3000:]
        assert "already finished" in again.stdout and "nothing to train, summary kept" in again.stdout
        assert _snapshot(root / name) == before
    summary = json.loads(before[0])
    assert summary["train_loss"] > 0 and summary["steps"] == (6 if not budget else 5)
    # asking for a larger budget is refused: the restored scheduler would train the extra steps at the rate the
    # finished schedule reached (0 for cosine), leaving the weights unchanged while the run reported progress
    more = _run(root.parent, tiny_model_dir, name, resume=True, extra=["max_steps=8"] if not budget else
                ["max_steps=-1", "epochs=2"])
    assert more.returncode == 2 and "learning-rate schedule" in more.stderr, more.stderr[-3000:]
    assert ("max_steps: 6 -> 8" if not budget else "epochs: 1.0 -> 2.0") in more.stderr
    assert _snapshot(root / name) == before


def test_export_merges_into_plain_weights(runs, tmp_path, tiny_model_dir):
    from transformers import AutoModelForCausalLM

    from arithmo.export import merge_adapter
    from arithmo.model import load_model

    root, _ = runs
    out = merge_adapter(root / "whole", tmp_path / "merged", model=str(tiny_model_dir), dtype="float32")
    merged = AutoModelForCausalLM.from_pretrained(out)
    card = (out / "README.md").read_text()  # pitfall: merged folders had no model card to push with them
    assert "library_name: transformers" in card and "# whole: merged weights" in card and "steps: 6" in card
    assert not any("lora" in name for name, _ in merged.named_parameters())
    with_adapter = load_model(str(tiny_model_dir), adapter=str(root / "whole" / "adapter")).model
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    ids = torch.tensor([[5, 17, 42, 99, 7, 3]])
    with torch.no_grad():
        expected = with_adapter(input_ids=ids).logits
        torch.testing.assert_close(merged(input_ids=ids).logits, expected, atol=1e-5, rtol=1e-5)
        assert not torch.allclose(base(input_ids=ids).logits, expected, atol=1e-3)  # the adapter mattered
