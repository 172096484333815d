"""Every hub id, config, split and column arithmo names is checked against the datasets' real schemas.

The table of real schemas is `hub_schemas.py` (transcribed from each dataset card). What is checked:
the benchmark table (`arithmo.benchmarks.BENCHMARKS`), every data recipe's sources (with the columns of the
adapter they name) and decontamination benchmarks, and every eval preset's hub settings.
"""

from pathlib import Path

import pytest
import yaml
from _shared import REPO
from hub_schemas import HUB_SCHEMAS

from arithmo.benchmarks import BENCHMARKS, NAMES
from arithmo.config import load_config
from arithmo.data.adapters import ADAPTERS, COLUMNS
from arithmo.data.recipe import DataConfig
from arithmo.eval import PRESETS, EvalConfig

RECIPES = sorted((REPO / "data_recipes").glob("*.yaml"))


def check(hub: str, config: str | None, splits: list[str], columns: tuple[str, ...], where: str) -> None:
    """AssertionError naming `where` and what the card says, for a hub id/config/split/column not on it."""
    assert hub in HUB_SCHEMAS, f"{where}: hub id {hub!r} is not in hub_schemas.py (transcribe its card first)"
    schema = HUB_SCHEMAS[hub]
    if schema["configs"] is None:
        assert config in (None, "default"), f"{where}: {hub} has only its default config, not {config!r}"
    else:
        assert config in schema["configs"], f"{where}: {hub} has no config {config!r}; it has {schema['configs']}"
    for split in splits:
        assert split in schema["splits"], f"{where}: {hub} has no split {split!r}; it has {schema['splits']}"
    missing = [column for column in columns if column not in schema["columns"]]
    assert not missing, f"{where}: {hub} has no column(s) {missing}; it has {schema['columns']}"


@pytest.mark.parametrize("name", sorted(BENCHMARKS))
def test_benchmark_table_matches_the_cards(name):
    spec = BENCHMARKS[name]
    for config in spec.configs:
        check(spec.hub, config, [spec.split], spec.columns, f"arithmo/benchmarks.py[{name}]")


def test_the_checker_catches_the_kinds_of_mistake_it_exists_for():
    # The bug this test was written for: hendrycks_math has one config per subject and no "all".
    with pytest.raises(AssertionError, match="no config 'all'"):
        check("EleutherAI/hendrycks_math", "all", ["test"], (), "recipe")
    with pytest.raises(AssertionError, match="no split 'validation'"):
        check("openai/gsm8k", "main", ["validation"], (), "recipe")  # GSM8K has train and test only
    with pytest.raises(AssertionError, match=r"no column\(s\) \['problem'\]"):
        check("openai/gsm8k", "main", ["test"], ("problem",), "recipe")  # MATH's column name on GSM8K
    with pytest.raises(AssertionError, match="only its default config"):
        check("HuggingFaceH4/MATH-500", "test", ["test"], (), "recipe")
    with pytest.raises(AssertionError, match="not in hub_schemas.py"):
        check("hendrycks/competition_math", None, ["test"], (), "recipe")  # taken down from the hub


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda p: p.name)
def test_recipes_name_real_configs_splits_and_columns(recipe: Path):
    cfg = load_config(DataConfig, recipe)
    for source in cfg.sources:
        assert source.adapter in ADAPTERS
        if source.hub is not None:
            check(source.hub, source.config, source.splits, COLUMNS[source.adapter],
                  f"{recipe.name} sources[{source.name}]")
    for bench in cfg.decontaminate.benchmarks:
        where = f"{recipe.name} decontaminate.benchmarks[{bench.name}]"
        if bench.benchmark is not None:
            assert bench.benchmark in NAMES, where
            if bench.path is not None or (bench.hub is None and bench.config is None):
                continue  # a local file, or the benchmark's own hub settings (test_benchmark_table_matches_the_cards)
            spec = BENCHMARKS.get(bench.benchmark)
            hub = bench.hub or spec.hub
            columns = spec.columns if spec is not None and bench.hub is None else ()
            check(hub, bench.config, [bench.split], columns, where)
        elif bench.hub is not None:
            columns = (bench.question_field,) if bench.question_field else ()
            check(bench.hub, bench.config, [bench.split], columns, where)


def test_the_full_mix_requires_the_headline_benchmarks():
    cfg = load_config(DataConfig, REPO / "data_recipes" / "arithmo.yaml")
    by_benchmark = {bench.benchmark: bench for bench in cfg.decontaminate.benchmarks}
    assert by_benchmark["gsm8k"].required and by_benchmark["math"].required
    # and they read the full test sets: no hub, config or path that would narrow them
    for name in ("gsm8k", "math"):
        assert (by_benchmark[name].hub, by_benchmark[name].config, by_benchmark[name].path) == (None, None, None)
        assert by_benchmark[name].split == BENCHMARKS[name].split == "test"


@pytest.mark.parametrize("preset", sorted(PRESETS.glob("*.yaml")), ids=lambda p: p.stem)
def test_eval_presets_name_real_benchmarks(preset: Path):
    raw = yaml.safe_load(preset.read_text())
    cfg = load_config(EvalConfig, preset)
    assert cfg.benchmark in NAMES
    if cfg.benchmark == "file":
        assert cfg.path and (REPO / cfg.path).is_file(), f"{preset.name}: path {cfg.path} is not in the repository"
        return
    spec = BENCHMARKS[cfg.benchmark]
    hub = raw.get("hub") or spec.hub
    configs = [cfg.config] if cfg.config is not None or raw.get("hub") else list(spec.configs)
    for config in configs:
        check(hub, config, [cfg.split or spec.split], spec.columns if hub == spec.hub else (), preset.name)
