"""A data build stopped from outside, or by a full disk, leaves no scratch behind and says so in one line.

Pitfalls each table guards:
- SIGTERM (`timeout`, `kill` to the process group) ended the build by the default action: the scratch folder
  `--out/.arithmo-build-*` (2-3x the input) stayed, and the signing pool's workers printed tracebacks;
- a build killed where no handler runs (SIGKILL) still leaves its scratch: the next build into that --out
  removes it, but never the scratch of a build running there now (two builds into one folder);
- ENOSPC named no path: the error names --out and the free space a build needs.
"""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from _shared import REPO

ROWS = 40_000


@pytest.fixture(scope="module")
def recipe(tmp_path_factory) -> Path:
    """The bench's mix shape at 40K rows: its near-dedup stage runs the forked signing pool for seconds."""
    folder = tmp_path_factory.mktemp("signals")
    sys.path.insert(0, str(REPO / "bench"))
    try:
        import bench_data
    finally:
        sys.path.remove(str(REPO / "bench"))
    bench_data.SHARED = folder / "absent"
    inputs = bench_data.write_inputs(folder / "inputs", ROWS, seed=1)
    path = folder / "recipe.yaml"
    path.write_text(f"""name: mix
seed: 42
sources:
  - {{name: metamathqa, adapter: metamathqa, path: {inputs['metamathqa']}}}
  - {{name: mathinstruct, adapter: mathinstruct, path: {inputs['mathinstruct']}}}
  - {{name: lila_ood, adapter: lila, path: {inputs['lila']}, splits: [train]}}
decontaminate: {{enabled: false}}
val_size: 300
""")
    return path


# (signal sent to the whole process group, the log line after which it is sent, exit status, the error line's words)
STOPS = [
    # the pitfall: SIGTERM during near dedup, while the forked signing pool runs (workers inherit the handler)
    (signal.SIGTERM, "dedup_exact", 143, "terminated (SIGTERM)"),
    # SIGTERM while rows are still being read and spilled (no pool yet)
    (signal.SIGTERM, None, 143, "terminated (SIGTERM)"),
    # must NOT change: Ctrl-C keeps its own status and line
    (signal.SIGINT, "dedup_exact", 130, "interrupted (Ctrl-C)"),
]


@pytest.mark.parametrize("sig,after,status,words", STOPS, ids=["term_pool", "term_read", "int_pool"])
def test_a_stopped_build_removes_its_scratch_and_prints_one_line(recipe, tmp_path, sig, after, status, words):
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "arithmo.data", "build", str(recipe), "--out", str(out)],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, env=dict(os.environ, PYTHONUNBUFFERED="1"))
    try:
        if after is None:  # as soon as the scratch folder exists
            deadline = time.monotonic() + 60
            while not (out.is_dir() and any(p.name.startswith(".arithmo-build-") for p in out.iterdir())):
                assert time.monotonic() < deadline and proc.poll() is None, "the build made no scratch folder"
                time.sleep(0.01)
        else:
            for line in proc.stdout:
                if after in line:
                    break
            time.sleep(0.5)  # inside the next stage
        assert proc.poll() is None, "the build finished before it could be stopped: make ROWS larger"
        os.killpg(proc.pid, sig)  # as `timeout` and a terminal's Ctrl-C do: the parent and its workers
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == status, err
    assert "Traceback" not in err and "Error:" not in err, err  # no worker's BrokenPipeError / KeyboardInterrupt
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and words in lines[0], err
    assert [p.name for p in out.iterdir()] == [], "scratch or half-written files left in --out"


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


DAY = 24 * 3600


