"""The first hour of a new user (issue 31): the README's commands work in the order a reader meets them, a data
build with nothing to train on is refused with the numbers, and every CLI answers bad input with one `error:`
line naming the file, key or value instead of a traceback."""

import re
import shlex
from pathlib import Path

import pytest

from _shared import REPO

# ----------------------------------------------------------------------------------------------
# README order


def _readme_commands() -> list[str]:
    """`make demo`'s commands, then every command in the README's bash blocks, in reading order (continuation
    lines joined, comments dropped)."""
    makefile = (REPO / "Makefile").read_text()
    demo = re.search(r"^demo:.*?\n((?:\t.*\n)+)", makefile, re.M).group(1)
    commands = [line.strip().replace("$(PY)", "python") for line in demo.splitlines()]
    readme = (REPO / "README.md").read_text()
    for block in re.findall(r"```bash\n(.*?)```", readme, re.S):
        for line in block.replace("\\\n", " ").splitlines():
            words = shlex.split(line, comments=True)
            if words:
                commands.append(" ".join(shlex.quote(w) for w in words))
    return commands


def _run_of(command: str):
    """(stage, run folder, resume or overwrite asked) of a train/grpo command; None for other commands."""
    from arithmo.config import find_preset, load_config

    words = shlex.split(command)
    for stage, module in (("train", "arithmo.train"), ("grpo", "arithmo.grpo")):
        if module in words:
            args = words[words.index(module) + 1:]
            break
    else:
        return None
    if "--help" in args:
        return None
    preset = args[args.index("--preset") + 1] if "--preset" in args else None
    overrides = [a for a in args if "=" in a and not a.startswith("-")]
    if stage == "train":
        from arithmo.train import PRESETS, TrainConfig as cls
    else:
        from arithmo.grpo import PRESETS, GRPOTrainConfig as cls
    cfg = load_config(cls, find_preset(preset, PRESETS) if preset else None, overrides)
    return stage, Path(cfg.output_dir) / cfg.name, cfg.resume or cfg.overwrite


def test_readme_commands_never_reuse_a_run_folder_that_an_earlier_one_made():
    # pitfall: right after `make demo`, the README's next command (`--preset smollm2_135m_cpu`, and its CPU
    # torchrun line) trained into runs/demo again and stopped with "runs/demo already holds checkpoints"
    made: dict[Path, str] = {}
    checked = 0
    for command in _readme_commands():
        run = _run_of(command)
        if run is None:
            continue
        checked += 1
        stage, folder, continues = run
        assert continues or folder not in made, (f"{command!r} trains into {folder}, which {made.get(folder)!r} "
                                                 "made earlier: it would stop with 'already holds checkpoints'")
        made[folder] = command
    assert checked >= 10  # must NOT pass by finding no command: the demo's, section 2's, torchrun's, RFT/GRPO's


def test_the_order_check_catches_a_reused_folder():
    # must NOT: the check above passes whatever the README says; the same two commands in a row do collide
    first = _run_of("python -m arithmo.train --preset smollm2_135m_cpu resume=true")
    again = _run_of("python -m arithmo.train --preset smollm2_135m_cpu")
    assert first[1] == again[1] and not again[2]
    assert _run_of("python -m arithmo.train --preset smollm2_135m_cpu resume=true")[2]
    assert _run_of("python -m arithmo.eval --preset tiny_pot run=runs/demo") is None


# ----------------------------------------------------------------------------------------------
# every CLI: bad input gives one `error:` line naming what is wrong, never a traceback


def _inputs(tmp: Path) -> dict[str, Path]:
    """Bad inputs of each kind, written once: a recipe whose source path does not exist, a non-UTF-8 source and
    data folder, a file where a folder is expected, an empty source."""
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / "bad.jsonl").write_bytes(b'{"prompt": "caf\xe9", "completion": "x"}\n')
    (tmp / "empty.jsonl").write_text("")
    (tmp / "afile").write_text("not a folder\n")
    for name, source in (("missing", "nothere.jsonl"), ("latin1", "bad.jsonl"), ("empty", "empty.jsonl")):
        (tmp / f"{name}.yaml").write_text(f"sources:\n  - name: a\n    path: {source}\n    adapter: prompt_completion\n")
    (tmp / "latin1_data").mkdir(exist_ok=True)
    (tmp / "latin1_data" / "train.jsonl").write_bytes(b'{"id": "a", "prompt": "q\xff", "completion": "c"}\n')
    (tmp / "latin1_preset.yaml").write_bytes(b"lr: 1e-4\nname: caf\xe9\n")  # a preset saved as Latin-1
    (tmp / "metrics").mkdir(exist_ok=True)
    (tmp / "metrics" / "metrics.json").write_bytes(b'{"benchmark": "caf\xe9"}')
    return {"tmp": tmp}


