"""Typed configuration: one dataclass per stage, YAML presets, `key=value` overrides.

    cfg = load_config(DataConfig, "data_recipes/tiny.yaml", ["seed=3", "dedup.threshold=0.9"])

Rules (docs/design.md, "Configuration"):
- every field is typed, defaulted and documented (`metadata={"help": ...}`);
- a preset (YAML mapping) sets values, then overrides win; dotted keys reach nested dataclasses and
  list items (`sources.0.max_rows=100`);
- an unknown key or a value of the wrong type is a `ConfigError` that names the dotted key;
- `save_config(cfg, path)` writes a YAML file that is itself a valid preset.

Stage dataclasses live below the recipes that consume them (`arithmo.settings`: ModelConfig, TrainConfig,
GRPOTrainConfig; `arithmo.data.recipe.DataConfig`; EvalConfig and RFTConfig beside their recipes, which nothing
below imports); this module holds the machinery they share, the recipes' one command line included.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import logging
import sys
import difflib
import types
import typing
from pathlib import Path
from typing import Any, Callable, Literal, TypeVar, Union, get_args, get_origin

import yaml

T = TypeVar("T")


class ConfigError(ValueError):
    """A configuration value or key is wrong; the message names the dotted key."""


def field(default: Any = dataclasses.MISSING, *, help: str, default_factory: Any = dataclasses.MISSING):
    """A dataclass field with its help text; mutable defaults go through `default_factory`."""
    if default_factory is not dataclasses.MISSING:
        return dataclasses.field(default_factory=default_factory, metadata={"help": help})
    return dataclasses.field(default=default, metadata={"help": help})


# ----------------------------------------------------------------------------------------------
# dict -> dataclass, with type checks


def _type_name(tp: Any) -> str:
    if isinstance(tp, type):
        return tp.__name__
    return str(tp).replace("typing.", "")


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """Return `value` checked (and, where lossless, converted) against the annotation `tp`."""
    origin = get_origin(tp)
    if tp is Any:
        return value
    if origin in (Union, types.UnionType):
        args = get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, key)
            except ConfigError as err:
                errors.append(str(err))
        raise ConfigError(f"{key}: expected {_type_name(tp)}, got {value!r}")
    if origin is Literal:
        if value not in get_args(tp):
            choices = ", ".join(repr(a) for a in get_args(tp))
            raise ConfigError(f"{key}: expected one of {choices}, got {value!r}")
        return value
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        (item_tp,) = get_args(tp)[:1] or (Any,)
        return [_coerce(v, item_tp, f"{key}.{i}") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping, got {value!r}")
        key_tp, val_tp = get_args(tp) or (Any, Any)
        return {_coerce(k, key_tp, key): _coerce(v, val_tp, f"{key}.{k}") for k, v in value.items()}
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping of {tp.__name__} fields, got {value!r}")
        return from_dict(tp, value, prefix=f"{key}.")
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{key}: expected true or false, got {value!r}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(f"{key}: expected an integer, got {value!r}")
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        # YAML 1.1 reads `1e-4` (no dot) as a string; a number field takes it as the number it spells.
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
        raise ConfigError(f"{key}: expected a number, got {value!r}")
    if tp is str:
        if isinstance(value, str):
            return value
        # YAML reads `name: 123` as an int; a string field accepts plain scalars as text.
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
        raise ConfigError(f"{key}: expected a string, got {value!r}")
    raise ConfigError(f"{key}: unsupported annotation {_type_name(tp)}")


def _unknown_key(cls: type, name: str, prefix: str) -> ConfigError:
    valid = [f.name for f in dataclasses.fields(cls)]
    close = difflib.get_close_matches(name, valid, n=1)
    hint = f" (did you mean '{prefix}{close[0]}'?)" if close else ""
    return ConfigError(
        f"unknown key '{prefix}{name}'{hint}; {cls.__name__} keys are: {', '.join(valid)}"
    )


def from_dict(cls: type[T], data: dict, prefix: str = "") -> T:
    """Build dataclass `cls` from a mapping; unknown keys and wrong types raise ConfigError."""
    if not isinstance(data, dict):
        raise ConfigError(f"{prefix.rstrip('.') or cls.__name__}: expected a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    kwargs = {}
    for name, value in data.items():
        if name not in names:
            raise _unknown_key(cls, str(name), prefix)
        kwargs[name] = _coerce(value, hints[name], f"{prefix}{name}")
    missing = [
        f.name
        for f in dataclasses.fields(cls)
        if f.name not in kwargs
        and f.default is dataclasses.MISSING
        and f.default_factory is dataclasses.MISSING
    ]
    if missing:
        raise ConfigError(f"missing required key(s): {', '.join(prefix + m for m in missing)}")
    obj = cls(**kwargs)
    _check_seeds(obj, prefix)
    _check_finite(obj, prefix)
    validate = getattr(obj, "validate", None)
    if callable(validate):
        validate()
    return obj


SEED_LIMIT = 2**32  # NumPy's seeds (np.random.seed, transformers.set_seed) are 0 .. 2**32 - 1


def _check_seeds(obj: Any, prefix: str) -> None:
    """ConfigError for a seed outside 0 .. 2**32 - 1 in any field named seed, *_seed or seeds: NumPy (through
    transformers' set_seed, datasets' shuffle or a worker pool) raises only later, as a traceback (issue 31)."""
    for f in dataclasses.fields(obj):
        if not (f.name == "seed" or f.name.endswith("_seed") or f.name == "seeds"):
            continue
        value = getattr(obj, f.name)
        for seed in (value if isinstance(value, list) else [value]):
            if isinstance(seed, int) and not isinstance(seed, bool) and not 0 <= seed < SEED_LIMIT:
                raise ConfigError(f"{prefix}{f.name}: expected a seed from 0 to 2**32 - 1, got {seed}")


def _check_finite(obj: Any, prefix: str) -> None:
    """ConfigError for a NaN or infinite number in any float setting: every comparison with NaN is false, so range
    checks written `x < 0` let it through and it reaches the optimizer (issue 28 review: beta=nan trained an
    all-NaN adapter and reported "done"). No arithmo setting means anything with an infinite value."""
    import math

    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"{prefix}{f.name}: expected a finite number, got {value}")


def to_dict(cfg: Any) -> Any:
    """A plain (YAML-safe) structure of a config dataclass."""
    if dataclasses.is_dataclass(cfg):
        return {f.name: to_dict(getattr(cfg, f.name)) for f in dataclasses.fields(cfg)}
    if isinstance(cfg, (list, tuple)):
        return [to_dict(v) for v in cfg]
    if isinstance(cfg, dict):
        return {k: to_dict(v) for k, v in cfg.items()}
    return cfg


# ----------------------------------------------------------------------------------------------
# presets and overrides


def parse_override(text: str) -> tuple[list[str], Any]:
    """`a.b=3` -> (["a", "b"], 3). The value is read as YAML, so `true`, `0.5`, `[1, 2]` and `null` work."""
    if "=" not in text:
        raise ConfigError(f"override '{text}' is not of the form key=value")
    key, raw = text.split("=", 1)
    key = key.strip()
    if not key or any(not part for part in key.split(".")):
        raise ConfigError(f"override '{text}' has an empty key")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError as err:
        raise ConfigError(f"{key}: cannot read value {raw!r}: {err}") from err
    return key.split("."), value


def _set_dotted(tree: dict, parts: list[str], value: Any, cls: type) -> None:
    """Set `parts` inside the plain mapping `tree` (shaped like `cls`), checking keys as it descends."""
    node: Any = tree
    node_cls: Any = cls
    for depth, part in enumerate(parts):
        dotted = ".".join(parts[: depth + 1])
        last = depth == len(parts) - 1
        if isinstance(node, list):
            if not part.isdigit():
                raise ConfigError(f"unknown key '{dotted}': expected a list index (0..{len(node) - 1}) after "
                                  f"'{'.'.join(parts[:depth])}', got {part!r}")
            if int(part) >= len(node):
                raise ConfigError(f"unknown key '{dotted}': list index out of range (length {len(node)})")
            index = int(part)
            if last:
                node[index] = value
                return
            node = node[index]
            node_cls = get_args(node_cls)[0] if get_args(node_cls) else Any
            continue
        if dataclasses.is_dataclass(node_cls):
            field_types = typing.get_type_hints(node_cls)
            if part not in field_types:
                raise _unknown_key(node_cls, part, ".".join(parts[:depth]) + ("." if depth else ""))
            child_tp = field_types[part]
        else:
            child_tp = Any
        if last:
            node[part] = value
            return
        # Unwrap Optional[X] to find the dataclass/list that the next part indexes.
        if get_origin(child_tp) in (Union, types.UnionType):
            child_tp = next(a for a in get_args(child_tp) if a is not type(None))
        if node.get(part) is None:
            node[part] = [] if get_origin(child_tp) in (list, tuple) else {}
        node = node[part]
        node_cls = child_tp if (dataclasses.is_dataclass(child_tp) or get_origin(child_tp)) else Any


def load_config(cls: type[T], preset: str | Path | dict | None = None, overrides: list[str] | None = None) -> T:
    """Resolve a stage config: dataclass defaults < preset (YAML file or mapping) < `key=value` overrides."""
    tree = to_dict(cls()) if _has_all_defaults(cls) else {}
    if preset is not None:
        if isinstance(preset, dict):
            data = preset
        else:
            path = Path(preset)
            if path.is_dir():
                raise ConfigError(f"preset {path} is a folder; expected a YAML file (a run folder's preset is its "
                                  f"config.yaml: {path / 'config.yaml'})")
            if not path.is_file():
                raise ConfigError(f"preset file not found: {path}")
            raw = path.read_bytes()
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as err:
                raise ConfigError(f"{path}: not UTF-8 at byte offset {err.start} ({err.reason}); save the file as "
                                  "UTF-8") from err
            try:
                data = yaml.safe_load(text) or {}
            except yaml.YAMLError as err:
                mark = getattr(err, "problem_mark", None)
                where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
                problem = getattr(err, "problem", None) or str(err).splitlines()[0]
                raise ConfigError(f"{path}: not valid YAML{where}: {problem}") from err
            if not isinstance(data, dict):
                raise ConfigError(f"{path}: expected a mapping of keys at the top level")
        # Validate the preset on its own first so an error names the preset's key, then merge.
        from_dict(cls, data)
        tree.update(copy.deepcopy(data))  # overrides below must not edit the caller's mapping
    for text in overrides or []:
        parts, value = parse_override(text)
        _set_dotted(tree, parts, value, cls)
    return from_dict(cls, tree)


def _has_all_defaults(cls: type) -> bool:
    return all(
        f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
        for f in dataclasses.fields(cls)
    )


def save_config(cfg: Any, path: str | Path) -> None:
    """Write the resolved config as YAML; `load_config(type(cfg), path)` reads it back equal."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(yaml.safe_dump(to_dict(cfg), sort_keys=False, allow_unicode=True))


