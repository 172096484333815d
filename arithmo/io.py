"""Row readers shared by every stage: a local .jsonl/.json/.parquet file or a hub dataset, row by row.

    for where, row in read_file_rows(Path("data/train.jsonl")):   # where = "data/train.jsonl:12"
        ...

Each row comes with a `where` string (`path:line` for JSONL, `path[row]` otherwise, `hub:split[row]`)
so the code that reads a row's fields can name the exact row that is wrong. Data recipes, training,
evaluation, benchmarks and the app read files through this module; its one error type is `DataError`.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from pathlib import Path


class DataError(ValueError):
    """Input data that cannot be used as given; the message names the file, row and key."""


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file's bytes (read in 1 MiB blocks)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def resolve_path(path: str, base_dir: str) -> Path:
    """`path` made absolute; a relative one is taken relative to `base_dir` (e.g. a recipe's folder)."""
    candidate = Path(path).expanduser()
    if not candidate.is_absolute() and base_dir:
        candidate = Path(base_dir) / candidate
    return candidate.resolve()


def line_number(where: str) -> int:
    """The line number of a JSONL row's `where` ("path:12" -> 12)."""
    return int(where.rsplit(":", 1)[1])


def _decode(raw: bytes, path: Path, offset: int, line_no: int | None) -> str:
    """`raw` as UTF-8 (a BOM at the file's start dropped), else DataError naming the file, line and byte offset."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        where = f"{path}:{line_no}" if line_no is not None else str(path)
        raise DataError(f"{where}: not UTF-8 at byte offset {offset + err.start} (byte 0x{raw[err.start]:02x}: "
                        f"{err.reason}); save the file as UTF-8") from err
    return text.removeprefix("\ufeff") if offset == 0 else text


def read_file_rows(path: Path | str, max_rows: int | None = None) -> Iterator[tuple[str, dict]]:
    """(where, row) pairs of a .jsonl, .json or .parquet file.

    A .json file holds a list of objects, {"data": [...]}, one object, or several JSON objects one after
    another: JSON Lines saved as .json (the hub's json loader reads those too) and pretty-printed objects
    written back to back (Math23K's original Math_23K.json); those rows' `where` is `path:line` of the line
    each object starts on. Raises DataError naming the file (and line, column) when it is missing, of another
    type, or not valid JSON, or when a row is not a JSON object.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    suffix = path.suffix.lower()
    count = 0
    if suffix == ".jsonl":
        with open(path, "rb") as handle:
            offset = 0  # bytes before this line: a decoding error names the file's byte offset
            for line_no, raw in enumerate(handle, 1):
                line = _decode(raw, path, offset, line_no)
                offset += len(raw)
                if not line.strip():
                    continue
                if max_rows is not None and count >= max_rows:
                    return
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as err:
                    raise DataError(f"{path}:{line_no}: not valid JSON ({err.msg})") from err
                if not isinstance(row, dict):
                    raise DataError(f"{path}:{line_no}: expected a JSON object, got {type(row).__name__}")
                count += 1
                yield f"{path}:{line_no}", row
    elif suffix == ".json":
        text = _decode(path.read_bytes(), path, 0, None)
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            if err.msg != "Extra data":
                raise DataError(f"{path}: not valid JSON ({err.msg} at line {err.lineno}, column {err.colno})") from err
            yield from _concatenated_rows(text, path, max_rows)  # JSON Lines or objects back to back
            return
        if isinstance(data, dict) and isinstance(data.get("data"), list):
            data = data["data"]
        elif isinstance(data, dict):
            data = [data]  # a JSON Lines file of one row saved as .json
        if not isinstance(data, list):
            raise DataError(f"{path}: expected a JSON list of objects (or {{'data': [...]}})")
        for index, row in enumerate(data[:max_rows] if max_rows is not None else data):
            if not isinstance(row, dict):
                raise DataError(f"{path}[{index}]: expected a JSON object, got {type(row).__name__}")
            yield f"{path}[{index}]", row
    elif suffix == ".parquet":
        import pyarrow.parquet as pq  # installed with datasets

        index = 0
        for batch in pq.ParquetFile(path).iter_batches(batch_size=10_000):
            for row in batch.to_pylist():
                if max_rows is not None and index >= max_rows:
                    return
                yield f"{path}[{index}]", row
                index += 1
    else:
        raise DataError(f"{path}: unsupported file type '{suffix}' (use .jsonl, .json or .parquet)")


_JSON_SPACE = re.compile(r"[ \t\n\r]*")


def _concatenated_rows(text: str, path: Path, max_rows: int | None) -> Iterator[tuple[str, dict]]:
    """(`path:line`, object) for each JSON object in `text`, written one after another with only JSON
    whitespace between (one linear pass: each value decoded once, line numbers counted as it goes)."""
    decoder = json.JSONDecoder()
    index, line, counted, count = 0, 1, 0, 0
    while True:
        index = _JSON_SPACE.match(text, index).end()
        if index >= len(text):
            return
        if max_rows is not None and count >= max_rows:
            return
        line += text.count("\n", counted, index)
        counted = index
        try:
            row, end = decoder.raw_decode(text, index)
        except json.JSONDecodeError as err:
            raise DataError(f"{path}:{err.lineno}: not valid JSON ({err.msg} at column {err.colno}); expected JSON "
                            "objects one after another (JSON Lines or concatenated objects)") from err
        if not isinstance(row, dict):
            raise DataError(f"{path}:{line}: expected a JSON object, got {type(row).__name__}")
        count += 1
        yield f"{path}:{line}", row
        index = end


def read_hub_rows(
    hub_id: str, config: str | None, split: str, max_rows: int | None = None, *,
    revision: str | None = None, resolved: dict | None = None,
) -> Iterator[tuple[str, dict]]:
    """Rows of one split of a hub dataset (or a local dataset folder) through datasets.load_dataset.

    `revision` pins the dataset repository's git revision (a commit sha, tag or branch; None: the default
    branch), so a recipe that names one reads the same bytes every time. When `resolved` is a dict, it
    receives {"revision": the 40-hex commit the split was loaded at, or None for a local folder} once the
    split is loaded: the data build records it in the manifest, so an unpinned build can be repeated.
    Raises DataError (with what to do offline) when the dataset cannot be loaded.
    """
    import datasets

    try:
        dataset = datasets.load_dataset(hub_id, config, split=split, revision=revision)
    except (FileNotFoundError, ConnectionError, ValueError, OSError) as err:
        pinned = f", revision {revision!r}" if revision else ""
        raise DataError(
            f"cannot load dataset '{hub_id}' (config {config!r}, split {split!r}{pinned}): {err}. "
            "Offline? Download it once, or point the recipe's `path:` at a local .jsonl/.parquet file."
        ) from err
    if resolved is not None:
        resolved["revision"] = loaded_revision(dataset)
    limit = len(dataset) if max_rows is None else min(max_rows, len(dataset))
    for index in range(limit):
        yield f"{hub_id}:{split}[{index}]", dataset[index]


_COMMIT_IN_URL = re.compile(r"@([0-9a-f]{40})/")


def loaded_revision(dataset) -> str | None:
    """The hub commit a loaded `datasets.Dataset` came from, or None (a local folder has none).

    datasets >= 2.15 resolves the revision to a commit before downloading and records each data file as
    `hf://datasets/<id>@<commit>/<path>` in `info.download_checksums`; a dataset re-read from the cache
    carries the same record.
    """
    checksums = getattr(getattr(dataset, "info", None), "download_checksums", None) or {}
    commits = sorted({m.group(1) for url in checksums for m in [_COMMIT_IN_URL.search(str(url))] if m})
    return commits[0] if len(commits) == 1 else None


def read_saved_lines(path: Path, fix: str) -> tuple[list[tuple[int, dict]], int]:
    """([(line number, record)], 1 when the last line was cut short by a crash mid-write, else 0) of a JSONL file
    that arithmo itself appends to (predictions.jsonl, RFT's samples.jsonl).

    Lines are split on "\\n" only: `str.splitlines` also splits on U+2028, U+2029, U+0085 and other separators
    that a model or a program may print and that `json.dumps(..., ensure_ascii=False)` writes raw inside a string,
    so it would cut a valid record in two. Only the final line may be partial (it is dropped and counted); a damaged
    line elsewhere, or a line that is not a JSON object, is a DataError naming the file and line, with `fix`.
    """
    raw = path.read_text(encoding="utf-8").split("\n")
    while raw and not raw[-1].strip():
        raw.pop()
    rows, truncated = [], 0
    for number, text in enumerate(raw, 1):
        if not text.strip():
            continue
        try:
            row = json.loads(text)
        except json.JSONDecodeError as err:
            if number == len(raw):
                truncated = 1  # only the final line can be a partial write
                break
            raise DataError(f"{path}:{number}: not valid JSON ({err.msg}); the file is damaged: {fix}") from err
        if not isinstance(row, dict):
            raise DataError(f"{path}:{number}: expected a JSON object, got {type(row).__name__}; {fix}")
        rows.append((number, row))
    return rows, truncated