def _cli(name):
    import importlib

    module = {"data": "arithmo.data.__main__", "train": "arithmo.train", "eval": "arithmo.eval",
              "export": "arithmo.export.cli", "report": "arithmo.report", "rft": "arithmo.rft.recipe",
              "grpo": "arithmo.grpo", "plan": "arithmo.plan", "app": "app"}[name]
    return importlib.import_module(module).main


TINY = str(REPO / "data_recipes" / "tiny.yaml")
# (cli, argv with {tmp} for the folder of bad inputs, what the error line must name); the pitfall of each row
# is the raw traceback a new user got instead
ERRORS = [
    ("data", ["build", "{tmp}/missing.yaml", "--out", "{tmp}/o"], ["{tmp}/nothere.jsonl", "recipe's folder"]),
    ("data", ["build", "{tmp}/latin1.yaml", "--out", "{tmp}/o"], ["bad.jsonl:1", "byte offset 15"]),
    ("data", ["build", TINY, "--out", "{tmp}/afile"], ["{tmp}/afile", "is a file"]),
    ("data", ["build", TINY, "--out", "{tmp}/o", "decontaminate.ngram=0"], ["decontaminate.ngram", "got 0"]),
    ("data", ["build", TINY, "--out", "{tmp}/o", "dedup.bands=0"], ["dedup.bands", "got 0"]),
    ("data", ["build", "{tmp}/empty.yaml", "--out", "{tmp}/o"], ["nothing to train on", "0 rows"]),
    ("data", ["build", TINY, "--out", "{tmp}/o", "val_size=5000"], ["nothing to train on", "val_size=5000"]),
    ("data", ["build", "{tmp}/nope.yaml", "--out", "{tmp}/o"], ["{tmp}/nope.yaml"]),
    ("train", ["data={tmp}/latin1_data", "output_dir={tmp}/runs"], ["train.jsonl", "byte offset"]),
    ("train", ["data={tmp}/nowhere", "output_dir={tmp}/runs"], ["{tmp}/nowhere"]),
    ("train", ["data={tmp}/missing.yaml", "output_dir={tmp}/runs"], ["{tmp}/nothere.jsonl"]),
    ("eval", ["run={tmp}/no_run"], ["{tmp}/no_run"]),
    ("eval", ["benchmark=file", "path={tmp}/bad.jsonl", "model=smollm2-135m-instruct"], ["bad.jsonl"]),
    ("export", ["{tmp}/no_run", "--out", "{tmp}/merged"], ["{tmp}/no_run"]),
    ("export", ["{tmp}/no_run", "--out", "{tmp}/afile"], ["{tmp}/afile", "is a file"]),  # before loading a model
    ("train", ["seed=-1"], ["seed", "2**32"]),                      # NumPy's traceback, after the data build
    ("data", ["build", TINY, "--out", "{tmp}/o", "seed=-1"], ["seed", "got -1"]),
    ("train", ["lr=0"], ["lr", "got 0.0"]),                         # trained nothing, said nothing
    ("train", ["model.lora_r=0"], ["model.lora_r"]),                # peft's traceback after the model loaded
    ("train", ["--preset", "{tmp}/latin1_preset.yaml"], ["latin1_preset.yaml", "byte offset 18"]),
    ("grpo", ["--preset", "{tmp}/latin1_preset.yaml"], ["latin1_preset.yaml", "byte offset 18"]),
    ("train", ["--preset", "{tmp}"], ["is a folder"]),
    ("report", ["{tmp}/metrics"], ["metrics.json"]),
    ("report", ["{tmp}/absent"], ["{tmp}/absent"]),
    ("rft", ["run={tmp}/no_run", "out={tmp}/rft"], ["{tmp}/no_run"]),
    ("grpo", ["init={tmp}/no_run", "output_dir={tmp}/runs", "benchmark=file", "path={tmp}/nothere.jsonl"],
     ["nothere.jsonl"]),
    ("plan", ["--preset", "{tmp}/nope.yaml"], ["nope"]),
    ("app", ["--examples", "gsm8k={tmp}/nothere.jsonl", "--no-adapter"], ["nothere.jsonl"]),
]


