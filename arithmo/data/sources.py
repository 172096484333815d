"""Reading a recipe's sources: rows in, adapted examples out, every row counted in the ledger.

A source is a local file (`path`) or a hub dataset (`hub`, with `config` or `configs`, `splits` and an
optional `revision`). The manifest's input record names the file with its sha256, or the hub id with the
commit each split was loaded at, so a build can be repeated on the same bytes.
"""

from __future__ import annotations

import hashlib
import unicodedata
from collections import Counter
from pathlib import Path
from typing import Any, Iterator

from functools import partial

from arithmo.data.adapters import ADAPTERS, PER_GENERATION, PER_PROBLEM, SPLIT_COLUMN
from arithmo.data.recipe import SourceConfig
from arithmo.data.textsim import normalize_text
from arithmo.io import DataError, read_file_rows, read_hub_rows, resolve_path, sha256_file
from arithmo.records import MathExample

# Characters that show nothing and are not str.isspace(): zero-width space/joiners, BOM, word joiner and the
# other Unicode format characters (category Cf), and the blank letters/symbols that render as empty (Hangul
# fillers, the braille blank). A question made only of these and whitespace is empty (`empty_question`).
_BLANK_LETTERS = frozenset("\u115f\u1160\u2800\u3164\uffa0")


def is_blank(text: str) -> bool:
    """True when `text` shows nothing: only whitespace (str.isspace, which covers U+3000 and the other Zs
    spaces), format characters (Unicode category Cf: U+200B, U+200C, U+200D, U+2060, U+FEFF, U+00AD ...) and
    blank letters. Stops at the first visible character, so a normal question costs one character's check."""
    for char in text:
        if not (char.isspace() or char in _BLANK_LETTERS or unicodedata.category(char) == "Cf"):
            return False
    return True


def _check_unicode(mapped: dict, where: str) -> None:
    """DataError naming the row when a text holds a lone UTF-16 surrogate (valid JSON, e.g. "\\ud83e" from a
    cut emoji, but no Unicode text: it cannot be written as UTF-8). Linear in the text; ASCII texts are skipped."""
    for key in ("question", "solution", "reasoning"):
        text = mapped.get(key)
        if not text or text.isascii():
            continue
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as err:
            raise DataError(f"{where}: the {key} holds a lone surrogate {text[err.start]!r} at character "
                            f"{err.start} (half of a UTF-16 pair, e.g. a cut emoji): not Unicode text that can be "
                            f"written as UTF-8; expected the whole character or none (fix or drop that row)") from err


# Lila names its validation split "dev" in the row's `split` column and "validation" on the hub.
_SPLIT_ALIASES = {"dev": "validation", "valid": "validation", "val": "validation"}


def canonical_split(name: str) -> str:
    return _SPLIT_ALIASES.get(name.lower(), name.lower())


class Ledger:
    """Per-source counts: rows in, rows dropped by reason."""

    def __init__(self, names: list[str]):
        self.rows_in = Counter({n: 0 for n in names})
        self.dropped: dict[str, Counter] = {n: Counter() for n in names}

    def drop(self, source: str, reason: str, count: int = 1) -> None:
        self.dropped[source][reason] += count


def describe_input(path: Path | None, hub: str | None, config: str | None, splits: list[str]) -> dict[str, Any]:
    """The manifest's record of one input: a file with its sha256, or a hub id with config and splits."""
    if path is not None:
        return {"path": str(path), "sha256": sha256_file(path)}
    return {"hub": hub, "config": config, "splits": list(splits)}


def _hub_streams(src: SourceConfig, record: dict):
    """(where, row) streams of every (config, split) of a hub source; fills record["revisions"]."""
    configs = src.configs if src.configs is not None else [src.config]
    revisions: dict[str, str | None] = {}
    record["revisions"] = revisions
    if src.revision is not None:
        record["revision"] = src.revision
    for config in configs:
        for split in src.splits:
            resolved: dict = {}
            yield read_hub_rows(src.hub, config, split, src.max_rows, revision=src.revision, resolved=resolved)
            key = f"{config}/{split}" if config is not None else split
            revisions[key] = resolved.get("revision")