def describe(cls: type, prefix: str = "") -> list[str]:
    """One line per key with its type, default and help: what `--help` prints."""
    lines = []
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        tp = hints[f.name]
        if dataclasses.is_dataclass(tp):
            lines.extend(describe(tp, prefix=f"{prefix}{f.name}."))
            continue
        item = get_args(tp)[0] if get_origin(tp) is list and get_args(tp) else None
        if item is not None and dataclasses.is_dataclass(item):  # a list of entries (a recipe's sources)
            lines.append(f"  {prefix}{f.name} (list of entries): {f.metadata.get('help', '')}; each entry's keys:")
            lines.extend(describe(item, prefix=f"{prefix}{f.name}.N."))
            continue
        default = f.default if f.default is not dataclasses.MISSING else (
            f.default_factory() if f.default_factory is not dataclasses.MISSING else "(required)")
        lines.append(f"  {prefix}{f.name} ({_type_name(tp)}, default {default!r}): {f.metadata.get('help', '')}")
    return lines


def find_preset(name: str | Path, folder: Path) -> Path:
    """A preset given as a YAML path, or by name in `folder` (`gsm8k_cot` -> folder/gsm8k_cot.yaml)."""
    path = Path(name)
    if path.is_file() or path.is_dir():
        return path  # a folder: load_config says it is one
    named = folder / f"{str(name).removesuffix('.yaml')}.yaml"
    if named.is_file():
        return named
    known = ", ".join(sorted(p.stem for p in folder.glob("*.yaml")))
    raise ConfigError(f"preset '{name}' not found (a YAML path, or one of: {known})")