@pytest.mark.parametrize("cli, argv, named", ERRORS, ids=[f"{r[0]}-{i}" for i, r in enumerate(ERRORS)])
def test_every_cli_answers_bad_input_with_one_error_line(tmp_path_factory, capsys, cli, argv, named):
    tmp = _inputs(tmp_path_factory.getbasetemp() / "bad_inputs")["tmp"]
    code = _cli(cli)([a.replace("{tmp}", str(tmp)) for a in argv])
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    last = err.splitlines()[-1]
    assert last.startswith("error: ") and "Traceback" not in err, err
    for text in named:
        assert text.replace("{tmp}", str(tmp)) in last, (text, last)


def test_a_good_build_still_builds(tmp_path, capsys):
    # must NOT: the refusals above catch a build that has rows to train on
    assert _cli("data")(["build", TINY, "--out", str(tmp_path / "ok"), "val_size=10"]) == 0
    assert (tmp_path / "ok" / "train.jsonl").read_text().count("\n") > 10
    assert (tmp_path / "ok" / "val.jsonl").read_text().count("\n") == 10


# ----------------------------------------------------------------------------------------------
# Ctrl-C during evaluation


def test_ctrl_c_during_evaluation_keeps_the_finished_batches_and_progress_shows_from_the_first(tiny_model_dir,
                                                                                              tmp_path, capsys):
    # pitfall: predictions were saved every 64 items (more than the 60-item demo set) and no progress line
    # appeared before 64, so a Ctrl-C kept nothing and printed a long traceback
    import json as _json

    from transformers import AutoTokenizer

    from _eval_fakes import ScriptedLM
    from arithmo.evaluation import evaluate_items

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    items = [{"id": f"i/{n}", "benchmark": "tiny", "question": f"What is {n} plus {n}?", "answer": str(2 * n), "meta": {}}
             for n in range(7)]
    stop_at = "What is 4 plus"  # the third batch of 2

    def respond(prompt, sampled, sample):
        if stop_at and stop_at in prompt:
            raise KeyboardInterrupt
        n = int(prompt.split("What is ")[1].split(" ")[0])
        return f"{n} + {n} = {2 * n}.\nThe answer is: {2 * n}"

    path = tmp_path / "predictions.jsonl"
    with pytest.raises(KeyboardInterrupt):
        evaluate_items(ScriptedLM(tokenizer, respond), tokenizer, items, "cot", max_new_tokens=32, batch_size=2,
                       predictions_path=path, progress=True)
    err = capsys.readouterr().err
    assert [_json.loads(line)["id"] for line in path.read_text().splitlines()] == ["i/0", "i/1", "i/2", "i/3"]
    assert "[eval] 0/7 items" in err and "[eval] 2/7 items" in err  # must NOT wait for 64 items
    assert f"Ctrl-C: 4 of 7 items done, saved in {path}" in err
    stop_at = None
    model = ScriptedLM(tokenizer, respond)
    lines, metrics = evaluate_items(model, tokenizer, items, "cot", max_new_tokens=32, batch_size=2,
                                    predictions_path=path, progress=True)
    assert len(model.prompts) == 3 and metrics["resumed_items"] == 4  # only the unsaved items again
    assert metrics["accuracy"] == 1.0 and len(lines) == 7


# (items, batch_size, k, the item whose generation is interrupted, what the Ctrl-C line must say, the item ids
# saved); pitfalls: a Ctrl-C inside the only batch said "saved in predictions.jsonl" while no file was written,
# and with k > 1 nothing was shown until a chunk of save_every items ended
CTRL_C = [
    (6, 8, 1, 0, "0 of 6 items done, nothing saved yet", None),                        # the only batch
    (7, 2, 1, 4, "4 of 7 items done, saved in", ["i/0", "i/1", "i/2", "i/3"]),          # the third batch
    (7, 2, 1, 6, "6 of 7 items done, saved in", [f"i/{n}" for n in range(6)]),         # the last, shorter one
    (5, 2, 3, 3, "0 of 5 items done, nothing saved yet", None),                        # one chunk of samples
]