def read_source(src: SourceConfig, base_dir: str, ledger: Ledger, actions: Counter) -> tuple[list[MathExample], dict]:
    """Adapted examples of one source (a list), and its manifest input record."""
    record: dict = {}
    examples = list(iter_source(src, base_dir, ledger, actions, record))
    return examples, record


def iter_source(src: SourceConfig, base_dir: str, ledger: Ledger, actions: Counter,
                record: dict) -> Iterator[MathExample]:
    """Adapted examples of one source, one at a time (the build streams them: nothing per row is held here
    except, for per_problem=one, a 16-byte digest per problem). `record` is filled with the manifest input
    record; its row count is final once the generator is exhausted. DataError as `read_source`."""
    adapt = ADAPTERS[src.adapter]
    per_problem = src.per_problem or PER_PROBLEM.get(src.adapter)
    if src.adapter in PER_GENERATION:
        adapt = partial(adapt, per_problem=per_problem)
    # One solution per row, several rows per problem (OpenMathReasoning): per_problem=one keeps each problem's
    # first usable row; later ones are counted as solution_not_chosen. 16-byte digests of the normalised problem.
    chosen: set[bytes] | None = set() if per_problem == "one" and src.adapter not in PER_GENERATION else None
    split_column = SPLIT_COLUMN.get(src.adapter)
    wanted_splits = {canonical_split(s) for s in src.splits}
    if src.path is not None:
        path = resolve_path(src.path, base_dir)
        if not path.is_file():  # say where a relative path was looked for: the recipe's folder, not the cwd
            raise DataError(f"source '{src.name}': path {src.path!r} resolves to {path}, which "
                            f"{'is a folder' if path.is_dir() else 'does not exist'} (a relative path is read "
                            f"from the recipe's folder{', ' + base_dir if base_dir else ''})")
        record.update(describe_input(path, None, None, src.splits))
        streams = iter([read_file_rows(path, src.max_rows)])
    else:
        record.update(describe_input(None, src.hub, src.config, src.splits))
        if src.configs is not None:
            record["configs"] = list(src.configs)
        streams = _hub_streams(src, record)
    index = 0
    for stream in streams:
        for where, row in stream:
            ledger.rows_in[src.name] += 1
            row_id = f"{src.name}/{index:07d}"
            index += 1
            if src.path is not None and split_column:
                if split_column not in row:
                    raise DataError(f"{where}: missing field '{split_column}' needed to select splits "
                                    f"{sorted(wanted_splits)} of a local {src.adapter} file")
                if canonical_split(str(row[split_column])) not in wanted_splits:
                    ledger.drop(src.name, "split_excluded")
                    continue
            outcomes = adapt(row, where)
            if isinstance(outcomes, list):
                # Several generations per row (OpenR1-Math): each is one unit, kept or dropped with its reason, so
                # the ledger balances per generation; ids are "<source>/<row>.<generation>".
                ledger.rows_in[src.name] += len(outcomes) - 1
                actions["generations_read"] += len(outcomes)
                numbered = [(f"{row_id}.{i}", outcome) for i, outcome in enumerate(outcomes)]
            else:
                numbered = [(row_id, outcomes)]
            for example_id, mapped in numbered:
                if not isinstance(mapped, str) and is_blank(mapped["question"]):
                    mapped = "empty_question"  # zero-width or ideographic spaces only: str.strip() left them
                if isinstance(mapped, str):
                    ledger.drop(src.name, mapped)
                    continue
                _check_unicode(mapped, where)
                if chosen is not None:
                    key = hashlib.blake2b(normalize_text(mapped["question"]).encode(), digest_size=16).digest()
                    if key in chosen:
                        ledger.drop(src.name, "solution_not_chosen")
                        continue
                    chosen.add(key)
                if src.style is not None:
                    mapped["style"] = src.style
                if mapped["meta"].get("system"):  # generic chat formats: the system turn has no place in a record
                    actions["system_prompt_dropped"] += 1
                yield {"id": example_id, "source": src.name, **mapped}
    record.update({"name": src.name, "adapter": src.adapter, "rows": ledger.rows_in[src.name]})
    if src.max_rows is not None:
        record["max_rows"] = src.max_rows
