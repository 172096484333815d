"""Experiment trackers for a training run (`report_to`): TensorBoard, W&B, MLflow, trackio, one run each."""

from __future__ import annotations

import os

from arithmo.runs import RunFolder
from arithmo.settings import TRACKERS, TrainError

_open_wandb_runs: list = []  # the W&B run tracker_callbacks started last in this process (a notebook trains again)


def tracker_callbacks(report_to: str, run: RunFolder) -> tuple[list, list[str]]:
    """(transformers callbacks, tracker names) for `report_to`, each writing to this run only.

    transformers' own wiring leaks across two `train()` calls in one process (a notebook): TensorBoard takes its
    folder from TENSORBOARD_LOGGING_DIR, which a first run would leave set, and W&B logs into whatever run is
    still open. So TensorBoard gets <run>/tensorboard explicitly, and W&B a run of its own in <run>/wandb (the
    previous one this function started is finished first; one the user opened stays in use). W&B without network:
    WANDB_MODE=offline. trackio keeps its projects in TRACKIO_DIR (default ~/.cache/huggingface/trackio); mlflow
    follows MLFLOW_TRACKING_URI. Raises TrainError naming the extra when a tracker is not installed.
    """
    import importlib.util

    names = [name.strip() for name in report_to.split(",")]
    if names == ["auto"]:  # TensorBoard when it is installed, as before report_to existed
        names = ["tensorboard"] if importlib.util.find_spec("tensorboard") else []
    names = [name for name in names if name != "none"]
    for name in names:
        if importlib.util.find_spec(TRACKERS[name]) is None:
            raise TrainError(f"report_to={name}: {TRACKERS[name]} is not installed; pip install 'arithmo[{name}]'")
    callbacks = []
    if "tensorboard" in names:
        from transformers.integrations import TensorBoardCallback

        board = TensorBoardCallback()
        board.logging_dir = str(run.tensorboard)  # read in on_train_begin; wins over the environment
        callbacks.append(board)
    if "wandb" in names:
        from transformers.integrations import WandbCallback

        class RunWandb(WandbCallback):
            def setup(self, args, state, model, **kwargs):
                if state.is_world_process_zero:
                    if any(opened is self._wandb.run for opened in _open_wandb_runs):
                        self._wandb.finish()
                        _open_wandb_runs.clear()
                    if self._wandb.run is None:
                        run.root.mkdir(parents=True, exist_ok=True)
                        _open_wandb_runs.append(self._wandb.init(
                            project=os.getenv("WANDB_PROJECT", "arithmo"), name=args.run_name, dir=str(run.root)))
                super().setup(args, state, model, **kwargs)

        callbacks.append(RunWandb())
    if "mlflow" in names:
        from transformers.integrations import MLflowCallback

        callbacks.append(MLflowCallback())
    if "trackio" in names:
        from transformers.integrations import TrackioCallback

        callbacks.append(TrackioCallback())  # local unless TrainingArguments.trackio_space_id is set
    return callbacks, names
