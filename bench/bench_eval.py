"""Evaluation throughput, each row against its anchor run side by side in this process:

    python bench/bench_eval.py [--programs 120] [--items 32] [--smollm] [--only sandbox]

1. grading: `is_equivalent` comparisons/s on real GSM8K and MATH gold answers (each gold against itself,
   and against the next row's gold: the mismatch path that reaches sympy), against comparing
   `normalize_answer` strings; and `extract_answer` on the real MATH solutions against the one-line
   boxed regex many eval scripts use (no nested braces).
2. PoT sandbox: programs/s and CPU ms per program through arithmo's pool (`Sandbox`, workers = cores,
   sympy preloaded; every layer on), jailed (bubblewrap) and with the fallback layers, against the plain way,
   one `python -c` process per program, as many at once as there are cores, in one table. The programs
   come from real GSM8K test rows (their `<<48/2=24>>` calculator steps as Python lines) and, for the
   sympy row, MATH-style programs that `import sympy`.
3. generation: items/s of greedy `arithmo.generate.generate` on real GSM8K questions with the tiny random
   Llama the tests use (and, with --smollm, SmolLM2-135M-Instruct), batch 1 against batched.
Real rows come from ../shared/data; the script stops with a message when it is absent.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
ROWS: list[tuple[str, float, float, str]] = []  # (what, arithmo per second, anchor per second, unit)


def record(what: str, ours: float, anchor: float, unit: str) -> None:
    ROWS.append((what, ours, anchor, unit))
    print(f"  {what}: {ours:,.1f} vs {anchor:,.1f} {unit} (x{ours / anchor:.2f})", flush=True)


def rate(function, count: int, min_seconds: float = 1.0, repeats: int = 3) -> float:
    """Units per second of `function` (which does `count` units): the best of `repeats` windows of at
    least `min_seconds` each. The best, not the mean: other processes on a shared 2-core machine only
    ever slow a window down."""
    function()  # warm-up: imports, caches, worker start
    best = 0.0
    for _ in range(repeats):
        done, started = 0, time.perf_counter()
        while True:
            function()
            done += count
            elapsed = time.perf_counter() - started
            if elapsed >= min_seconds:
                break
        best = max(best, done / elapsed)
    return best


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.open(encoding="utf-8")]


# ----------------------------------------------------------------------------------------------
# 1. grading


def bench_grading() -> None:
    from arithmo.benchmarks import load_items
    from arithmo.grading import extract_answer, is_equivalent, normalize_answer

    print("grading (real gold answers)")
    for name, path in (("gsm8k", SHARED / "gsm8k" / "test_first300.jsonl"),
                       ("math", SHARED / "math" / "test_dev500.jsonl")):
        golds = [item["answer"] for item in load_items(name, path=str(path))]
        shifted = golds[1:] + golds[:1]
        for label, preds in (("same", golds), ("next row", shifted)):
            pairs = list(zip(preds, golds))
            ours = rate(lambda: [is_equivalent(p, g) for p, g in pairs], len(pairs))
            anchor = rate(lambda: [normalize_answer(p) == normalize_answer(g) for p, g in pairs], len(pairs))
            record(f"is_equivalent {name} {label} vs normalized ==", ours, anchor, "comparisons/s")
    solutions = [row["solution"] for row in read_jsonl(SHARED / "math" / "test_dev500.jsonl")]
    ours = rate(lambda: [extract_answer(s) for s in solutions], len(solutions))
    # The anchor is the one-line regex many eval scripts use; it misses nested braces (\\boxed{\\frac{1}{2}}).
    naive = re.compile(r"\\boxed\{([^{}]*)\}")
    anchor = rate(lambda: [(naive.findall(s) or [None])[-1] for s in solutions], len(solutions))
    misses = sum((naive.findall(s) or [None])[-1] != extract_answer(s) for s in solutions)
    print(f"  the naive regex disagrees with extract_answer on {misses} of {len(solutions)} MATH solutions")
    record("extract_answer MATH solutions vs naive boxed regex", ours, anchor, "texts/s")
    # Linear time (issue 25): adversarial texts at the caps through the readers, against one pass of str.count
    # over the same text (the cheapest linear work there is): the ratio is the readers' cost per character.
    from arithmo.grading import answer_from_output
    size = 64 * 1024
    texts = {"unclosed \\fbox{": "\\fbox{" * (size // 6),
             "spaced numbers + cm": " ".join(map(str, range(10, 12000)))[:size] + " cm",
             "5 + \\text{a}...": ("5" + "\\text{a}" * (size // 8))[:4000],
             "Answer: lines": "Answer:\n" * (size // 8)}
    for label, text in texts.items():
        anchor = rate(lambda: text.count("\n"), 1)
        for reader, function in (("extract_answer", lambda: extract_answer(text, mode="flexible")),
                                 ("answer_from_output", lambda: answer_from_output(text)),
                                 ("normalize_answer", lambda: normalize_answer(text))):
            record(f"{reader} on {len(text):,} chars of {label} vs str.count", rate(function, 1), anchor, "texts/s")
    # RFT's arithmetic filter over real GSM8K train solutions, against the equation reader of the dedup key.
    from arithmo.rft.dedup import equation_list, wrong_equations
    train = SHARED / "gsm8k" / "train_first500.jsonl"
    if train.is_file():
        plain = [re.sub(r"<<[^<>]*>>", "", row["answer"]) for row in read_jsonl(train)]
        flagged = sum(bool(wrong_equations(text)) for text in plain)
        print(f"  wrong_equations flags {flagged} of {len(plain)} GSM8K train solutions with annotations removed "
              "(genuine typos in the reference text; with annotations: see tests/test_rft_arithmetic_filter.py)")
        record("wrong_equations GSM8K train (no annotations) vs equation_list", rate(
            lambda: [wrong_equations(text) for text in plain], len(plain)),
            rate(lambda: [equation_list(text) for text in plain], len(plain)), "solutions/s")
    else:
        print(f"  skipped the RFT filter timing: {train} is absent")


# ----------------------------------------------------------------------------------------------
# 2. sandbox

_CALC = re.compile(r"<<([^=<>]+)=")


def gsm8k_programs(limit: int) -> list[str]:
    """One program per real GSM8K test row: its calculator steps in order, printing the last."""
    programs = []
    for row in read_jsonl(SHARED / "gsm8k" / "test_first300.jsonl"):
        steps = _CALC.findall(row["answer"])
        if steps:
            body = "\n".join(f"step{i} = {expr}" for i, expr in enumerate(steps))
            programs.append(f"{body}\nprint(step{len(steps) - 1})")
        if len(programs) == limit:
            break
    return programs


def sympy_programs(limit: int) -> list[str]:
    """MATH-style PoT programs (as MathInstruct's PoT rows write them): sympy solves and simplifies."""
    return [f"import sympy as sp\nx = sp.symbols('x')\nroots = sp.solve(x**2 - {k + 1}*x + {k}, x)\n"
            f"print(sp.nsimplify(sum(roots) / {k + 2}))" for k in range(limit)]


def plain_subprocess(codes: list[str], timeout_s: float, workers: int) -> list[str]:
    """The anchor: one fresh `python -c` per program, `workers` at a time, stdout captured."""
    def one(code: str) -> str:
        with tempfile.TemporaryDirectory() as folder:
            done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout_s,
                                  cwd=folder, stdin=subprocess.DEVNULL)
        return done.stdout

    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(one, codes))