@pytest.mark.parametrize("n, batch, k, stop_item, said, saved", CTRL_C)
def test_ctrl_c_says_what_was_saved_and_progress_shows_within_a_chunk(tiny_model_dir, tmp_path, capsys, n, batch, k,
                                                                      stop_item, said, saved):
    import json as _json

    from transformers import AutoTokenizer

    from _eval_fakes import ScriptedLM
    from arithmo.evaluation import evaluate_items

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    items = [{"id": f"i/{m}", "benchmark": "tiny", "question": f"What is {m} plus {m}?", "answer": str(2 * m),
              "meta": {}} for m in range(n)]

    def respond(prompt, sampled, sample):
        m = int(prompt.split("What is ")[1].split(" ")[0])
        if m == stop_item and (sampled or k == 1):
            raise KeyboardInterrupt
        return f"The answer is: {2 * m}"

    path = tmp_path / "predictions.jsonl"
    with pytest.raises(KeyboardInterrupt):
        evaluate_items(ScriptedLM(tokenizer, respond), tokenizer, items, "cot", k=k, max_new_tokens=16,
                       batch_size=batch, predictions_path=path, progress=True)
    err = capsys.readouterr().err
    assert f"Ctrl-C: {said}" in err, err
    if saved is None:
        assert not path.exists() or not path.read_text().strip()  # must NOT claim a file that holds nothing
    else:
        assert [_json.loads(line)["id"] for line in path.read_text().splitlines()] == saved
    if k > 1:  # the greedy pass of the chunk was shown before the samples were interrupted
        assert f"items 1-{n} of {n}: generated" in err, err


# ----------------------------------------------------------------------------------------------
# presets suggest runs trained on the style they score


def _trained_styles() -> dict[str, set]:
    """{run name: styles it trained on} for the runs the training presets and the README's commands make."""
    from arithmo.config import load_config
    from arithmo.train import PRESETS, TrainConfig

    styles = {}
    for preset in PRESETS.glob("*.yaml"):
        cfg = load_config(TrainConfig, preset)
        styles.setdefault(cfg.name, set(cfg.styles))
    for command in _readme_commands():
        if "arithmo.train" in command and "--help" not in command:
            words = shlex.split(command)
            args = words[words.index("arithmo.train") + 1:]
            preset = PRESETS / f"{args[args.index('--preset') + 1]}.yaml" if "--preset" in args else None
            cfg = load_config(TrainConfig, preset, [a for a in args if "=" in a and not a.startswith("-")])
            styles[cfg.name] = set(cfg.styles)
    return styles


def _suggested_runs(text: str) -> list[str]:
    return re.findall(r"run=runs/([\w.-]+)", text)


def test_eval_presets_suggest_only_runs_trained_on_their_style():
    # pitfall: tiny_cot and tiny_tir suggested run=runs/demo, an adapter trained on programs only (styles [pot])
    from arithmo.config import load_config
    from arithmo.eval import PRESETS, EvalConfig

    trained = _trained_styles()
    checked = 0
    for preset in sorted(PRESETS.glob("*.yaml")):
        style = load_config(EvalConfig, preset).style
        wanted = {"pot", "cot"} if style == "hybrid" else {style}
        for run in _suggested_runs(preset.read_text()):
            if run in trained:
                checked += 1
                assert wanted & trained[run], f"{preset.name} ({style}) suggests runs/{run}, trained on {trained[run]}"
    assert checked >= 2  # tiny_pot -> runs/demo, tiny_cot -> runs/ms_sft at least


def test_the_style_check_sees_a_mismatch():
    # must NOT: the check above passes whatever the presets say
    trained = _trained_styles()
    assert trained["demo"] == {"pot"} and "cot" not in trained["demo"]
    assert _suggested_runs("#   python -m arithmo.eval --preset tiny_cot run=runs/demo") == ["demo"]


# ----------------------------------------------------------------------------------------------
# a GRPO run folder is a run; its resume follows the same rule as SFT's


