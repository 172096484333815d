"""`python -m arithmo.eval [--preset gsm8k_cot] [key=value ...]`: score a model (and adapter) on a benchmark.

The recipe, top to bottom (`evaluate(cfg)`; a notebook calls the same function):
  1. resolve what to evaluate: `run=runs/<name>` means that run's adapter on the model in its config.yaml;
  2. load the benchmark items (hub id by default, or a local file in the benchmark's schema);
  3. check that an existing predictions file came from the same settings and the same generator (model and
     adapter contents, backend, dtype, template: provenance.json) or refuse; re-grade saved lines that an
     older grader scored (or all of them with regrade=true) without generating again;
  4. load the model (arithmo.model.load_model; vLLM when installed and its settings allow), only when some
     item is left to generate;
  5. generate, run programs, grade (`evaluate_items`; greedy, plus maj@k when k > 1), appending to
     predictions.jsonl as items finish; with `seeds=[s0, s1, ...]` (k > 1), s0 is this pass and every other
     seed a full maj@k pass of its own, in its own eval folder `<output_dir>_seed<s>` (evaluated like this one,
     so it resumes on its own; the model is loaded once for all);
  6. write metrics.json (with maj@k's mean, std, min and max over the seeds) and accuracy.png, print a table.

Outputs go to `<output_dir>` (default `runs/<name>/eval/<benchmark>_<style>/` for a run):
`predictions.jsonl`, `metrics.json`, `eval_config.yaml` (the resolved config; itself a valid preset),
`provenance.json` (what generated the predictions) and `accuracy.png`.
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from arithmo import distributed
from arithmo.benchmarks import NAMES, benchmark_name, load_items
from arithmo.config import (ConfigError, field, is_main_rank, load_config, preset_resolver, prog_name, recipe_main,
                            save_config, to_dict)
from arithmo.io import DataError
from arithmo.evaluation.provenance import ResumeRefused, changed_settings, check_saved_generator, provenance
from arithmo.evaluation.scoring import regrade
from arithmo.evaluation.shards import SHARDS, ShardError, discard_shards, fold_shards, run_shards
from arithmo.backends import BackendError, load_for_eval, pick_backend
from arithmo.evaluation.store import pending_ids, regrade_file, write_in_item_order
from arithmo.runs import (CHART, EVAL_CONFIG, METRICS, PREDICTIONS, PROVENANCE, RunError, RunFolder,
                          default_eval_dir, find_adapter, read_run_config)
from arithmo.evaluation.intervals import seed_spread
from arithmo.evaluation.loop import evaluate_items
from arithmo.evaluation.metrics import format_table, plot_accuracy
from arithmo.prompts import POT_HINTS

__all__ = ["EvalConfig", "EvalError", "evaluate", "evaluate_items", "load_items", "main"]

PRESETS = Path(__file__).parent / "configs" / "eval"
DEFAULT_MODEL = "smollm2-135m-instruct"  # the CPU demo's model (docs/design.md, "Offline by design")


class EvalError(RuntimeError):
    """An evaluation cannot run as configured; the message says what to change."""


@dataclass
class EvalConfig:
    model: str | None = field(None, help=f"hub id, local folder, .gguf file or alias; null: the run's model, "
                                         f"else {DEFAULT_MODEL}")
    adapter: str | None = field(None, help="PEFT adapter folder to evaluate on top of the model")
    run: str | None = field(None, help="training run folder (runs/<name>): its adapter/ on the model in its "
                                       "config.yaml; results go to <run>/eval/<benchmark>_<style>[_maj<k>]/")
    engine: Literal["auto", "unsloth", "kernels", "hf"] = field("auto", help="model engine (arithmo.model)")
    backend: Literal["auto", "hf", "vllm"] = field("auto", help="generation: transformers, or vLLM (auto: vLLM "
                                                                "when installed and a GPU is present)")
    load_in_4bit: bool | None = field(None, help="4-bit base weights; null: exactly when CUDA is present")
    dtype: str = field("auto", help="auto (bf16 on CUDA, fp32 on CPU), float32, bfloat16, float16")
    benchmark: str = field("gsm8k", help=f"benchmark ({', '.join(NAMES)}; arithmo/benchmarks.py); `file` reads "
                                         "EvalItem records from `path`")
    path: str | None = field(None, help="local .jsonl/.json/.parquet file in the benchmark's schema "
                                        "(instead of the hub)")
    hub: str | None = field(None, help="hub dataset id; null: the benchmark's own (arithmo/benchmarks.py)")
    config: str | None = field(None, help="hub config; null: the benchmark's default (gsm8k: main; math: "
                                          "every subject)")
    split: str | None = field(None, help="hub split; null: test")
    n: int | None = field(None, help="evaluate the first n items only; null: all")
    style: Literal["cot", "pot", "hybrid", "tir"] = field(
        "cot", help="cot: reasoning + 'The answer is'; pot: a program whose output is the answer; hybrid: pot, "
                    "falling back to cot; tir: reasoning with code blocks run as it goes (tool-integrated)")
    max_tool_calls: int = field(4, help="tir: code blocks run per solution at most (max_new_tokens caps the "
                                        "whole solution)")
    k: int = field(1, help="maj@k: k sampled completions per item, majority vote (reported beside greedy); "
                           "1: greedy only")
    samples: int | None = field(None, help="k sampled completions per item, drawn in one request per prompt (vLLM "
                                           "n, transformers num_return_sequences): avg@k with its interval, "
                                           "pass@k' and maj@k beside greedy. The same as k (set one, or both "
                                           "equal); null: k")
    temperature: float = field(0.7, help="sampling temperature for the k maj@k samples (greedy is always run)")
    top_p: float = field(1.0, help="nucleus sampling for the maj@k samples")
    max_new_tokens: int = field(512, help="longest completion in tokens (tir: the model's own tokens over all "
                                          "rounds; the interpreter's output is not counted)")
    max_model_len: int | None = field(None, help="vLLM: the context it reserves KV cache for; null: max_new_tokens "
                                                 "+ room for the prompt (and tir's output blocks), capped at the "
                                                 "model's own context (a 128K-context model would not start on "
                                                 "24 GB otherwise)")
    batch_size: int = field(8, help="sequences per generation batch")
    template: Literal["auto", "plain", "chat"] = field("auto", help="prompt template; auto: the run's, else "
                                                                    "chat when the tokenizer has one")
    pot_hint: str = field(POT_HINTS[0], help="the sentence appended to a question to ask for a program")
    stop: list[str] | None = field(None, help="stop strings; null: '\\nQuestion:' for the plain template, none "
                                              "for chat (eos ends a turn)")
    program_timeout_s: float = field(5.0, help="time limit per program (PoT) in seconds")
    workers: int | None = field(None, help="sandbox processes running programs; null: one per CPU core")
    grade_timeout_s: float = field(2.0, help="time limit for one symbolic answer comparison")
    output_dir: str | None = field(None, help="where results go; null: <run>/eval/<benchmark>_<style>[_maj<k>] "
                                              "or runs/eval/<model>/<benchmark>_<style>[_maj<k>]")
    resume: bool = field(True, help="skip items already in predictions.jsonl, when the same model, adapter and "
                                    "settings made them (false: start over)")
    regrade: bool = field(False, help="grade the saved completions again without generating (a resume "
                                      "re-grades lines of an older grader by itself)")
    save_every: int = field(64, help="append predictions to disk every this many items at most (greedy: every "
                                     "batch_size items; Ctrl-C keeps what is saved)")
    plot: bool = field(True, help="write accuracy.png")
    seed: int = field(0, help="seed for maj@k sampling (with `seeds`, their first)")
    seeds: list[int] | None = field(None, help="maj@k once per seed (k > 1): the first is this folder's pass, each "
                                               "other a full pass in <output_dir>_seed<s>; metrics.json reports "
                                               "maj@k's mean, std, min and max over them. null: `seed` only")
    data_parallel: int = field(1, help="processes that split the items left to generate (one GPU each when there "
                                       "are that many); their predictions merge into one predictions.jsonl")

    def validate(self) -> None:
        positive = {"max_new_tokens": self.max_new_tokens, "batch_size": self.batch_size, "k": self.k,
                    "save_every": self.save_every}
        positive["data_parallel"] = self.data_parallel
        positive["max_tool_calls"] = self.max_tool_calls
        if self.max_model_len is not None:
            positive["max_model_len"] = self.max_model_len
        for key, value in positive.items():
            if value < 1:
                raise ConfigError(f"{key}: expected a positive integer, got {value}")
        if self.n is not None and self.n <= 0:
            raise ConfigError(f"n: expected a positive number of items (or null for all), got {self.n}")
        if self.workers is not None and self.workers < 1:
            raise ConfigError(f"workers: expected >= 1 (or null for one per core), got {self.workers}")
        if self.benchmark not in NAMES:
            raise ConfigError(f"benchmark: expected one of {', '.join(NAMES)}, got {self.benchmark!r}")
        for key in ("program_timeout_s", "grade_timeout_s"):
            if getattr(self, key) <= 0:
                raise ConfigError(f"{key}: expected a positive number of seconds, got {getattr(self, key)}")
        if self.samples is not None:
            if self.samples < 1:
                raise ConfigError(f"samples: expected a positive integer, got {self.samples}")
            if self.k not in (1, self.samples):
                raise ConfigError(f"samples={self.samples} and k={self.k}: both set the samples per item; set one")
            if self.samples > 1 and self.temperature <= 0:
                raise ConfigError(f"temperature: samples={self.samples} per item need temperature > 0, got "
                                  f"{self.temperature}")
        if self.k > 1 and self.temperature <= 0:
            raise ConfigError(f"temperature: maj@k (k={self.k}) samples need temperature > 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ConfigError(f"top_p: expected a number in (0, 1], got {self.top_p}")
        if self.benchmark == "file" and self.path is None:
            raise ConfigError("path: benchmark=file needs path=<EvalItem .jsonl/.json/.parquet file>")
        if self.model is not None and not self.model.strip():
            raise ConfigError("model: empty; give a hub id, folder, .gguf file or alias (or null)")
        if self.seeds is not None:
            if self.k < 2:
                raise ConfigError(f"seeds: only sampled passes depend on the seed; set k > 1 (got k={self.k})")
            if not self.seeds or len(set(self.seeds)) != len(self.seeds):
                raise ConfigError(f"seeds: expected a list of distinct seeds, got {self.seeds}")
            if self.seed not in (0, self.seeds[0]):  # 0: the default, replaced by the first of seeds
                raise ConfigError(f"seed={self.seed} and seeds={self.seeds}: with seeds, the first one is this "
                                  "folder's pass; drop seed or put it first in seeds")


# Keys that do not change what a prediction line holds: a resumed run may change them freely. What generates
# the completions (model and adapter contents, backend, dtype, 4-bit, template) is compared through
# provenance.json instead, by content rather than by name.
# `seeds` names the other seeds' folders; this folder's predictions depend on `seed` alone (which is hashed).
NOT_HASHED = ("output_dir", "resume", "regrade", "plot", "save_every", "batch_size", "workers", "n", "data_parallel",
              "seeds", "model",
              "adapter", "run", "engine", "backend", "load_in_4bit", "dtype", "template")


def config_hash(cfg: EvalConfig) -> str:
    """A short hash of the settings that decide the predictions (not n, paths of outputs or speed knobs)."""
    data = {key: value for key, value in to_dict(cfg).items() if key not in NOT_HASHED}
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


def resolve(cfg: EvalConfig) -> EvalConfig:
    """A copy of `cfg` with model, adapter, template and output_dir filled in from `run` and defaults."""
    values = to_dict(cfg)
    if cfg.run is not None:
        try:
            run_config = read_run_config(cfg.run)
            trained = run_config.model
            adapter = values["adapter"] or str(find_adapter(RunFolder(Path(cfg.run)).adapter))
        except RunError as err:
            raise EvalError(f"run={cfg.run}: {err}; or pass adapter=<folder>") from err
        values["model"] = values["model"] or trained.name
        values["adapter"] = adapter
        asked = {"pot", "cot"} if cfg.style == "hybrid" else {cfg.style}
        if not asked & set(run_config.styles) and is_main_rank():  # e.g. a CoT score of a PoT-only adapter
            print(f"[eval] note: {cfg.run} trained on styles {run_config.styles}; style={cfg.style} scores it on a "
                  "format it did not learn", file=sys.stderr)
        if values["template"] == "auto":
            values["template"] = trained.template  # evaluate with the template the run trained on
    values["model"] = values["model"] or DEFAULT_MODEL
    if cfg.samples is not None:  # `samples` is k under the name reasoning-model evaluations use
        values["k"] = cfg.samples
        cfg = load_config(EvalConfig, {**to_dict(cfg), "k": cfg.samples})
    if cfg.seeds:
        values["seed"] = cfg.seeds[0]  # this folder's maj@k pass is the first seed's
    if values["output_dir"] is None:
        name = benchmark_name(cfg.benchmark, cfg.path)
        values["output_dir"] = str(RunFolder(Path(cfg.run)).eval_dir(name, cfg.style, cfg.k) if cfg.run is not None
                                   else default_eval_dir(values["model"], values["adapter"], name, cfg.style, cfg.k))
    return load_config(EvalConfig, values)


def seed_config(cfg: EvalConfig, seed: int) -> EvalConfig:
    """One other seed's maj@k pass of a resolved `cfg` with `seeds`: the same settings with `seed`, in the sibling
    eval folder `<output_dir>_seed<seed>` (a full eval folder: it resumes, re-grades and is listed like any)."""
    return load_config(EvalConfig, {**to_dict(cfg), "seed": seed, "seeds": None, "plot": False,
                                    "output_dir": f"{str(cfg.output_dir).rstrip('/')}_seed{seed}"})


def check_resumable(cfg: EvalConfig, out: Path, record: dict) -> None:
    """Refuse to resume predictions made with other settings or by another generator (they would be mixed
    into one score)."""
    saved, fix = out / EVAL_CONFIG, "use resume=false to start over, or another output_dir"
    if not cfg.resume or not (out / PREDICTIONS).is_file():
        return
    if saved.is_file():
        try:
            before = load_config(EvalConfig, saved)
        except ConfigError as err:
            raise EvalError(f"{saved}: cannot read the earlier run's config ({err}); use resume=false") from err
        if config_hash(before) != config_hash(cfg):
            changed = changed_settings(to_dict(before), to_dict(cfg), NOT_HASHED)
            raise EvalError(f"{out} holds predictions made with other settings ({'; '.join(changed)}); {fix}")
    try:
        check_saved_generator(out / PREDICTIONS, record, what="predictions", fix=fix)
    except ResumeRefused as err:
        raise EvalError(str(err)) from err


def regrade_saved(cfg: EvalConfig, out: Path, items: list[dict]) -> None:
    """Re-grade saved lines scored by another grader version (all with regrade=true), without generating."""
    from arithmo.grading import GRADER_VERSION

    golds = {item["id"]: item["answer"] for item in items}
    sandbox = None

    def regrade_lines(lines: list[dict]) -> tuple[list[dict], set[str]]:
        nonlocal sandbox
        if cfg.style != "cot":
            from arithmo.sandbox import Sandbox

            sandbox = Sandbox(workers=cfg.workers)
        run = (lambda programs: sandbox.run(programs, timeout_s=cfg.program_timeout_s)) if sandbox else None
        return regrade(lines, golds, cfg.style, run=run, grade_timeout_s=cfg.grade_timeout_s)

    try:
        count, redo = regrade_file(out / PREDICTIONS, list(golds), GRADER_VERSION, cfg.regrade, regrade_lines)
    finally:
        if sandbox is not None:
            sandbox.close()
    if count:
        print(f"[eval] re-graded {count} saved lines with {GRADER_VERSION} (no generation)"
              + (f"; {redo} items need generating again (their program no longer answers and no "
                 "chain-of-thought fallback was saved)" if redo else ""), file=sys.stderr)


def evaluate_rank_share(cfg: EvalConfig, out: Path, items: list[dict], backend: str, rank: int, world: int) -> None:
    """Under a multi-process launch: generate this rank's share of the items left (every world-th one) into
    out/shards/<rank>/, wait for every rank, and (rank 0) fold the shards into out/predictions.jsonl."""
    pending = set(pending_ids(out / PREDICTIONS, [item["id"] for item in items], cfg.style, cfg.k))
    mine = [item for item in items if item["id"] in pending][rank::world]
    if mine:
        model, tokenizer, _ = load_for_eval(cfg, backend)
        evaluate_items(model, tokenizer, mine, cfg.style, template=cfg.template, pot_hint=cfg.pot_hint, k=cfg.k,
                       temperature=cfg.temperature, top_p=cfg.top_p, max_new_tokens=cfg.max_new_tokens,
                       batch_size=cfg.batch_size, stop=cfg.stop, program_timeout_s=cfg.program_timeout_s,
                       workers=cfg.workers, grade_timeout_s=cfg.grade_timeout_s, seed=cfg.seed,
                       max_tool_calls=cfg.max_tool_calls, backend=backend,
                       predictions_path=out / SHARDS / str(rank) / PREDICTIONS, resume=True,
                       save_every=cfg.save_every, progress=rank == 0)
    distributed.barrier()
    if rank == 0:
        fold_shards(out)
    distributed.barrier()


def evaluate(cfg: EvalConfig, *, _shared: dict | None = None) -> dict:
    """Run the evaluation `cfg` describes; returns the metrics (also written to metrics.json)."""
    started = time.perf_counter()
    shared = {} if _shared is None else _shared  # the loaded model, shared with the passes of other seeds
    # 1. what to evaluate ---------------------------------------------------------------------
    cfg = resolve(cfg)
    out = Path(cfg.output_dir)
    # 2. the benchmark ------------------------------------------------------------------------
    items = load_items(cfg.benchmark, path=cfg.path, hub=cfg.hub, config=cfg.config, split=cfg.split, n=cfg.n)
    if cfg.n is not None and len(items) < cfg.n:
        print(f"[eval] n={cfg.n} but the benchmark has {len(items)} items: evaluating all {len(items)}",
              file=sys.stderr)
    # 3. resume checks: the same settings, the same generator; re-grade what an older grader scored --------
    from arithmo.grading import GRADER_VERSION  # imports sympy (~1 s): not at `--help` time

    rank, world = distributed.start()  # under torchrun / accelerate launch: one process per GPU (gloo on CPU)
    if world > 1 and cfg.data_parallel > 1:
        raise EvalError(f"data_parallel={cfg.data_parallel} inside a {world}-process launch: use one or the other")
    if world > 1 and cfg.seeds:  # the other ranks leave after this pass; the next seed's pass would wait for them
        raise EvalError(f"seeds={cfg.seeds} inside a {world}-process launch: launch once per seed (seed=<s>), or "
                        "use data_parallel")
    backend, backend_reason = pick_backend(cfg)
    record = provenance(model=cfg.model, adapter=cfg.adapter, backend=backend, dtype=cfg.dtype,
                        load_in_4bit=cfg.load_in_4bit, template=cfg.template, grader_version=GRADER_VERSION,
                        engine=cfg.engine)
    # every decoding choice, recorded beside what generated the predictions (provenance.json, metrics.json)
    record["decoding"] = {"samples_per_item": cfg.k, "greedy_pass": True, "temperature": cfg.temperature,
                          "top_p": cfg.top_p, "max_new_tokens": cfg.max_new_tokens, "seed": cfg.seed,
                          "stop": cfg.stop, "template": cfg.template}
    check_resumable(cfg, out, record)
    if rank == 0:  # one process writes the output folder; the others wait for it
        out.mkdir(parents=True, exist_ok=True)
        save_config(cfg, out / EVAL_CONFIG)
        (out / PROVENANCE).write_text(json.dumps(record, indent=2) + "\n")
        if cfg.resume:
            fold_shards(out)  # lines of shards that an interrupted data-parallel run finished
            regrade_saved(cfg, out, items)
        else:
            discard_shards(out)
            (out / PREDICTIONS).write_text("")
    distributed.barrier()
    if world > 1:  # each rank generates its share into shards/<rank>/; rank 0 folds them in and scores all
        evaluate_rank_share(cfg, out, items, backend, rank, world)
        if rank != 0:
            distributed.finish()
            return {}
        cfg = load_config(EvalConfig, {**to_dict(cfg), "resume": True})
    pending = pending_ids(out / PREDICTIONS, [item["id"] for item in items], cfg.style, cfg.k) if cfg.resume \
        else items
    if cfg.data_parallel > 1 and len(pending) > 1:
        if not cfg.resume:  # start over: no earlier line may be kept
            (out / PREDICTIONS).write_text("")
        print(f"[eval] {len(pending)} items over {cfg.data_parallel} processes", file=sys.stderr)
        todo = set(pending if cfg.resume else [item["id"] for item in items])
        try:
            run_shards({**to_dict(cfg), "seeds": None}, out, [item for item in items if item["id"] in todo],
                       cfg.data_parallel)
        except ShardError as err:
            raise EvalError(f"data_parallel={cfg.data_parallel}: {err}; finished items are kept, rerun to "
                            "continue") from err
        cfg = load_config(EvalConfig, {**to_dict(cfg), "resume": True})  # the parent now only reads them back
        pending = pending_ids(out / PREDICTIONS, [item["id"] for item in items], cfg.style, cfg.k)
    # 4. the model, when something is left to generate ----------------------------------------
    if pending:
        if "model" not in shared:
            shared["model"] = load_for_eval(cfg, backend)
        model, tokenizer, engine = shared["model"]
        print(f"[eval] {cfg.model}{' + ' + cfg.adapter if cfg.adapter else ''} on {len(items)} "
              f"{items[0]['benchmark']} items, style={cfg.style}, k={cfg.k}; backend {backend} ({backend_reason}), "
              f"engine {engine}", file=sys.stderr)
        print("[eval] decoding: greedy" + (f" + {cfg.k} samples per item at temperature {cfg.temperature}, top_p "
                                            f"{cfg.top_p} (avg@{cfg.k}, pass@k, maj@{cfg.k})" if cfg.k > 1 else " only")
              + f"; max_new_tokens {cfg.max_new_tokens}; seed {cfg.seed}; template {cfg.template}", file=sys.stderr)
    else:
        model = tokenizer = None
        engine = "none: every item was already in predictions.jsonl"
        print(f"[eval] all {len(items)} items are in {out / PREDICTIONS}: nothing to generate", file=sys.stderr)
    # 5. generate, execute, grade -------------------------------------------------------------
    _, metrics = evaluate_items(
        model, tokenizer, items, cfg.style, template=cfg.template, pot_hint=cfg.pot_hint, k=cfg.k,
        temperature=cfg.temperature, top_p=cfg.top_p, max_new_tokens=cfg.max_new_tokens,
        batch_size=cfg.batch_size, stop=cfg.stop, program_timeout_s=cfg.program_timeout_s, workers=cfg.workers,
        grade_timeout_s=cfg.grade_timeout_s, seed=cfg.seed, max_tool_calls=cfg.max_tool_calls, backend=backend,
        predictions_path=out / PREDICTIONS, resume=cfg.resume, save_every=cfg.save_every, progress=True)
    passes = {cfg.seed: metrics}
    for seed in (cfg.seeds or [])[1:]:
        print(f"[eval] seed {seed}: maj@{cfg.k} pass {len(passes) + 1} of {len(cfg.seeds)}", file=sys.stderr)
        passes[seed] = evaluate(seed_config(cfg, seed), _shared=shared)
    # 6. metrics, chart, table ----------------------------------------------------------------
    write_in_item_order(out / PREDICTIONS, [item["id"] for item in items])  # shards and resumes append out of order
    metrics.update(model=cfg.model, adapter=cfg.adapter, config_hash=config_hash(cfg), engine=engine,
                   backend=backend, provenance=record, seconds=round(time.perf_counter() - started, 3))
    if cfg.style in ("pot", "hybrid", "tir"):  # which sandbox layers ran the programs (jail, or the fallback)
        from arithmo.sandbox import sandbox_layers

        metrics["sandbox"] = sandbox_layers()
    if cfg.seeds:
        metrics["maj_k_seeds"] = {**seed_spread(passes), "folders": [str(out)] + [
            seed_config(cfg, seed).output_dir for seed in cfg.seeds[1:]]}
    (out / METRICS).write_text(json.dumps(metrics, indent=2, ensure_ascii=False) + "\n")
    if cfg.plot:
        plot_accuracy(metrics, out / CHART)
    print(format_table(metrics))
    print(f"[eval] wrote {out}/predictions.jsonl, metrics.json{', accuracy.png' if cfg.plot else ''}")
    distributed.finish()  # a multi-process launch: the other ranks wait here for the scores to be written
    return metrics


resolve_preset = preset_resolver(PRESETS)  # a YAML path or a preset name (without .yaml)


def main(argv: list[str] | None = None) -> int:
    def errors():
        from arithmo.model import ModelError  # imports torch: after --help has had its chance to exit

        return EvalError, DataError, ModelError, BackendError

    return recipe_main(argv, prog=prog_name("eval"), cls=EvalConfig, run=evaluate, errors=errors,
                       presets=PRESETS, example="gsm8k_cot",
                       description="Score a model (and adapter) on a math benchmark.")


if __name__ == "__main__":
    sys.exit(main())
