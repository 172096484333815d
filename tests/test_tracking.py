"""report_to: each tracker logs the run it belongs to, twice in one process (a notebook) without the first run's
folder or W&B run leaking into the second; TensorBoard, W&B (WANDB_MODE=offline) and trackio (a local TRACKIO_DIR)
run here; a tracker that is not installed is a TrainError naming its extra."""

import json
import os
import sqlite3
import subprocess
import sys

import pytest

from arithmo.config import ConfigError, load_config
from arithmo.runs import RunFolder
from arithmo.settings import TrainConfig, TrainError
from arithmo.tracking import tracker_callbacks

from _shared import REPO, write_sft_folder

# Trains the tiny model twice per tracker in ONE process, as a notebook would. Every W&B Run.log and Run.finish
# is recorded (with the run's name and folder) into $CALLS, to see which run each metric went to.
CHILD = """
import json, os, sys
from arithmo.config import load_config
from arithmo.settings import TrainConfig
from arithmo.train import train

calls = []
if os.environ.get("CALLS"):
    import wandb.sdk.wandb_run as wandb_run

    log, finish = wandb_run.Run.log, wandb_run.Run.finish
    def recorded_log(self, data, *args, **kwargs):
        calls.append({"event": "log", "run": self.name, "dir": self.dir, "keys": sorted(data),
                      "step": data.get("train/global_step")})
        return log(self, data, *args, **kwargs)
    def recorded_finish(self, *args, **kwargs):
        calls.append({"event": "finish", "run": self.name})
        return finish(self, *args, **kwargs)
    wandb_run.Run.log, wandb_run.Run.finish = recorded_log, recorded_finish

data, out, model = sys.argv[1:4]
base = [f"data={data}", f"output_dir={out}", f"model.name={model}", "model.engine=hf", "model.load_in_4bit=false",
        "model.dtype=float32", "model.max_seq_length=128", "model.gradient_checkpointing=false", "micro_batch_size=4",
        "grad_accum=1", "max_steps=2", "save_steps=2", "logging_steps=1"]
for pair in sys.argv[4:]:
    name, report_to = pair.split(":")
    train(load_config(TrainConfig, None, base + [f"name={name}", f"report_to={report_to}"]))
if os.environ.get("CALLS"):
    json.dump(calls, open(os.environ["CALLS"], "w"))
"""
RUNS = ("tb1:tensorboard", "tb2:tensorboard", "wb1:wandb", "wb2:wandb", "tr1:trackio")


@pytest.fixture(scope="module")
def tracked(tmp_path_factory, tiny_model_dir):
    for module in ("tensorboard", "wandb", "trackio"):
        pytest.importorskip(module, reason=f"{module} is in the dev extra (make setup installs it)")
    root = tmp_path_factory.mktemp("tracking")
    write_sft_folder(root / "data", n_train=8, n_val=0)
    env = dict(os.environ, PYTHONPATH=str(REPO), CALLS=str(root / "calls.json"), WANDB_MODE="offline",
               WANDB_SILENT="true", TRACKIO_DIR=str(root / "trackio"),
               TENSORBOARD_LOGGING_DIR=str(root / "elsewhere"))  # must not win over the run's own folder
    done = subprocess.run([sys.executable, "-c", CHILD, str(root / "data"), str(root / "runs"), str(tiny_model_dir),
                           *RUNS], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-4000:]
    return root


def _scalars(folder, tag):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    steps = []
    for events in sorted(folder.glob("events.out.tfevents.*")):
        accumulator = EventAccumulator(str(events))
        accumulator.Reload()
        if tag in accumulator.Tags()["scalars"]:
            steps += [event.step for event in accumulator.Scalars(tag)]
    return steps


def test_tensorboard_writes_each_run_in_its_own_folder(tracked):
    runs = tracked / "runs"
    assert _scalars(runs / "tb1" / "tensorboard", "train/loss") == [1, 2]
    assert _scalars(runs / "tb2" / "tensorboard", "train/loss") == [1, 2]  # not appended to tb1's folder
    assert not (tracked / "elsewhere").exists()
    assert not any((runs / name / "tensorboard").exists() for name in ("wb1", "wb2", "tr1"))  # only where asked