def _grpo_run(root: Path, model: str = "smollm2-135m-instruct", **settings) -> Path:
    """A GRPO run folder as arithmo.grpo leaves it after step 2 of 30: grpo_config.yaml, a checkpoint, adapter/."""
    import json as _json

    from arithmo.config import load_config, save_config
    from arithmo.grpo import GRPOTrainConfig

    cfg = load_config(GRPOTrainConfig, {"name": "g", "output_dir": str(root), "max_steps": 30,
                                        "model": {"name": model, "template": "plain", "load_in_4bit": False},
                                        **settings})
    run = root / "g"
    save_config(cfg, run / "grpo_config.yaml")
    (run / "checkpoints" / "checkpoint-2").mkdir(parents=True)
    (run / "checkpoints" / "checkpoint-2" / "trainer_state.json").write_text(
        _json.dumps({"global_step": 2, "max_steps": 30}))
    (run / "adapter").mkdir()
    (run / "adapter" / "adapter_config.json").write_text(_json.dumps({"r": 8, "lora_alpha": 16,
                                                                       "base_model_name_or_path": model}))
    return run


def test_a_grpo_run_folder_is_a_run_for_eval_export_and_the_app(tmp_path):
    # pitfall: `eval run=runs/<grpo>` failed (no config.yaml) and `export runs/<grpo>` asked for --base
    from arithmo.config import load_config
    from arithmo.eval import EvalConfig, resolve
    from arithmo.export.cli import _name_and_template
    from arithmo.export.merge import _base_model_name, resolve_base_weights
    from arithmo.runs import read_run_config, run_of_adapter

    run = _grpo_run(tmp_path, model="my/base-model")
    assert read_run_config(run).model.name == "my/base-model"
    resolved = resolve(load_config(EvalConfig, {"run": str(run)}))
    assert (resolved.model, resolved.adapter, resolved.template) == ("my/base-model", str(run / "adapter"), "plain")
    assert run_of_adapter(run / "adapter").root == run
    assert _name_and_template(str(run), run / "adapter") == ("g", "plain")
    assert _base_model_name(run / "adapter") == "my/base-model"
    assert resolve_base_weights("auto", run / "adapter")[0] == "original"  # no --base needed: the config says
    # must NOT: a folder with neither config is taken for a run
    (run / "grpo_config.yaml").unlink()
    with pytest.raises(ValueError, match="config.yaml not found"):
        read_run_config(run)


# (changes on resume, what the refusal names): GRPO's pitfall was the same as SFT's, a changed lr or group size
# accepted while the checkpoint's were restored
GRPO_REFUSED = [
    (["lr=1e-4"], ["lr: 1e-05 -> 0.0001"]),
    (["num_generations=4", "micro_batch_size=4"], ["num_generations: 8 -> 4", "micro_batch_size: 8 -> 4"]),
    (["max_steps=60"], ["max_steps: 30 -> 60", "learning-rate schedule"]),
]


@pytest.mark.parametrize("extra, named", GRPO_REFUSED)
def test_a_grpo_resume_refuses_every_changed_setting(tmp_path, capsys, extra, named):
    from arithmo.grpo import main

    run = _grpo_run(tmp_path)
    before = (run / "grpo_config.yaml").read_text()
    code = main([f"output_dir={tmp_path}", "name=g", "max_steps=30", "model.template=plain",
                 "model.load_in_4bit=false", "resume=true", *extra])
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert code == 2 and err.startswith("error: resume=true continues"), err
    for text in named:
        assert text in err, (text, err)
    assert (run / "grpo_config.yaml").read_text() == before