# ----------------------------------------------------------------------------------------------
# the recipes' command line: --preset NAME key=value ... (data, train, eval, rft, grpo share it)


# Set by arithmo.cli when a stage runs as `arithmo <stage>`: usage lines then name the command the user typed.
CONSOLE = False


def prog_name(stage: str) -> str:
    """What a stage's usage line calls it: `arithmo <stage>` under the console script, else `python -m
    arithmo.<stage>` (both run the same main)."""
    return f"arithmo {stage}" if CONSOLE else f"python -m arithmo.{stage}"


def _example_keys(cls: type) -> str:
    """Two override examples that are keys of `cls`: a nested one and a list entry's, when it has them."""
    hints = typing.get_type_hints(cls)
    nested = listed = None
    for f in dataclasses.fields(cls):
        tp = hints[f.name]
        if nested is None and dataclasses.is_dataclass(tp):
            inner = dataclasses.fields(tp)[0]
            nested = f"{f.name}.{inner.name}={inner.default!r}".replace("'", "")
        item = get_args(tp)[0] if get_origin(tp) is list and get_args(tp) else None
        if listed is None and item is not None and dataclasses.is_dataclass(item):
            names = [g.name for g in dataclasses.fields(item)]
            listed = f"{f.name}.0.{'max_rows' if 'max_rows' in names else names[0]}=100"
    shown = [text for text in (nested, listed) if text]
    if not shown:  # a flat config: its first key with a plain default
        plain = [f for f in dataclasses.fields(cls) if isinstance(f.default, (int, float, str)) and f.default != ""]
        shown = [f"{plain[0].name}={plain[0].default}"] if plain else ["key=value"]
    return ", ".join(shown)