def test_a_build_sweeps_scratch_of_dead_builds_only(tmp_path):
    from arithmo.data.build import sweep_scratch

    now = time.time()
    dead = _dead_pid()
    # (folder name, age in seconds, removed?)
    rows = [
        (f".arithmo-build-{dead}-a1b2c3d4", 0, True),              # its build's process is gone (SIGKILL)
        (f".arithmo-build-{dead}-x_y", 10 * DAY, True),           # gone, and old
        (".arithmo-build-k3j4h5g6", 2 * DAY, True),                # no pid (before pids were named), over a day old
        (f".arithmo-build-{os.getpid()}-q9w8e7r6", 10 * DAY, False),  # must NOT: a running build's, however old
        (".arithmo-build-1-abcdefgh", 0, False),                   # must NOT: pid 1 is alive
        (".arithmo-build-p0o9i8u7", 3600, False),                  # must NOT: no pid, an hour old (may be running)
        (".arithmo-buildXYZ", 10 * DAY, False),                    # must NOT: not a scratch name
        ("arithmo-build-123-abc", 10 * DAY, False),                # must NOT: no leading dot
        (f".arithmo-build-{dead}-abc!", 10 * DAY, False),          # must NOT: not the pattern (a user's folder)
    ]
    for name, age, _ in rows:
        (tmp_path / name).mkdir()
        (tmp_path / name / "examples.pkl").write_bytes(b"x" * 100)
        os.utime(tmp_path / name, (now - age, now - age))
    (tmp_path / "train.jsonl").write_text("{}\n")  # must NOT: an output file
    logged = []
    removed = sweep_scratch(tmp_path, logged.append, now=now)
    assert sorted(removed) == sorted(name for name, _, gone in rows if gone)
    for name, _, gone in rows:
        assert (tmp_path / name).exists() != gone, name
    assert (tmp_path / "train.jsonl").exists()
    assert len(logged) == len(removed) and all("removed" in line for line in logged)


def test_the_scratch_folder_names_the_building_process(recipe, tmp_path, monkeypatch):
    """A build's own scratch carries its pid (what the sweep reads), and it is gone when the build ends."""
    import arithmo.data.build  # noqa: F401 (the package exports a function named build)
    build_mod = sys.modules["arithmo.data.build"]

    seen = []
    original = build_mod._build

    def spy(cfg, out, tmp, names, log):
        seen.append(tmp.name)
        raise build_mod.DataError("stop here")

    monkeypatch.setattr(build_mod, "_build", spy)
    with pytest.raises(build_mod.DataError):
        build_mod.build_from_recipe(recipe, tmp_path / "out", [], log=lambda line: None)
    assert original is not spy and len(seen) == 1 and seen[0].startswith(f".arithmo-build-{os.getpid()}-")
    assert list((tmp_path / "out").iterdir()) == []


# (OSError raised while spilling, whether the build rewrites it as the full-disk error)
DISK_ERRORS = [
    (OSError(errno.ENOSPC, "No space left on device"), True),                       # write(): no filename
    (OSError(errno.ENOSPC, "No space left on device", "/x/.arithmo-build-1-a/examples.pkl"), True),
    (OSError(errno.EACCES, "Permission denied", "/x/y"), False),                    # must NOT: not a full disk
    (OSError(errno.EIO, "Input/output error"), False),                              # must NOT
]


