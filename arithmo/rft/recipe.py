"""`python -m arithmo.rft [--preset NAME] [key=value ...]`: rejection-sampling fine-tuning data from a model.

The recipe, top to bottom (`rft(cfg)`; a notebook calls the same function):
  1. resolve what samples: `run=runs/<name>` is that run's adapter on the model and template in its config.yaml;
  2. load the training questions with their gold answers (arithmo.benchmarks: GSM8K's train split by default, or
     a local file) and set aside, counted, those whose gold the grader cannot read;
  3. check that an existing output folder was sampled with the same settings and the same generator
     (provenance.json, as evaluation does) or refuse; re-grade saved samples an older grader scored;
  4. load the model (arithmo.model.load_model, or vLLM: the same backends as evaluation), only when some task is
     left to sample;
  5. sample k solutions per question and style at `temperature` (difficulty-aware: until `min_correct` are correct
     or `max_trials` are drawn), grade them with evaluation's rules (PoT: run in the sandbox), append every round
     to samples.jsonl as it finishes;
  6. keep the correct ones whose own arithmetic holds (CoT) and whose equation list (CoT) or normalised program
     (PoT) is new, and write a data folder in the SFT-record format: train.jsonl (the original data's rows first
     when `mix` names a built folder), val.jsonl (the original's), manifest.json that accounts for every question.

Then train on it: `python -m arithmo.train data=<out>` (Yuan et al. 2023 fine-tune the base model again on the
original data plus the rejection samples: `mix=<the SFT data folder>`).
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from arithmo.benchmarks import NAMES, load_items, source_of
from arithmo.config import (ConfigError, field, load_config, preset_resolver, prog_name, recipe_main, save_config,
                            to_dict)
from arithmo.io import DataError, sha256_file
from arithmo.prompts import POT_HINTS, add_pot_hint, stable_rng, strip_pot_trigger
from arithmo.rft.sampling import (RFTError, Task, check_budget, read_rounds, sample_tasks, select_solutions,
                                  stop_reason, totals)

PRESETS = Path(__file__).resolve().parents[1] / "configs" / "rft"
DEFAULT_MODEL = "smollm2-135m-instruct"
CONFIG, PROVENANCE, SAMPLES, MANIFEST = "rft_config.yaml", "provenance.json", "samples.jsonl", "manifest.json"


@dataclass
class RFTConfig:
    out: str = field("data/rft", help="the data folder to write (train.jsonl, val.jsonl, manifest.json, "
                                      "samples.jsonl); train on it with python -m arithmo.train data=<out>")
    run: str | None = field(None, help="training run folder (runs/<name>) to sample from: its adapter on the model "
                                       "and template in its config.yaml")
    model: str | None = field(None, help=f"hub id, folder, .gguf file or alias; null: the run's model, else "
                                         f"{DEFAULT_MODEL}")
    adapter: str | None = field(None, help="PEFT adapter folder on top of the model (null: the run's, or none)")
    engine: Literal["auto", "unsloth", "kernels", "hf"] = field("auto", help="model engine (arithmo.model)")
    backend: Literal["auto", "hf", "vllm"] = field("auto", help="generation: transformers, or vLLM (auto: vLLM when "
                                                                "installed and a GPU is present; as evaluation)")
    load_in_4bit: bool | None = field(None, help="4-bit base weights; null: exactly when CUDA is present")
    dtype: str = field("auto", help="auto (bf16 on CUDA, fp32 on CPU), float32, bfloat16, float16")
    template: Literal["auto", "plain", "chat"] = field("auto", help="prompt template; auto: the run's, else chat "
                                                                    "when the tokenizer has one")
    benchmark: str = field("gsm8k", help=f"where the training questions and gold answers come from ({', '.join(NAMES)}"
                                         "; arithmo/benchmarks.py); `file`: EvalItem records at `path`")
    path: str | None = field(None, help="local .jsonl/.json/.parquet file in the benchmark's schema")
    hub: str | None = field(None, help="hub dataset id; null: the benchmark's own")
    config: str | None = field(None, help="hub config; null: the benchmark's default")
    split: str = field("train", help="split to sample on (the training questions, never a test split you report)")
    n: int | None = field(None, help="use the first n questions only; null: all")
    styles: list[Literal["cot", "pot"]] = field(default_factory=lambda: ["cot"],
                                                help="solution styles to sample per question")
    k: int = field(4, help="samples per question and style (per round in the difficulty-aware mode)")
    temperature: float = field(0.7, help="sampling temperature")
    top_p: float = field(1.0, help="nucleus sampling")
    max_new_tokens: int = field(512, help="longest completion in tokens")
    batch_size: int = field(16, help="sequences per generation batch")
    min_correct: int | None = field(None, help="difficulty-aware (DART-Math Uniform): keep sampling a question in "
                                               "rounds of k until it has this many correct samples; null: k once")
    max_trials: int | None = field(None, help="difficulty-aware: at most this many samples per question and style "
                                              "(a multiple of k)")
    check_equations: bool = field(True, help="drop a correct CoT sample whose own arithmetic is wrong on the way "
                                             "(Yuan et al. 2023 filter calculation errors)")
    mix: str | None = field(None, help="a built data folder whose train.jsonl (and val.jsonl) go into the output "
                                       "first; a sampled solution the same as its original one is a duplicate")
    program_timeout_s: float = field(5.0, help="time limit per program (PoT) in seconds")
    workers: int | None = field(None, help="sandbox processes running programs; null: one per CPU core")
    grade_timeout_s: float = field(2.0, help="time limit for one symbolic answer comparison")
    stop: list[str] | None = field(None, help="stop strings; null: as evaluation ('\\nQuestion:' for the plain "
                                              "template, none for chat)")
    seed: int = field(0, help="seed for sampling and the PoT hint phrase of each question")
    chunk: int = field(64, help="tasks (question x style) per generation round; each round is saved as it ends")
    resume: bool = field(True, help="keep the samples already in <out>/samples.jsonl when the same generator and "
                                    "settings made them (false: start over)")

    def validate(self) -> None:
        for key in ("k", "max_new_tokens", "batch_size", "chunk"):
            if getattr(self, key) < 1:
                raise ConfigError(f"{key}: expected a positive integer, got {getattr(self, key)}")
        if self.temperature <= 0:
            raise ConfigError(f"temperature: rejection sampling draws samples; expected > 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ConfigError(f"top_p: expected a number in (0, 1], got {self.top_p}")
        if not self.styles:
            raise ConfigError("styles: expected at least one of cot, pot")
        if self.benchmark not in NAMES:
            raise ConfigError(f"benchmark: expected one of {', '.join(NAMES)}, got {self.benchmark!r}")
        if self.benchmark == "file" and self.path is None:
            raise ConfigError("path: benchmark=file needs path=<EvalItem .jsonl/.json/.parquet file>")
        if self.n is not None and self.n < 1:
            raise ConfigError(f"n: expected a positive number of questions (or null for all), got {self.n}")
        for key in ("program_timeout_s", "grade_timeout_s"):
            if getattr(self, key) <= 0:
                raise ConfigError(f"{key}: expected a positive number of seconds, got {getattr(self, key)}")
        try:
            check_budget(self.k, self.min_correct, self.max_trials)
        except RFTError as err:
            raise ConfigError(str(err)) from err


# Keys that do not change what a sample is: a resumed run may change them. The generator itself (model and
# adapter contents, backend, dtype, 4-bit, template) is compared through provenance.json, by content.
NOT_HASHED = ("out", "run", "model", "adapter", "engine", "backend", "load_in_4bit", "dtype", "template", "n",
              "batch_size", "min_correct", "max_trials", "check_equations", "mix", "workers", "chunk", "resume",
              "path", "hub")


def config_hash(cfg: RFTConfig) -> str:
    data = {key: value for key, value in to_dict(cfg).items() if key not in NOT_HASHED}
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


def resolve(cfg: RFTConfig) -> RFTConfig:
    """A copy of `cfg` with model, adapter and template filled in from `run` and the defaults."""
    from arithmo.runs import RunError, RunFolder, find_adapter, read_run_config

    values = to_dict(cfg)
    if cfg.run is not None:
        try:
            trained = read_run_config(cfg.run).model
            values["adapter"] = values["adapter"] or str(find_adapter(RunFolder(Path(cfg.run)).adapter))
        except RunError as err:
            raise RFTError(f"run={cfg.run}: {err}; or pass model= and adapter=") from err
        values["model"] = values["model"] or trained.name
        if values["template"] == "auto":
            values["template"] = trained.template  # sample with the template the run trained on
    values["model"] = values["model"] or DEFAULT_MODEL
    return load_config(RFTConfig, values)


def make_tasks(items: list[dict], styles: list[str], seed: int, grade_timeout_s: float) -> list[Task]:
    """One Task per question and style. A PoT prompt is the question plus one hint phrase drawn per question
    (stable_rng(seed, id), as the data build draws them), so no single sentence becomes the trigger."""
    from arithmo.rewards import gold_problem

    seen: set[str] = set()
    for item in items:
        if item["id"] in seen:
            raise RFTError(f"question id {item['id']!r} appears twice: ids name the questions in samples.jsonl")
        seen.add(item["id"])
    return [Task(item=item, style=style, gold_problem=gold_problem(item["answer"], grade_timeout_s),
                 prompt=item["question"] if style == "cot"
                 else add_pot_hint(item["question"], stable_rng(seed, item["id"]), POT_HINTS))
            for item in items for style in styles]


def known_solutions(rows: list[dict]) -> dict[tuple[str, str], set]:
    """{(prompt, style): solution keys} of the original data, by question text (a PoT row's own hint phrase
    taken off and ours put on would not match: the key is the question without any hint)."""
    from arithmo.rft.dedup import solution_key

    known: dict[tuple[str, str], set] = {}
    for row in rows:
        question = strip_pot_trigger(row["prompt"])[0] if row["style"] == "pot" else row["prompt"]
        known.setdefault((question, row["style"]), set()).add(solution_key(row["style"], row["completion"]))
    return known


def _write_jsonl(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")


def rft(cfg: RFTConfig) -> dict:
    """Sample, grade, de-duplicate and write the RFT data folder; returns its manifest."""
    started = time.perf_counter()
    # 1. what samples -------------------------------------------------------------------------
    cfg = resolve(cfg)
    out = Path(cfg.out)
    # 2. the training questions; golds the grader cannot read are set aside, counted ------------
    items = load_items(cfg.benchmark, path=cfg.path, hub=cfg.hub, config=cfg.config, split=cfg.split, n=cfg.n)
    tasks = make_tasks(items, cfg.styles, cfg.seed, cfg.grade_timeout_s)
    unreadable = sorted({t.item["id"] for t in tasks if t.gold_problem is not None})
    if unreadable:
        print(f"[rft] {len(unreadable)} of {len(items)} questions have a gold answer the grader cannot read and are "
              f"not sampled (first: {', '.join(unreadable[:5])}); see manifest.json", file=sys.stderr)
    mixed_train, mixed_val = [], []
    if cfg.mix is not None:
        from arithmo.settings import TrainError
        from arithmo.sft import read_sft_file

        if not (Path(cfg.mix) / "train.jsonl").is_file():
            raise RFTError(f"mix={cfg.mix}: expected a built data folder with train.jsonl")
        try:
            mixed_train = read_sft_file(Path(cfg.mix) / "train.jsonl")
            val = Path(cfg.mix) / "val.jsonl"
            mixed_val = read_sft_file(val) if val.is_file() else []
        except TrainError as err:
            raise RFTError(f"mix={cfg.mix}: {err}") from err
    # 3. resume checks: the same settings and generator; an older grader's verdicts are re-graded ---
    from arithmo.backends import pick_backend
    from arithmo.evaluation.provenance import provenance
    from arithmo.grading import GRADER_VERSION

    backend, backend_reason = pick_backend(cfg)  # reads the same keys an EvalConfig has
    record = provenance(model=cfg.model, adapter=cfg.adapter, backend=backend, dtype=cfg.dtype,
                        load_in_4bit=cfg.load_in_4bit, template=cfg.template, grader_version=GRADER_VERSION,
                        engine=cfg.engine)
    store = out / SAMPLES
    digests = question_digests(items)
    regrade = check_resumable(cfg, out, record, digests)
    if cfg.resume and (out / PROVENANCE).is_file():  # ids sampled before and not asked now (a smaller n) stay
        before = json.loads((out / PROVENANCE).read_text()).get("questions")
        digests = {**before, **digests} if isinstance(before, dict) else digests
    out.mkdir(parents=True, exist_ok=True)
    if not cfg.resume:
        store.write_text("")
    save_config(cfg, out / CONFIG)
    (out / PROVENANCE).write_text(json.dumps({**record, "config_hash": config_hash(cfg), "questions": digests},
                                             indent=2) + "\n")
    sandbox = None
    try:
        if "pot" in cfg.styles:
            from arithmo.sandbox import Sandbox

            sandbox = Sandbox(workers=cfg.workers)

        def grade(completions: list[str], golds: list[str], styles: list[str]):
            from arithmo.rewards import grade_completions

            run = (lambda codes: sandbox.run(codes, timeout_s=cfg.program_timeout_s)) if sandbox else None
            return grade_completions(completions, golds, styles, run=run, grade_timeout_s=cfg.grade_timeout_s)

        if regrade:
            regrade_store(store, tasks, grade)
        rounds, _ = read_rounds(store)
        due = [t for t in tasks if t.gold_problem is None
               and stop_reason(rounds.get(t.key, []), cfg.k, cfg.min_correct, cfg.max_trials) is None]
        # 4. the model, when something is left to sample ------------------------------------------
        complete = None
        if due:
            complete = load_sampler(cfg, backend)
            print(f"[rft] {cfg.model}{' + ' + cfg.adapter if cfg.adapter else ''}: {len(due)} of {len(tasks)} tasks "
                  f"to sample (k={cfg.k}, temperature={cfg.temperature}); backend {backend} ({backend_reason})",
                  file=sys.stderr)
        # 5. sample, grade, save every round -------------------------------------------------------
        rounds = sample_tasks(tasks, complete=complete, grade=grade, k=cfg.k, store=store,
                              min_correct=cfg.min_correct, max_trials=cfg.max_trials, seed=cfg.seed,
                              chunk=cfg.chunk, progress=True) if due else rounds
    finally:
        if sandbox is not None:
            sandbox.close()
    # 6. keep the correct distinct solutions; write the data folder and its manifest ---------------
    records, accounts = select_solutions(tasks, rounds, k=cfg.k, min_correct=cfg.min_correct,
                                         max_trials=cfg.max_trials, known=known_solutions(mixed_train),
                                         check_equations=cfg.check_equations)
    _write_jsonl(out / "train.jsonl", mixed_train + records)
    if mixed_val:
        _write_jsonl(out / "val.jsonl", mixed_val)
    elif (out / "val.jsonl").is_file():
        (out / "val.jsonl").unlink()  # from an earlier run with mix: not this folder's data any more
    manifest = {
        "name": "rft", "method": "rejection sampling fine-tuning (Yuan et al. 2023)"
        + ("; difficulty-aware (DART-Math Uniform)" if cfg.min_correct else ""),
        "config": to_dict(cfg), "generator": record,
        "questions": {"source": source_of(cfg.benchmark, path=cfg.path, hub=cfg.hub, config=cfg.config,
                                          split=cfg.split),
                      "sha256": sha256_file(Path(cfg.path)) if cfg.path else None, "n": len(items),
                      "unreadable_gold": len(unreadable)},
        "mix": None if cfg.mix is None else {
            "path": cfg.mix, "train_rows": len(mixed_train), "val_rows": len(mixed_val),
            "train_sha256": sha256_file(Path(cfg.mix) / "train.jsonl")},
        "totals": {**totals(accounts), "rows": {"rft": len(records), "original": len(mixed_train),
                                                "train": len(records) + len(mixed_train), "val": len(mixed_val)}},
        "per_task": accounts,
        "seconds": round(time.perf_counter() - started, 1),
    }
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
    t = manifest["totals"]
    print(f"[rft] {t['tasks']} tasks ({len(items)} questions x {'+'.join(cfg.styles)}): {t['sampled']} sampled, "
          f"{t['correct']} correct, {t['kept']} kept ({t['tasks_with_kept']} tasks with at least one); dropped "
          + ", ".join(f"{reason} {count}" for reason, count in t["dropped"].items() if count)
          + f"; stopped: {t['stopped']}", file=sys.stderr)
    if not t["rows"]["train"]:  # nothing to train on: say so with the counts (the samples stay for a resume)
        raise RFTError(f"no training row: {t['sampled']} samples of {t['tasks']} tasks, {t['correct']} correct, "
                       f"{t['kept']} kept, and no mix; {out}/train.jsonl is empty (manifest.json has the counts, "
                       "samples.jsonl the samples). Sample more (larger k or max_trials, a stronger model or run) or "
                       "add mix=<a built data folder>")
    print(f"[rft] wrote {out}/train.jsonl ({t['rows']['train']} rows: {t['rows']['rft']} RFT + "
          f"{t['rows']['original']} original), manifest.json, samples.jsonl. Train: python -m arithmo.train "
          f"data={out}")
    return manifest


def question_digests(items: list[dict]) -> dict[str, str]:
    """{item id: sha256 of its question and gold, 16 hex digits}: what a saved sample answered, compared on resume
    (the same file or hub split edited under the same ids gives other questions)."""
    return {item["id"]: hashlib.sha256(json.dumps([item["question"], item["answer"]], ensure_ascii=False)
                                       .encode()).hexdigest()[:16] for item in items}


def check_resumable(cfg: RFTConfig, out: Path, record: dict, digests: dict[str, str] | None = None) -> bool:
    """Refuse to resume samples made with other settings, by another generator or for other questions (`digests`:
    question_digests of the items asked now, against those provenance.json recorded; folders from before the
    digests compare the questions' source instead); returns whether the saved samples need re-grading (another
    grader version scored them)."""
    from arithmo.evaluation.provenance import ResumeRefused, changed_settings, check_saved_generator

    store, fix = out / SAMPLES, "use resume=false to start over, or another out"
    if not cfg.resume or not store.is_file() or not store.read_text().strip():
        return False
    try:
        grading = check_saved_generator(store, record, what="samples", fix=fix)
    except ResumeRefused as err:
        raise RFTError(str(err)) from err
    if json.loads((out / PROVENANCE).read_text()).get("config_hash") != config_hash(cfg):
        old = load_config(RFTConfig, out / CONFIG) if (out / CONFIG).is_file() else None
        changed = changed_settings(to_dict(old), to_dict(cfg), NOT_HASHED) if old else ["settings"]
        raise RFTError(f"{out} holds samples drawn with other settings ({'; '.join(changed)}); {fix}")
    # The questions' source is not in the hash (a resume may change n and the rest of NOT_HASHED), but another file
    # or hub dataset, or the same file edited, gives other questions under the same ids: the saved samples would be
    # graded against them. Compared by content where provenance.json recorded it (a copy of the file resumes).
    recorded = json.loads((out / PROVENANCE).read_text()).get("questions")
    if isinstance(recorded, dict) and digests is not None:
        other = [item_id for item_id, digest in digests.items() if item_id in recorded and recorded[item_id] != digest]
        if other:
            raise RFTError(f"{out} holds samples of other questions: {len(other)} of the ids asked now have another "
                           f"question or gold than when they were sampled (e.g. {other[0]}); {fix}")
        return bool(grading)
    old = load_config(RFTConfig, out / CONFIG) if (out / CONFIG).is_file() else None
    if old is not None:
        moved = [f"{key}: {getattr(old, key)!r} -> {getattr(cfg, key)!r}" for key in ("path", "hub")
                 if _source_key(getattr(old, key), key) != _source_key(getattr(cfg, key), key)]
        if moved:
            raise RFTError(f"{out} holds samples of other questions ({'; '.join(moved)}); {fix}")
    return bool(grading)


def _source_key(value: str | None, key: str) -> str | None:
    """A questions source as compared on resume: a path resolved (runs/x.jsonl and ./runs/x.jsonl are one file)."""
    return str(Path(value).expanduser().resolve()) if key == "path" and value else value


def regrade_store(store: Path, tasks: list[Task], grade) -> None:
    """Grade every saved sample again with the current grader (no sampling) and rewrite samples.jsonl."""
    by_key = {t.key: t for t in tasks}
    rounds, _ = read_rounds(store)
    lines = []
    for key, task_rounds in rounds.items():
        task = by_key.get(key)
        for number, samples in enumerate(task_rounds):
            if task is not None:
                verdicts = grade([s["completion"] for s in samples], [task.item["answer"]] * len(samples),
                                 [task.style] * len(samples))
                samples = [{**s, "reason": v.reason, "answer": v.answer, "program": v.program, "exec": v.exec}
                           for s, v in zip(samples, verdicts)]
            item_id, style = key.rsplit("|", 1)
            lines.append({"id": item_id, "style": style, "round": number, "samples": samples})
    _write_jsonl(store, lines)
    print(f"[rft] re-graded {sum(len(s) for r in rounds.values() for s in r)} saved samples with the current "
          "grader (no sampling)", file=sys.stderr)


def load_sampler(cfg: RFTConfig, backend: str):
    """`complete(prompts, k, seed)` on the model `cfg` names: k sampled completions per prompt (arithmo.generate)."""
    from arithmo.backends import load_for_eval
    from arithmo.prompts import stop_strings
    from arithmo.generate import generate
    from arithmo.prompts import render_prompt

    model, tokenizer, engine = load_for_eval(cfg, backend)  # reads the same keys an EvalConfig has
    print(f"[rft] engine {engine}", file=sys.stderr)
    stop = stop_strings(tokenizer, cfg.template) if cfg.stop is None else cfg.stop

    def complete(prompts: list[str], k: int, seed: int) -> list[list[str]]:
        # The prompts are the SFT records' user turns; render_prompt applies the template as evaluation does.
        rendered = [render_prompt(prompt, tokenizer, cfg.template) for prompt in prompts]
        shown = [0.0]

        def on_batch(done: int, total: int) -> None:  # a round spans many batches: show it, every 15 s at most
            if done < total and time.perf_counter() - shown[0] >= 15.0:
                shown[0] = time.perf_counter()
                print(f"[rft]   generated {done}/{total} prompts of this round (k={k} each)", file=sys.stderr,
                      flush=True)

        return generate(model, tokenizer, rendered, max_new_tokens=cfg.max_new_tokens, temperature=cfg.temperature,
                        top_p=cfg.top_p, num_samples=k, batch_size=cfg.batch_size, stop=stop, seed=seed,
                        backend=backend, on_batch=on_batch)

    return complete


resolve_preset = preset_resolver(PRESETS)  # a YAML path or a preset name (without .yaml)


def main(argv: list[str] | None = None) -> int:
    def errors():
        from arithmo.model import ModelError  # imports torch: after --help has had its chance to exit

        from arithmo.backends import BackendError

        return RFTError, DataError, ModelError, BackendError

    return recipe_main(argv, prog=prog_name("rft"), cls=RFTConfig, run=rft, errors=errors,
                       presets=PRESETS, example="smollm2_cpu",
                       description="Rejection-sampling fine-tuning data: sample solutions, keep the correct "
                                   "distinct ones.")