def recipe_epilog(cls: type, presets: Path | None = None) -> str:
    """The `--help` text after the options: the presets in `presets` and every key of `cls`."""
    epilog = ""
    if presets is not None:
        epilog = f"presets (arithmo/{presets.relative_to(Path(__file__).parent)}/): " + \
            ", ".join(sorted(p.stem for p in presets.glob("*.yaml"))) + "\n\n"
    return epilog + f"keys (override with key=value; dotted for nested, e.g. {_example_keys(cls)}):\n" \
        + "\n".join(describe(cls))


def recipe_parser(prog: str, description: str, cls: type, presets: Path | None = None,
                  example: str = "") -> argparse.ArgumentParser:
    """The parser every recipe's `main` starts from: `--preset` (a YAML path or a name in `presets`) and
    `key=value` overrides, with `--help` listing the presets and every key of `cls` (nested and list entries
    included) with its type, default and help."""
    parser = argparse.ArgumentParser(prog=prog, description=description, epilog=recipe_epilog(cls, presets),
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    if presets is not None:
        parser.add_argument("--preset", help="preset name or YAML file" + (f", e.g. {example}" if example else ""))
    parser.add_argument("overrides", nargs="*", help="key=value overrides")
    return parser


def error_line(err: BaseException) -> str:
    """The one `error: ...` line a CLI prints for a file-system or decoding error that reached it: the file and
    what the system said (an OSError's filename and strerror), or the byte offset a non-UTF-8 input failed at."""
    if isinstance(err, OSError) and err.filename is not None:
        target = f"{err.filename} -> {err.filename2}" if err.filename2 is not None else str(err.filename)
        return f"error: {target}: {err.strerror or err}"
    if isinstance(err, UnicodeDecodeError):
        return f"error: input is not UTF-8 at byte offset {err.start} ({err.reason}); save the file as UTF-8"
    return f"error: {err}"


# What every CLI turns into one `error:` line besides its own errors: a file that is missing, a folder where a file
# was expected (or the reverse), no permission, a full disk, a file that is not UTF-8.
SYSTEM_ERRORS = (OSError, UnicodeDecodeError)


class Stopped(KeyboardInterrupt):
    """A run stopped by Ctrl-C after saving its work: the CLI prints the message (what was saved, how to continue)
    and exits 130, the shell's status for an interrupted command, so `train && eval` does not go on to score a
    half-trained adapter. A KeyboardInterrupt, so code that catches Ctrl-C still does."""


def is_main_rank() -> bool:
    """Under a launcher (torchrun), only rank 0 prints a recipe's error: the others raise the same one."""
    import os

    return os.environ.get("RANK", "0") == "0"


def run_recipe(cls: type[T], preset: str | Path | None, overrides: list[str], run: Callable[[T], Any],
               errors: Callable[[], tuple[type[BaseException], ...]], presets: Path | None = None) -> int:
    """Load the config (dataclass defaults < preset < overrides) and run it; 0 on success, 2 with one
    `error: ...` line on stderr for a ConfigError or any of `errors()` (a callable, so that the recipe imports
    torch-heavy modules only after `--help` had its chance to exit)."""
    logging.basicConfig(level=logging.WARNING, format="[%(name)s] %(message)s")
    logging.getLogger("arithmo").setLevel(logging.INFO)  # ours at INFO; libraries' chatter stays out
    try:  # a settings error is reported before anything heavy (torch) is imported
        path = find_preset(preset, presets) if preset is not None and presets is not None else preset
        cfg = load_config(cls, path, overrides)
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    caught = (ConfigError, *errors(), *SYSTEM_ERRORS)
    try:
        run(cfg)
    except caught as err:
        if is_main_rank():
            print(error_line(err), file=sys.stderr)
        return 2
    except Stopped as err:  # the work was saved; the run says where
        if is_main_rank():
            print(str(err), file=sys.stderr)
        return 130
    except KeyboardInterrupt:  # before a run could save anything (a training run raises Stopped once it saved)
        if is_main_rank():
            print("error: interrupted (Ctrl-C)", file=sys.stderr)
        return 130
    return 0


def recipe_main(argv: list[str] | None, *, prog: str, description: str, cls: type[T], presets: Path,
                run: Callable[[T], Any], errors: Callable[[], tuple[type[BaseException], ...]],
                example: str = "") -> int:
    """A recipe's whole `main(argv)`: parse `--preset NAME key=value ...` (`recipe_parser`) and run the config
    (`run_recipe`). Exit status 0, or 2 with one `error:` line."""
    args = recipe_parser(prog, description, cls, presets, example=example).parse_args(argv)
    return run_recipe(cls, args.preset, args.overrides, run, errors, presets)


def preset_resolver(folder: Path) -> Callable[[str | Path | None], Path | None]:
    """`resolve_preset(name)` for a recipe's preset folder: None stays None, else `find_preset(name, folder)`."""
    def resolve_preset(preset: str | Path | None) -> Path | None:
        return None if preset is None else find_preset(preset, folder)

    resolve_preset.__doc__ = f"A preset is a YAML path or the name of one in arithmo/{folder.name} presets."
    return resolve_preset