def _worker_processes(sandbox) -> list:
    """Every process of the pool's jails (bwrap, both zygotes of each worker: the full and the lean one)."""
    import psutil

    processes = []
    for worker in sandbox._idle + sandbox._lean:
        if worker.process is not None:
            top = psutil.Process(worker.process.pid)
            processes += [top, *top.children(recursive=True)]
    return processes


def cpu_per_program(run, count: int, processes=None) -> tuple[float, float]:
    """(ms of CPU per program outside this process, ms in this process) around one `run()` of `count`
    programs: the sandbox's worker processes (psutil: their own and their reaped children's time), or, with
    `processes=None`, this process's reaped children (the `python -c` anchor). CPU time per program does not
    depend on what else the machine runs, unlike programs/s."""
    import resource

    import psutil

    def used() -> tuple[float, float]:
        if processes is None:
            children = resource.getrusage(resource.RUSAGE_CHILDREN)
            outside = children.ru_utime + children.ru_stime
        else:
            outside = sum(sum(p.cpu_times()[:4]) for p in processes)  # user, system, reaped children's
        own = psutil.Process().cpu_times()
        return outside, own.user + own.system

    before = used()
    run()
    after = used()
    return 1000 * (after[0] - before[0]) / count, 1000 * (after[1] - before[1]) / count