def test_wandb_offline_gives_each_train_its_own_run(tracked):
    calls = json.loads((tracked / "calls.json").read_text())
    logged = [c for c in calls if c["event"] == "log" and "train/loss" in c["keys"]]
    for name in ("wb1", "wb2"):
        mine = [c for c in logged if c["run"] == name]
        assert [c["step"] for c in mine] == [1, 2], calls
        assert all(str(tracked / "runs" / name / "wandb") in c["dir"] for c in mine)
        assert len(list((tracked / "runs" / name / "wandb").glob("offline-run-*/run-*.wandb"))) == 1
    assert {c["run"] for c in logged} == {"wb1", "wb2"}  # no TensorBoard or trackio run reached W&B
    finished = [i for i, c in enumerate(calls) if c["event"] == "finish" and c["run"] == "wb1"]
    first_wb2 = next(i for i, c in enumerate(calls) if c["run"] == "wb2")
    assert finished and finished[0] < first_wb2  # wb1 was closed before wb2 began


def test_trackio_logs_locally_under_the_run_name(tracked):
    database = tracked / "trackio" / "arithmo.db"  # project "arithmo" (TRACKIO_PROJECT to change it)
    rows = sqlite3.connect(database).execute("select run_name, step, metrics from metrics").fetchall()
    logged = [json.loads(metrics) for run, _, metrics in rows if run == "tr1"]
    losses = [(m["train/global_step"], m["train/loss"]) for m in logged if "train/loss" in m]
    assert [step for step, _ in losses] == [1, 2] and all(loss > 0 for _, loss in losses)
    assert {run for run, _, _ in rows} == {"tr1"}


@pytest.mark.parametrize("report_to, module", [
    ("wandb", "wandb"), ("mlflow", "mlflow"), ("trackio", "trackio"), ("tensorboard", "tensorboard"),
    ("tensorboard,wandb", "wandb"),  # the missing one of two is named
])
def test_missing_tracker_names_its_extra(monkeypatch, tmp_path, report_to, module):
    import importlib.util

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == module else find_spec(name, *a))
    message = rf"report_to={module}: {module} is not installed; pip install 'arithmo\[{module}\]'"
    with pytest.raises(TrainError, match=message):
        tracker_callbacks(report_to, RunFolder(tmp_path))


def test_auto_is_tensorboard_when_installed(monkeypatch, tmp_path):
    import importlib.util

    find_spec = importlib.util.find_spec
    assert tracker_callbacks("none", RunFolder(tmp_path)) == ([], [])
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "tensorboard" else find_spec(name, *a))
    assert tracker_callbacks("auto", RunFolder(tmp_path)) == ([], [])  # not installed: no tracker, no error


@pytest.mark.parametrize("value, ok", [
    ("auto", True), ("none", True), ("wandb", True), ("tensorboard,trackio", True), ("wandb, mlflow", True),
    ("neptune", False),        # not one arithmo wires up
    ("auto,wandb", False),     # auto and none stand alone
    ("wandb,", False),         # an empty name
])
def test_report_to_values(value, ok):
    if ok:
        assert load_config(TrainConfig, None, [f"report_to={value}"]).report_to == value
    else:
        with pytest.raises(ConfigError, match="report_to: expected auto, none, or a comma-separated list"):
            load_config(TrainConfig, None, [f"report_to={value}"])


def test_mlflow_logs_to_a_local_store(tmp_path, tiny_model_dir):
    pytest.importorskip("mlflow", reason="mlflow is not in the dev extra: pip install 'arithmo[mlflow]' to run this")
    write_sft_folder(tmp_path / "data", n_train=8, n_val=0)
    env = dict(os.environ, PYTHONPATH=str(REPO), MLFLOW_TRACKING_URI=f"sqlite:///{tmp_path / 'mlflow.db'}")
    done = subprocess.run([sys.executable, "-c", CHILD,
                           str(tmp_path / "data"), str(tmp_path / "runs"), str(tiny_model_dir), "ml1:mlflow"],
                          env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-4000:]
    import mlflow

    mlflow.set_tracking_uri(env["MLFLOW_TRACKING_URI"])
    runs = mlflow.search_runs(search_all_experiments=True)
    assert list(runs["tags.mlflow.runName"]) == ["ml1"] and runs["metrics.train/loss"].notna().all()