# (edit to the questions file before the resume, whether refused); pitfall: GRPO resumed on an edited questions
# file under the same path (and grpo_config.yaml was rewritten before anything was checked)
@pytest.mark.parametrize("edit, refused", [
    (None, False),                                     # must NOT: the same questions
    ("copy", False),                                   # must NOT: the same questions from a copy elsewhere
    ("gold", True),                                    # another gold under the same id
    ("question", True),                                # another question under the same id
    ("drop", True),                                    # one question fewer
])
def test_a_grpo_resume_compares_the_questions_by_content(tmp_path, capsys, edit, refused):
    import json as _json

    from arithmo.benchmarks import load_items
    from arithmo.grpo import main
    from arithmo.resume import questions_fingerprint

    questions = tmp_path / "q.jsonl"
    lines = [{"id": f"q{i}", "question": f"What is {i} + {i}?", "answer": str(2 * i)} for i in range(4)]
    questions.write_text("".join(_json.dumps(line) + "\n" for line in lines))
    run = _grpo_run(tmp_path, benchmark="file", path=str(questions))
    (run / "manifest.json").write_text(_json.dumps(
        {"training": {"questions_sha256": questions_fingerprint(load_items("file", path=str(questions)))}}))
    before = (run / "grpo_config.yaml").read_text(), (run / "manifest.json").read_text()
    path = questions
    if edit == "copy":
        path = tmp_path / "copy.jsonl"
        path.write_text(questions.read_text())
    elif edit == "gold":
        lines[1]["answer"] = "5"
    elif edit == "question":
        lines[2]["question"] = "What is 9 + 9?"
    elif edit == "drop":
        lines.pop()
    if edit not in (None, "copy"):
        questions.write_text("".join(_json.dumps(line) + "\n" for line in lines))
    if not refused:  # the check passes; the model is not loaded here (model=<missing> stops right after it)
        from arithmo.config import load_config
        from arithmo.grpo import GRPOTrainConfig
        from arithmo.resume import check_same_launch

        now = load_config(GRPOTrainConfig, run / "grpo_config.yaml", [f"path={path}"])
        items = load_items("file", path=now.path)
        assert check_same_launch(run / "manifest.json", {"questions_sha256": questions_fingerprint(items)}, "") == []
        return
    code = main([f"output_dir={tmp_path}", "name=g", "max_steps=30", "model.template=plain", "benchmark=file",
                 f"path={path}", "model.load_in_4bit=false", "resume=true"])
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert code == 2 and "GRPO questions" in err, err
    assert ((run / "grpo_config.yaml").read_text(), (run / "manifest.json").read_text()) == before


def test_a_grpo_resume_accepts_the_keys_it_honours():
    # must NOT refuse: the intervals, the checkpoint limit and the sandbox's worker count
    from arithmo.resume import GRPO_MAY_CHANGE, resume_differences

    saved = {"lr": 1e-5, "logging_steps": 1, "save_steps": 25, "workers": None, "model": {"lora_r": 16}}
    asked = {"lr": 1e-5, "logging_steps": 5, "save_steps": 10, "workers": 2, "model": {"lora_r": 16}}
    assert resume_differences(saved, asked, GRPO_MAY_CHANGE) == []
    assert resume_differences(saved, {**asked, "model": {"lora_r": 8}}, GRPO_MAY_CHANGE) == ["model.lora_r: 16 -> 8"]


# ----------------------------------------------------------------------------------------------
# one resolver for every place a model is named


@pytest.mark.parametrize("name, expected", [
    ("{tiny}", 512),                      # a local folder
    ("smollm2-135m-instruct", 49152),     # the embedded alias model.name takes (pitfall: the recipe's tokenizer:
                                          # key retried the hub for a minute, then failed)
    ("/nope/tokenizer", "model folder not found: /nope/tokenizer"),   # must NOT: a missing path tried on the hub
    ("./missing", "model folder not found"),
    ("a/b/c", "model folder not found"),  # must NOT: more than org/name is no hub id
])
def test_the_recipes_tokenizer_key_takes_every_model_name(tiny_model_dir, name, expected):
    from arithmo.data.token_lengths import load_tokenizer
    from arithmo.io import DataError

    name = name.replace("{tiny}", str(tiny_model_dir))
    if isinstance(expected, int):
        assert len(load_tokenizer(name)) == expected
    else:
        with pytest.raises(DataError, match=re.escape(expected)):
            load_tokenizer(name)


def test_no_stage_reads_a_tokenizer_around_the_resolver():
    # where a model is named by a user (recipes, presets, CLIs), the name goes through arithmo.model's resolver;
    # export/modelfile reads a folder export itself wrote
    allowed = {"arithmo/model.py", "arithmo/export/modelfile.py"}
    offenders = [str(p.relative_to(REPO)) for p in (REPO / "arithmo").rglob("*.py")
                 if "AutoTokenizer.from_pretrained(" in p.read_text() and str(p.relative_to(REPO)) not in allowed]
    assert offenders == []


# ----------------------------------------------------------------------------------------------
# model cards