def bench_sandbox(count: int) -> None:
    """Each program set through the jailed pool (bubblewrap), the fallback pool (zygote on the host in
    `unshare --net --pid`) and one `python -c` per program, side by side in this process: programs/s (best of
    3 windows) and CPU ms per program (workers + this process), one table row per design."""
    from arithmo.sandbox import Sandbox, SandboxError

    workers = os.cpu_count() or 1
    load = os.getloadavg()[0]
    print(f"PoT sandbox ({workers} workers; load average {load:.2f} at the start)")
    designs = [("jail", True), ("fallback", False)]
    try:
        Sandbox(workers=1, jail=True).close()
    except SandboxError as why:
        print(f"  the jail cannot run here ({why}): fallback only")
        designs = designs[1:]
    table = []
    for label, codes in (("GSM8K calculator programs", gsm8k_programs(count)),
                         ("sympy programs", sympy_programs(max(8, count // 4)))):
        plain = plain_subprocess(codes, 30.0, workers)
        rates = {}
        for design, jail in designs:
            with Sandbox(workers=workers, jail=jail) as sandbox:
                sandbox.start()
                results = sandbox.run(codes, timeout_s=10.0)
                agree = sum(r.stdout == p for r, p in zip(results, plain))
                failed = sum(r.error is not None for r in results)
                print(f"  {label}, {design}: {len(codes)} programs, {failed} failed in the sandbox, {agree} outputs "
                      "equal the plain run's", flush=True)
                rates[design] = rate(lambda: sandbox.run(codes, timeout_s=10.0), len(codes), min_seconds=2.0)
                cpu = cpu_per_program(lambda: sandbox.run(codes, timeout_s=10.0), len(codes),
                                      _worker_processes(sandbox))
                table.append((label, design, rates[design], *cpu))
                if sandbox.restarts:
                    print(f"  {len(sandbox.restarts)} worker restarts: {sandbox.restarts[:3]}")
        anchor = rate(lambda: plain_subprocess(codes, 30.0, workers), len(codes), min_seconds=2.0)
        cpu = cpu_per_program(lambda: plain_subprocess(codes, 30.0, workers), len(codes))
        table.append((label, "python -c", anchor, *cpu))
        for design in rates:
            record(f"{label}: {design} pool vs python -c per program", rates[design], anchor, "programs/s")
        if len(rates) == 2:
            record(f"{label}: jail pool vs fallback pool", rates["jail"], rates["fallback"], "programs/s")
    print(f"\n  {'programs':<28}{'design':<12}{'programs/s':>11}{'CPU ms/program: workers':>25}"
          f"{'+ evaluator':>13}{'= total':>9}")
    for label, design, per_s, outside, own in table:
        print(f"  {label:<28}{design:<12}{per_s:>11.1f}{outside:>25.2f}{own:>13.2f}{outside + own:>9.2f}")
    print(f"  (load average {os.getloadavg()[0]:.2f} at the end; CPU per program depends on it far less "
          "than programs/s does)")
    for design, jail in designs:
        start = time.perf_counter()
        with Sandbox(workers=workers, jail=jail) as sandbox:
            sandbox.run(["print(1)"] * workers, timeout_s=10.0)
        print(f"  pool start-up, {design} ({workers} workers, first programs included): "
              f"{time.perf_counter() - start:.2f} s")


# ----------------------------------------------------------------------------------------------
# 3. generation


def bench_generation(items: int, smollm: bool, max_new_tokens: int) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from arithmo.benchmarks import load_items
    from arithmo.generate import generate
    from arithmo.prompts import render_eval

    sys.path.insert(0, str(REPO / "tests"))
    from _shared import make_tiny_model

    torch.set_num_threads(os.cpu_count() or 1)
    questions = [item["question"] for item in load_items(
        "gsm8k", path=str(SHARED / "gsm8k" / "test_first300.jsonl"), n=items)]
    models = []
    with tempfile.TemporaryDirectory() as folder:
        tiny = make_tiny_model(Path(folder) / "tiny", chat_template=True)
        models.append(("tiny random Llama", AutoModelForCausalLM.from_pretrained(tiny).eval(),
                       AutoTokenizer.from_pretrained(tiny), items))
    if smollm:
        from arithmo.model import load_model

        loaded = load_model("smollm2-135m-instruct", engine="hf", trainable=False)
        models.append(("SmolLM2-135M-Instruct", loaded.model, loaded.tokenizer, min(items, 8)))
    print(f"generation (greedy, {max_new_tokens} new tokens at most, real GSM8K questions)")
    for label, model, tokenizer, count in models:
        prompts = [render_eval(q, "cot", tokenizer) for q in questions[:count]]
        generate(model, tokenizer, prompts[:2], max_new_tokens=4, batch_size=2)  # warm-up
        timings = {}
        for batch_size in (1, 8):
            runs = []
            for _ in range(2):  # best of two: see rate()
                started = time.perf_counter()
                outputs = generate(model, tokenizer, prompts, max_new_tokens=max_new_tokens, batch_size=batch_size)
                runs.append(time.perf_counter() - started)
            timings[batch_size] = min(runs)
            tokens = sum(len(tokenizer(o[0], add_special_tokens=False)["input_ids"]) for o in outputs)
            print(f"  {label} batch {batch_size}: {count} items in {timings[batch_size]:.2f} s, best of "
                  f"{len(runs)} (~{tokens} new tokens)", flush=True)
        record(f"{label}: batch 8 vs batch 1", count / timings[8], count / timings[1], "items/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--programs", type=int, default=120, help="GSM8K-derived programs to run")
    parser.add_argument("--items", type=int, default=32, help="questions to generate for (tiny model)")
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--smollm", action="store_true", help="also time SmolLM2-135M-Instruct (slow on CPU)")
    parser.add_argument("--only", choices=("grading", "sandbox", "generation"), help="run one section")
    args = parser.parse_args()
    if not SHARED.is_dir():
        sys.exit(f"real rows not found: {SHARED} is absent (../shared/data beside the checkout)")
    print(f"{os.cpu_count()} CPU cores; python {sys.version.split()[0]}\n")
    if args.only in (None, "grading"):
        bench_grading()
    if args.only in (None, "sandbox"):
        bench_sandbox(args.programs)
    if args.only in (None, "generation"):
        bench_generation(args.items, args.smollm, args.max_new_tokens)
    width = max(len(r[0]) for r in ROWS)
    print(f"\n{'measure':<{width}}  {'arithmo':>11}  {'anchor':>11}  {'ratio':>6}  unit")
    for what, ours, anchor, unit in ROWS:
        print(f"{what:<{width}}  {ours:>11,.1f}  {anchor:>11,.1f}  {ours / anchor:>6.2f}  {unit}")


if __name__ == "__main__":
    main()