@pytest.mark.parametrize("error,full", DISK_ERRORS)
def test_a_full_disk_names_out_and_the_space_needed(recipe, tmp_path, monkeypatch, capsys, error, full):
    import arithmo.data.build  # noqa: F401 (the package exports a function named build)
    build_mod = sys.modules["arithmo.data.build"]
    from arithmo.data.__main__ import main

    def raise_it(self, obj):
        raise error

    monkeypatch.setattr(build_mod.RecordSpill, "append", raise_it)
    out = tmp_path / "out"
    assert main(["build", str(recipe), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("error: ")
    if full:
        assert f"--out {out}" in err and "No space left" in err.replace("no space left", "No space left")
        assert "3-4x" in err
        if error.filename:
            assert error.filename in err
    else:
        assert "3-4x" not in err
    assert list(out.iterdir()) == []  # the scratch is removed on the way out


# (the bench's run names in order, each one's anchor) -- bench/bench_data.py's ratio columns
ANCHORS = [
    # the pitfall: with mix sizes before them, the long-trace run was divided by the first mix size
    (["mix 10,000", "mix 20,000", "short traces 2,000x60w", "long traces 2,000x600w"],
     ["mix 10,000", "mix 10,000", "short traces 2,000x60w", "short traces 2,000x60w"]),
    (["short traces 100,000x60w", "long traces 100,000x6000w"],                       # --rows "": no mix runs
     ["short traces 100,000x60w", "short traces 100,000x60w"]),
    (["mix 700,000", "mix 2,800,000"], ["mix 700,000", "mix 700,000"]),              # must NOT: mix keeps its first
    (["mix 5,000"], ["mix 5,000"]),                                                    # must NOT: one run is its own
]


@pytest.mark.parametrize("names,expected", ANCHORS)
def test_bench_ratios_divide_by_the_right_anchor(names, expected):
    sys.path.insert(0, str(REPO / "bench"))
    try:
        import bench_data
    finally:
        sys.path.remove(str(REPO / "bench"))
    assert bench_data.anchors(names) == expected


# ---- rows whose text is not usable: a lone surrogate (an error naming file:line), an invisible question (dropped)

def _build_rows(tmp_path: Path, adapter: str, rows: list[dict]):
    """Build one JSONL source of `rows` (plus two ordinary rows, so a build has something to keep) through the CLI."""
    import json

    from arithmo.data.__main__ import main

    path = tmp_path / "rows.jsonl"
    filler = {"metamathqa": [{"query": f"How many apples are left in basket {i}?", "response": f"The answer is: {i}",
                              "type": "GSM_AnsAug", "original_question": "x"} for i in range(2)],
              "alpaca": [{"instruction": f"Add {i} and 2.", "input": "", "output": f"The answer is: {i + 2}"}
                         for i in range(2)]}[adapter]
    # ensure_ascii=True writes a lone surrogate as the escape "\ud83e": valid JSON that json.loads gives back
    path.write_text("".join(json.dumps(row) + "\n" for row in rows + filler))
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(f"name: t\nseed: 1\nsources:\n  - {{name: s, adapter: {adapter}, path: {path}}}\n"
                      "decontaminate: {enabled: false}\ndedup: {near: false}\nval_size: 0\n")
    out = tmp_path / "out"
    status = main(["build", str(recipe), "--out", str(out)])
    manifest = json.loads((out / "manifest.json").read_text()) if status == 0 else None
    return status, manifest, path, out


# (adapter, the row, what a build does: "error" or the drop reason, or None when the row is kept)
ODD_TEXT = [
    ("metamathqa", {"query": "Half an emoji \ud83e here?", "response": "The answer is: 1", "type": "x",
                    "original_question": "x"}, "error"),                       # the pitfall: crashed at the write
    ("metamathqa", {"query": "How many?", "response": "So 2 \udc00. The answer is: 2", "type": "x",
                    "original_question": "x"}, "error"),                       # in the solution too
    ("alpaca", {"instruction": "Add \ud83e\udd14 pairs", "input": "", "output": "The answer is: 3"}, None),
    # ^ must NOT: a whole surrogate pair in the JSON escapes is one character (U+1F914), valid text
    ("metamathqa", {"query": "\u200b\u3000", "response": "The answer is: 1", "type": "x",
                    "original_question": "x"}, "empty_question"),              # the pitfall: was kept
    ("metamathqa", {"query": "\ufeff\u2060\u200d \u3164", "response": "The answer is: 1", "type": "x",
                    "original_question": "x"}, "empty_question"),              # BOM, word joiner, Hangul filler
    ("alpaca", {"instruction": "\u200c\u00ad", "input": "", "output": "The answer is: 3"}, "empty_question"),
    ("metamathqa", {"query": "\u200bWhat is 2 + 2?", "response": "The answer is: 4", "type": "x",
                    "original_question": "x"}, None),                          # must NOT: visible text after it
    ("metamathqa", {"query": "\u3000?", "response": "The answer is: 4", "type": "x",
                    "original_question": "x"}, None),                          # must NOT: a lone "?" shows
    ("metamathqa", {"query": "一加一等于几", "response": "The answer is: 2", "type": "x",
                    "original_question": "x"}, None),                          # must NOT: CJK text is text
]


@pytest.mark.parametrize("adapter,row,outcome", ODD_TEXT)
def test_unusable_text_is_one_error_or_a_counted_drop(tmp_path, capsys, adapter, row, outcome):
    status, manifest, path, out = _build_rows(tmp_path, adapter, [row])
    err = capsys.readouterr().err
    if outcome == "error":
        assert status == 2 and "Traceback" not in err
        line = err.strip()
        assert line.count("\n") == 0 and line.startswith(f"error: {path}:1: ") and "surrogate" in line, err
        assert not any(out.iterdir())
        return
    assert status == 0, err
    totals = manifest["totals"]
    assert totals["rows_in"] == 3
    if outcome is None:
        assert totals["rows_out"] == 3 and totals["dropped"] == {}
    else:
        assert totals["rows_out"] == 2 and totals["dropped"] == {outcome: 1}
