"""The run folder: its layout, and the readers of what a run holds (config, adapter, evaluation metrics).

    runs/<name>/                       RunFolder(Path("runs/<name>"))
      config.yaml                      the resolved TrainConfig (itself a valid preset): read_run_config(run)
                                       (a GRPO run: grpo_config.yaml, read the same way for its model)
      manifest.json                    the training data's manifest
      data/                            a recipe YAML built for this run
      checkpoints/checkpoint-<step>/   what resume=true continues from
      adapter/                         PEFT safetensors + adapter_config.json: adapter_info(run)
      train_log.jsonl, summary.json, tensorboard/
      eval/<benchmark>_<style>[_maj<k>]/
        eval_config.yaml, provenance.json, predictions.jsonl, metrics.json (read_metrics), accuracy.png

Training writes this layout; evaluation, export, report and the app read it through this module only.
Errors are `RunError` (a ValueError) naming the file and what was expected.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from arithmo.config import ConfigError, load_config
from arithmo.records import Metrics
from arithmo.settings import TrainConfig

GRPO_CONFIG = "grpo_config.yaml"  # arithmo.grpo's run folder keeps its GRPOTrainConfig under this name
ADAPTER_CONFIG = "adapter_config.json"  # peft's name for an adapter's config
EVAL_CONFIG, PREDICTIONS, METRICS, CHART = "eval_config.yaml", "predictions.jsonl", "metrics.json", "accuracy.png"
PROVENANCE = "provenance.json"  # what produced predictions.jsonl (arithmo.evaluation.provenance)
# The keys every table of results needs (docs/design.md "metrics.json").
REQUIRED_METRICS = ("benchmark", "style", "n", "accuracy")


class RunError(ValueError):
    """A run folder, adapter or metrics file is not what was expected; the message names the file."""


@dataclass(frozen=True)
class RunFolder:
    """The paths inside one training run folder (nothing is created or checked here)."""

    root: Path

    @classmethod
    def of(cls, output_dir: str | Path, name: str) -> RunFolder:
        return cls(Path(output_dir) / name)

    @property
    def config(self) -> Path:
        """The run's config file: config.yaml (SFT), or grpo_config.yaml in a GRPO run folder."""
        sft = self.root / "config.yaml"
        grpo = self.root / GRPO_CONFIG
        return grpo if not sft.is_file() and grpo.is_file() else sft

    @property
    def manifest(self) -> Path:
        return self.root / "manifest.json"

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    @property
    def adapter(self) -> Path:
        return self.root / "adapter"

    @property
    def train_log(self) -> Path:
        return self.root / "train_log.jsonl"

    @property
    def summary(self) -> Path:
        return self.root / "summary.json"

    @property
    def tensorboard(self) -> Path:
        return self.root / "tensorboard"

    @property
    def eval_root(self) -> Path:
        return self.root / "eval"

    def eval_dir(self, benchmark: str, style: str, k: int = 1) -> Path:
        return self.eval_root / eval_folder_name(benchmark, style, k)


def eval_folder_name(benchmark: str, style: str, k: int = 1) -> str:
    """`gsm8k_cot`, or `gsm8k_cot_maj8` with maj@8: one folder per benchmark, style and k."""
    return f"{benchmark}_{style}" + (f"_maj{k}" if k > 1 else "")


def default_eval_dir(model: str, adapter: str | None, benchmark: str, style: str, k: int = 1,
                     runs_dir: str | Path = "runs") -> Path:
    """Where an evaluation without a run goes: runs/eval/<model slug>[+<adapter name>]/<benchmark>_<style>."""
    slug = model.strip("/").replace("/", "--") + (f"+{Path(adapter).name}" if adapter else "")
    return Path(runs_dir) / "eval" / slug / eval_folder_name(benchmark, style, k)


# ----------------------------------------------------------------------------------------------
# config and adapter


def is_adapter(folder: str | Path) -> bool:
    """Whether `folder` holds a PEFT adapter (its adapter_config.json)."""
    return (Path(folder) / ADAPTER_CONFIG).is_file()


def find_adapter(path: str | Path) -> Path:
    """The adapter of a run folder (runs/<name> -> runs/<name>/adapter) or `path` itself when it is one."""
    path = Path(path)
    for candidate in (RunFolder(path).adapter, path):
        if is_adapter(candidate):
            return candidate
    raise RunError(f"{path} holds no trained adapter ({ADAPTER_CONFIG}): expected a training run folder with "
                   "adapter/, or a PEFT adapter folder; train the run first")


def run_of_adapter(adapter: str | Path) -> RunFolder | None:
    """The run folder an adapter folder belongs to (runs/<name>/adapter -> runs/<name>), when it has a config."""
    run = RunFolder(Path(adapter).parent)
    return run if Path(adapter).name == "adapter" and run.config.is_file() else None