@pytest.mark.parametrize("base, hub_id", [
    ("smollm2-135m-instruct", "HuggingFaceTB/SmolLM2-135M-Instruct"),   # the alias: its source on the hub
    ("Qwen/Qwen2.5-Math-7B", "Qwen/Qwen2.5-Math-7B"),
    ("/tmp/some/local/model", None),       # must NOT: a path on this machine as the hub's base_model
    ("./tiny", None),
    ("merged/a/b", None),
])
@pytest.mark.parametrize("merged", [False, True])
def test_the_adapter_card_names_a_real_base_or_none(tmp_path, base, hub_id, merged):
    # pitfall: TRL's card said "fine-tuned version of [None](https://huggingface.co/None)", peft's was a template;
    # merged export folders had no card at all
    from arithmo.trainlog import write_model_card

    card = write_model_card(tmp_path, base_model=base, method="SFT", summary={"steps": 6, "train_loss": 0.42,
                            "val_loss": 0.5, "engine": "hf"}, run_name="demo", merged=merged).read_text()
    assert "[None]" not in card and "More Information Needed" not in card
    assert ("base_model: " + hub_id in card) if hub_id else "base_model:" not in card
    assert "training loss (mean over the run's steps): 0.4200" in card and "steps: 6" in card
    assert ("library_name: transformers" in card) == merged and ("library_name: peft" in card) == (not merged)
    assert ("base_model_relation: finetune" in card) == (merged and hub_id is not None)
    assert ("adapter=<this folder>" in card) == (not merged)  # a merged folder is loaded on its own


# ----------------------------------------------------------------------------------------------
# RFT: a resume keeps to the questions its samples answer


@pytest.mark.parametrize("asked, refused", [
    ("{tmp}/other.jsonl", True),     # pitfall: another questions file under the same ids was resumed silently
    ("{tmp}/q.jsonl", False),        # must NOT: the same file
    ("{tmp}/./q.jsonl", False),      # must NOT: the same file spelled otherwise
])
def test_an_rft_resume_refuses_other_questions(tmp_path, monkeypatch, asked, refused):
    import json as _json

    from arithmo.config import load_config, save_config
    from arithmo.rft.recipe import CONFIG, PROVENANCE, SAMPLES, RFTConfig, RFTError, check_resumable, config_hash

    out = tmp_path / "rft"
    out.mkdir()
    saved = load_config(RFTConfig, None, [f"out={out}", "benchmark=file", f"path={tmp_path}/q.jsonl"])
    save_config(saved, out / CONFIG)
    record = {"model": "m", "adapter": None, "backend": "hf"}
    (out / PROVENANCE).write_text(_json.dumps({**record, "config_hash": config_hash(saved)}))
    (out / SAMPLES).write_text('{"id": "q0", "style": "cot", "round": 0}\n')
    monkeypatch.setattr("arithmo.evaluation.provenance.check_saved_generator", lambda *a, **k: [])
    cfg = load_config(RFTConfig, None, [f"out={out}", "benchmark=file", f"path={asked.replace('{tmp}', str(tmp_path))}"])
    if refused:
        with pytest.raises(RFTError, match="samples of other questions.*path: "):
            check_resumable(cfg, out, record)
    else:
        assert check_resumable(cfg, out, record) is False


# (the questions asked on resume, as edits of the sampled ones, whether refused); pitfall: the same file edited
# under the same ids (or a hub split re-uploaded) resumed, grading old samples against new golds
QUESTION_EDITS = [
    ({}, False),                                          # must NOT: the same questions
    ({"path": "{tmp}/copy.jsonl"}, False),                # must NOT: a copy of the file elsewhere (same content)
    ({"n": 1}, False),                                    # must NOT: fewer of the same questions
    ({"gold": {"q1": "7"}}, True),                        # another gold under the same id
    ({"question": {"q0": "What is 3 + 3?"}}, True),       # another question under the same id
]


