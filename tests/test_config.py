"""Config resolution: defaults < preset < overrides; unknown keys and wrong types name the key."""

import pytest

from arithmo.config import ConfigError, load_config, save_config, to_dict
from arithmo.data.recipe import DataConfig

from _shared import REPO

RECIPE = {
    "name": "t",
    "sources": [{"name": "a", "adapter": "metamathqa", "path": "a.jsonl"},
                {"name": "b", "adapter": "lila", "path": "b.jsonl", "splits": ["train", "test"]}],
}


def test_preset_then_overrides_win():
    cfg = load_config(DataConfig, RECIPE, ["seed=7", "dedup.threshold=0.9", "sources.1.max_rows=10",
                                           "transforms.verify_pot=true", "sources.0.splits=[x, y]"])
    assert cfg.seed == 7
    assert cfg.dedup.threshold == 0.9
    assert cfg.sources[1].max_rows == 10 and cfg.sources[1].splits == ["train", "test"]
    assert cfg.sources[0].splits == ["x", "y"]
    assert cfg.transforms.verify_pot is True
    assert cfg.dedup.num_perm == 128  # untouched nested default survives a partial override


@pytest.mark.parametrize("override, message", [
    ("sed=3", "unknown key 'sed' (did you mean 'seed'?)"),          # typo at top level
    ("dedup.treshold=0.5", "unknown key 'dedup.treshold'"),          # typo in a nested section
    ("seed=three", "seed: expected an integer"),                     # wrong scalar type
    ("dedup.exact=maybe", "dedup.exact: expected true or false"),    # bool must be a bool
    ("sources.5.max_rows=1", "list index out of range"),             # index past the list
    ("sources.0.adapter=gsm8k", "sources.0.adapter: expected one of"),  # not an allowed choice
    ("dedup.bands=5", "dedup.bands: 5 must divide"),                  # cross-field validation
    ("seed", "not of the form key=value"),
])
def test_bad_overrides_name_the_key(override, message):
    with pytest.raises(ConfigError) as err:
        load_config(DataConfig, RECIPE, [override])
    assert message in str(err.value)


def test_unknown_key_in_preset_file(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text("name: x\ndedup:\n  exact: true\n  fuzzy: true\n")
    with pytest.raises(ConfigError, match="unknown key 'dedup.fuzzy'"):
        load_config(DataConfig, path)


def test_int_accepted_for_float_but_not_bool_for_int():
    assert load_config(DataConfig, RECIPE, ["val_size=5"]).val_size == 5.0
    with pytest.raises(ConfigError, match="seed: expected an integer"):
        load_config(DataConfig, RECIPE, ["seed=true"])


def test_saved_config_is_a_valid_preset(tmp_path):
    cfg = load_config(DataConfig, RECIPE, ["seed=11", "decontaminate.ngram=8"])
    save_config(cfg, tmp_path / "config.yaml")
    again = load_config(DataConfig, tmp_path / "config.yaml")
    assert to_dict(again) == to_dict(cfg)


@pytest.mark.parametrize("recipe", ["tiny.yaml", "arithmo.yaml", "arithmo_v1.yaml"])
def test_recipes_in_repo_resolve(recipe):
    cfg = load_config(DataConfig, REPO / "data_recipes" / recipe)
    assert [s.adapter for s in cfg.sources] == ["metamathqa", "mathinstruct", "lila"]
    lila = cfg.sources[2]
    # The improved mix keeps Lila-OOD's train split only; the original used all three.
    expected = ["train", "validation", "test"] if recipe == "arithmo_v1.yaml" else ["train"]
    assert lila.splits == expected