def read_run_config(run: str | Path | RunFolder) -> TrainConfig:
    """The run's config.yaml as a typed TrainConfig (through load_config: unknown keys and wrong types are
    errors naming the key). Raises RunError when the file is missing or is not a training config."""
    folder = run if isinstance(run, RunFolder) else RunFolder(Path(run))
    if not folder.config.is_file():
        raise RunError(f"{folder.config} not found (expected a training run folder, runs/<name>)")
    import yaml

    try:
        raw = yaml.safe_load(folder.config.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as err:
        raise RunError(f"{folder.config}: not valid YAML ({err})") from err
    # a training run writes its whole resolved config; without the model's name the defaults would stand in
    # for the real base model (a 7B run evaluated on the CPU demo's model)
    if not isinstance(raw, dict) or not isinstance(raw.get("model"), dict) or not raw["model"].get("name"):
        raise RunError(f"{folder.config}: no `model: {{name: ...}}` (expected the config.yaml a training run writes)")
    if folder.config.name == GRPO_CONFIG:
        # A GRPO run is a run to every later stage (eval, export, report, the app): they read its model section.
        # Its other keys (rewards, generations) have no TrainConfig counterpart; name and output_dir are kept.
        try:
            return load_config(TrainConfig, {key: raw[key] for key in ("name", "output_dir", "model", "styles")
                                                if key in raw})
        except ConfigError as err:
            raise RunError(f"{folder.config}: not a GRPO run's config ({err})") from err
    try:
        return load_config(TrainConfig, folder.config)
    except ConfigError as err:
        raise RunError(f"{folder.config}: not a training run's config ({err})") from err


@dataclass(frozen=True)
class AdapterInfo:
    """What an adapter's adapter_config.json says about it."""

    path: Path
    rank: int  # LoRA r; the largest rank when rank_pattern sets some modules apart
    alpha: float
    target_modules: list[str]
    base_model: str | None  # base_model_name_or_path, as peft recorded it


def adapter_info(path: str | Path) -> AdapterInfo:
    """Rank, alpha, target modules and base model of an adapter (or of a run folder's adapter/).

    Raises RunError when there is no adapter or its adapter_config.json lacks `r`.
    """
    folder = find_adapter(path)
    config_file = folder / ADAPTER_CONFIG
    try:
        config = json.loads(config_file.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        raise RunError(f"{config_file}: cannot be read as JSON ({err})") from err
    rank = config.get("r")
    if not isinstance(rank, int) or isinstance(rank, bool) or rank < 1:
        raise RunError(f"{config_file}: expected a positive integer `r` (the LoRA rank), got {rank!r}")
    # peft's rank_pattern gives some modules another rank; vLLM must be started for the largest one.
    ranks = [rank, *[r for r in (config.get("rank_pattern") or {}).values() if isinstance(r, int)]]
    targets = config.get("target_modules") or []
    targets = [targets] if isinstance(targets, str) else sorted(targets)
    return AdapterInfo(folder, max(ranks), float(config.get("lora_alpha") or rank), targets,
                       config.get("base_model_name_or_path"))


# ----------------------------------------------------------------------------------------------
# evaluation results


def read_metrics(path: str | Path) -> Metrics:
    """The metrics of an eval output folder or metrics.json file.

    Raises RunError naming the file when it is absent, not JSON, not an object, lacks one of
    REQUIRED_METRICS, or has an accuracy outside 0..1.
    """
    path = Path(path)
    if path.is_dir():
        path = path / METRICS
    if not path.is_file():
        raise RunError(f"{path}: no {METRICS} here (run python -m arithmo.eval first)")
    try:
        metrics: Any = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise RunError(f"{path}: cannot be read as JSON ({err})") from err
    if not isinstance(metrics, dict):
        raise RunError(f"{path}: expected a JSON object (an arithmo {METRICS}), got {type(metrics).__name__}")
    missing = [key for key in REQUIRED_METRICS if key not in metrics]
    if missing:
        raise RunError(f"{path}: no {', '.join(repr(k) for k in missing)} (expected an arithmo {METRICS} with "
                       f"{', '.join(REQUIRED_METRICS)})")
    accuracy = metrics["accuracy"]
    if isinstance(accuracy, bool) or not isinstance(accuracy, (int, float)) or not 0 <= accuracy <= 1:
        raise RunError(f"{path}: 'accuracy' should be a number from 0 to 1, got {accuracy!r}")
    return metrics  # type: ignore[return-value]


def eval_label(metrics_path: str | Path) -> str:
    """`<run name>/<eval folder>` for runs/<name>/eval/<folder>/metrics.json (else `<parent>/<folder>`)."""
    path = Path(metrics_path)
    folder = path.parent
    run = folder.parent.parent if folder.parent.name == "eval" else folder.parent
    return f"{run.name}/{folder.name}"


def find_metrics(runs_dir: str | Path) -> dict[str, list[Path]]:
    """{run: its metrics.json files} under `runs_dir`, sorted.

    A training run's results sit in runs/<name>/eval/<benchmark>_<style>/metrics.json (run "<name>");
    an evaluation without a run in runs/eval/<model>/<benchmark>_<style>/metrics.json (run "eval/<model>").
    """
    root = Path(runs_dir)
    found: dict[str, list[Path]] = {}
    if not root.is_dir():
        return found
    for path in sorted(root.rglob(METRICS)):
        parent = path.parent.parent
        run = parent.parent if parent.name == "eval" else parent
        label = run.relative_to(root).as_posix() if run != root else "."
        found.setdefault(label, []).append(path)
    return dict(sorted(found.items()))