@pytest.mark.parametrize("edit, refused", QUESTION_EDITS)
def test_an_rft_resume_compares_the_questions_by_content(tmp_path, monkeypatch, edit, refused):
    import json as _json

    from arithmo.config import load_config, save_config
    from arithmo.rft.recipe import (CONFIG, PROVENANCE, SAMPLES, RFTConfig, RFTError, check_resumable, config_hash,
                                    question_digests)

    items = [{"id": f"q{i}", "question": f"What is {i} + {i}?", "answer": str(2 * i)} for i in range(3)]
    out = tmp_path / "rft"
    out.mkdir()
    saved = load_config(RFTConfig, None, [f"out={out}", "benchmark=file", f"path={tmp_path}/q.jsonl"])
    save_config(saved, out / CONFIG)
    record = {"model": "m", "adapter": None, "backend": "hf"}
    (out / PROVENANCE).write_text(_json.dumps({**record, "config_hash": config_hash(saved),
                                               "questions": question_digests(items)}))
    (out / SAMPLES).write_text('{"id": "q0", "style": "cot", "round": 0}\n')
    monkeypatch.setattr("arithmo.evaluation.provenance.check_saved_generator", lambda *a, **k: [])
    now = [dict(item) for item in items[:edit.get("n", 3)]]
    for item in now:
        item["answer"] = edit.get("gold", {}).get(item["id"], item["answer"])
        item["question"] = edit.get("question", {}).get(item["id"], item["question"])
    path = edit.get("path", "{tmp}/q.jsonl").replace("{tmp}", str(tmp_path))
    cfg = load_config(RFTConfig, None, [f"out={out}", "benchmark=file", f"path={path}"])
    if refused:
        with pytest.raises(RFTError, match="samples of other questions: 1 of the ids"):
            check_resumable(cfg, out, record, question_digests(now))
    else:
        assert check_resumable(cfg, out, record, question_digests(now)) is False


# ----------------------------------------------------------------------------------------------
# noise: lines that read like a broken install


@pytest.mark.parametrize("message, shown", [
    ("Failed to load CPU gemm_4bit_forward from kernels-community: %s. Please make sure you already `pip install "
     "kernels` and the kernels >= 0.11.1", False),          # pitfall: the optional kernel's absence read as broken
    ("Something else went wrong in the CPU backend: %s", True),  # must NOT: other bitsandbytes warnings stay
])
def test_the_optional_bitsandbytes_cpu_kernel_is_not_reported_as_missing(message, shown):
    import logging

    import arithmo  # noqa: F401  (installs the filter)

    records = []

    class Keep(logging.Handler):
        def emit(self, record):
            records.append(record)

    logger = logging.getLogger("bitsandbytes.backends.cpu.ops")
    handler = Keep()
    logger.addHandler(handler)
    try:
        logger.warning(message, "No module named 'kernels'")
    finally:
        logger.removeHandler(handler)
    assert bool(records) == shown


def test_a_bpe_tokenizer_decodes_without_the_cleanup_warning(tiny_model_dir, caplog):
    # pitfall: SmolLM2's GGUF tokenizer config turns clean_up_tokenization_spaces on; transformers ignores it for
    # BPE but warned on GRPO's and the GGUF export's decodes
    from arithmo.model import load_tokenizer

    tokenizer = load_tokenizer(str(tiny_model_dir))
    tokenizer.clean_up_tokenization_spaces = True
    from arithmo.model import _bpe_cleanup_off

    _bpe_cleanup_off(tokenizer)
    bpe = type(tokenizer.backend_tokenizer.model).__name__ == "BPE"
    assert tokenizer.clean_up_tokenization_spaces is (not bpe)
    text = "a , b . c"
    assert tokenizer.decode(tokenizer(text, add_special_tokens=False)["input_ids"]) == text  # the text is unchanged


# (name, whether it is refused at once as a missing local folder); pitfall: `model=merged/m7b` with no such
# folder was taken for a hub id, retried the hub for a minute and failed with three lines
@pytest.mark.parametrize("name, local", [
    ("merged/nothing_here", True),          # ./merged exists: a typo in a local path
    ("./merged/nothing_here", True),
    ("a/b/c", True),                        # never a hub id
    ("Qwen/Qwen2.5-Math-7B", False),        # must NOT: a hub id (no ./Qwen folder)
    ("gpt2", False),                        # must NOT: a bare hub name
])
def test_a_missing_local_model_folder_is_not_sent_to_the_hub(tmp_path, monkeypatch, name, local):
    from arithmo.model import ModelError, resolve_model_path

    monkeypatch.chdir(tmp_path)
    (tmp_path / "merged").mkdir()
    if local:
        with pytest.raises(ModelError, match="model folder not found"):
            resolve_model_path(name)
    else:
        assert resolve_model_path(name) == (name, None)
