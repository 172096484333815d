"""The `arithmo` console script: every command reaches its stage's own main(argv) (and so its --help with every
key), errors name the command, and pyproject.toml installs the script."""

import subprocess
import sys
import tomllib

import pytest

from arithmo import cli

from _shared import REPO


@pytest.mark.parametrize("argv, expected", [
    (["data", "--help"], "dedup.threshold"),                 # the recipe keys (arithmo.data's top-level epilog)
    (["data", "build", "--help"], "--out OUT"),
    (["data", "build", "--help"], "sources.N.max_rows"),     # the keys inside a source entry, where users look
    (["data", "build", "--help"], "decontaminate.benchmarks.N.name"),  # ... and inside a benchmark entry
    (["train", "--help"], "model.chat_template"),            # every TrainConfig key, the new ones included
    (["train", "--help"], "report_to"),
    (["eval", "--help"], "usage: arithmo eval"),             # pitfall: usage named `python -m arithmo.eval`
    (["data", "--help"], "usage: arithmo data"),             # ... and `python -m arithmo.data`
    (["export", "--help"], "--base {auto,dequantized,original}"),
    (["report", "--help"], "python -m arithmo.report"),
    (["rft", "--help"], "usage: arithmo rft"),               # arithmo/rft/ keeps main in recipe.py
    (["grpo", "--help"], "usage: arithmo grpo"),
    (["app", "--help"], "--adapter"),                        # app.py beside the package
])
def test_each_command_is_its_stage_main(argv, expected, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(argv)
    assert exit_info.value.code == 0
    assert expected in capsys.readouterr().out


def test_overview_lists_every_command(capsys):
    assert cli.main(["--help"]) == 0
    out = capsys.readouterr().out
    assert all(f"  {name}" in out for name in cli.COMMANDS)
    assert cli.main([]) == 2  # no command: the overview, and a usage exit code


@pytest.mark.parametrize("argv, message", [
    (["trian"], "unknown command 'trian'; expected one of data, train"),  # a typo names the choices
])
def test_unknown_command(argv, message, capsys):
    assert cli.main(argv) == 2
    assert message in capsys.readouterr().err


def test_missing_rft_stage_is_a_clear_error(monkeypatch, capsys):
    import importlib

    real = importlib.import_module

    def without_rft(name, *args, **kwargs):
        if name.startswith("arithmo.rft"):
            raise ModuleNotFoundError(f"No module named {name!r}")
        return real(name, *args, **kwargs)

    monkeypatch.setattr(cli.importlib, "import_module", without_rft)
    assert cli.main(["rft"]) == 2
    assert "the RFT stage is not in this install" in capsys.readouterr().err


def test_exit_code_is_the_stage_s(tmp_path, capsys):
    assert cli.main(["export", str(tmp_path), "--out", str(tmp_path / "o")]) == 2  # export's own error code
    assert "holds no trained adapter" in capsys.readouterr().err


def test_pyproject_installs_the_script():
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    module, function = scripts["arithmo"].split(":")
    assert (module, function) == ("arithmo.cli", "main")


def test_python_m_forms_keep_working():
    for module in ("arithmo.export", "arithmo.cli"):
        done = subprocess.run([sys.executable, "-m", module, "--help"], capture_output=True, text=True, cwd=REPO,
                              timeout=120)
        assert done.returncode == 0 and "usage:" in done.stdout, done.stderr[-2000:]


def test_the_installed_script_runs():
    from pathlib import Path

    script = Path(sys.executable).parent / "arithmo"  # pip install -e . (make setup) writes it beside python
    assert script.is_file(), f"{script} is missing: reinstall the package (pip install -e .) to get the script"
    done = subprocess.run([str(script), "export", "--help"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "--format {safetensors,gguf}" in done.stdout, done.stderr[-2000:]


@pytest.mark.parametrize("module, cls", [("arithmo.data.recipe", "DataConfig"), ("arithmo.settings", "TrainConfig"),
                                         ("arithmo.eval", "EvalConfig"), ("arithmo.rft.recipe", "RFTConfig")])
def test_the_help_examples_are_keys_of_that_stage(module, cls):
    # pitfall: `data build --help` offered `model.lora_r=32` as an example, a training key no recipe has
    import importlib
    import re

    from arithmo.config import describe, recipe_epilog

    config = getattr(importlib.import_module(module), cls)
    examples = re.search(r"e\.g\. (.*?)\):", recipe_epilog(config)).group(1).split(", ")
    keys = {line.split(" (")[0].strip() for line in describe(config)}
    for example in examples:
        key = example.split("=")[0]
        assert key in keys or re.sub(r"\.\d+\.", ".N.", key) in keys, (example, sorted(keys)[:5])
