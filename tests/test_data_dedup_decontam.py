"""Dedup (exact and near) and decontamination, the latter against real GSM8K and MATH test rows."""

import json

import pytest

from arithmo.data.decontaminate import contaminated_by, load_benchmark
from arithmo.data.dedup import exact_duplicates, near_duplicates
from arithmo.data.recipe import BenchmarkConfig
from arithmo.data.textsim import minhash_signatures, normalize_text

from _shared import shared_file

N = normalize_text
Q = "Janet has 16 eggs a day. She eats three for breakfast and bakes muffins with four. How many are left to sell?"
S = "Janet uses 3 + 4 = 7 eggs, so 16 - 7 = 9 are left.\nThe answer is: 9"


def test_exact_duplicates_keep_the_first_and_compare_normalised_text():
    questions = [Q, Q.upper(), Q, "Another question?"]
    solutions = [S, S, S.replace("9 are left", "nine are left"), S]
    # row 1 repeats row 0 up to case; row 2 has the same question but another solution: kept
    assert exact_duplicates([N(q) for q in questions], [N(s) for s in solutions]).tolist() == [False, True, False, False]


def test_minhash_estimates_jaccard():
    base = " ".join(f"w{i}" for i in range(200))
    half = " ".join(f"w{i}" for i in range(100)) + " " + " ".join(f"x{i}" for i in range(100))
    sig = minhash_signatures([base, half, base], num_perm=256, workers=1)
    # true Jaccard of the 3-gram sets: 98 shared of 198 + 198 - 98 = 298 -> 0.33
    assert abs((sig[0] == sig[1]).mean() - 98 / 298) < 0.1
    assert (sig[0] == sig[2]).all()
    # forked workers give the same signatures as one process
    assert (minhash_signatures([base, half] * 30_000, 64, workers=2)[-2:] == minhash_signatures([base, half], 64, workers=1)).all()


def test_near_duplicates_need_similar_question_and_solution():
    near_q = Q.replace("How many are left to sell?", "How many are left to sell ?")  # one token changed: same words
    reworded_q = Q.replace("muffins", "cakes")                                           # 3-gram Jaccard 16/22 = 0.73 < 0.85
    other_solution = "She keeps 16 eggs minus the three she eats and the four for muffins: 9.\nThe answer is: 9"
    questions = [Q, near_q, near_q, reworded_q, "A different problem about trains leaving a station at noon?"]
    solutions = [S, S + " ", other_solution, S, S]
    mask = near_duplicates([N(q) for q in questions], [N(s) for s in solutions], threshold=0.85,
                           solution_threshold=0.7, num_perm=128, bands=16)
    # 1: same question, same solution -> dropped; 2: same question, another solution -> kept (AnsAug);
    # 3: question below the threshold -> kept; 4: unrelated question -> kept
    assert mask.tolist() == [False, True, False, False, False]


def test_near_duplicate_priority_is_row_order():
    mask = near_duplicates([N(Q), N(Q)], [N(S), N(S)], 0.85, 0.7)
    assert mask.tolist() == [False, True]


@pytest.fixture(scope="module")
def benchmarks():
    gsm = load_benchmark(BenchmarkConfig(name="gsm8k_test", path=str(shared_file("gsm8k/test_first300.jsonl"))), "", 10)
    math = load_benchmark(BenchmarkConfig(name="math_test", path=str(shared_file("math/test_dev500.jsonl")),
                                          question_field="problem"), "", 10)
    return [gsm, math]


def test_real_test_questions_are_caught_and_train_questions_are_not(benchmarks):
    gsm_test = [json.loads(l) for l in open(shared_file("gsm8k/test_first300.jsonl"))]
    math_test = [json.loads(l) for l in open(shared_file("math/test_dev500.jsonl"))]
    gsm_train = [json.loads(l)["question"] for l in open(shared_file("gsm8k/train_first500.jsonl"))]
    # MetaMath's eval copy of GSM8K test (field `query`): every row is the same problem
    metamath = [json.loads(l)["query"] for l in open(shared_file("metamath_eval/GSM8K_test_first300.jsonl"))]
    verdict = contaminated_by([N(q) for q in metamath], benchmarks, 10)
    assert verdict.count("gsm8k_test") == 300
    verdict = contaminated_by([N(r["problem"]) for r in math_test], benchmarks, 10)
    assert verdict.count("math_test") == 500
    # GSM8K train and test are disjoint problems: no false positive at n=10
    assert contaminated_by([N(q) for q in gsm_train], benchmarks, 10) == [None] * 500
    assert len(gsm_test) == 300


def test_rephrased_and_embedded_test_questions_are_caught(benchmarks):
    gsm_q = json.loads(open(shared_file("gsm8k/test_first300.jsonl")).readline())["question"]
    words = gsm_q.split()
    rows = [
        "Here is a puzzle. " + gsm_q + " Answer carefully.",                        # embedded verbatim
        " ".join(words[:12]) + " (and then something else entirely happens)",       # a 12-word run survives
        gsm_q.upper().replace(",", " ,"),                                           # case and punctuation
        " ".join(w for i, w in enumerate(words) if i % 6 != 5),                     # every 6th word dropped: runs < 10
    ]
    verdict = contaminated_by([N(r) for r in rows], benchmarks, 10)
    assert verdict == ["gsm8k_test", "gsm8k_test", "gsm8k_test", None]


def test_short_benchmark_question_matches_exactly(tmp_path):
    path = tmp_path / "short.jsonl"
    path.write_text(json.dumps({"problem": "Compute $\\dbinom{8}{4}$."}) + "\n")
    bench = load_benchmark(BenchmarkConfig(name="short", path=str(path)), "", 10)
    assert len(bench.ngrams) == 0  # 4 words: no 10-gram, only the exact match can catch it
    verdict = contaminated_by([N("Compute $\\dbinom{8}{4}$."), N("Compute $\\dbinom{8}{5}$.")], [bench], 10)
    assert verdict == ["short", None]


def test_missing_required_benchmark_fails_and_optional_is_recorded(tmp_path):
    from arithmo.io import DataError

    with pytest.raises(DataError, match="decontaminate.benchmarks\\[gone\\].*file not found"):
        load_benchmark(BenchmarkConfig(name="gone", path=str(tmp_path / "no.jsonl")), "", 10)
    skipped = load_benchmark(BenchmarkConfig(name="gone", path=str(tmp_path / "no.jsonl"), required=False), "", 10)
    assert isinstance(skipped, str) and "file not found" in skipped


def _reference_near_duplicates(questions, solutions, threshold, solution_threshold, num_perm, bands, seed):
    """The plain pass over every row (the rule before issue 14's speed-up): what near_duplicates must equal."""
    import numpy as np

    from arithmo.data.textsim import band_keys

    q_sig = minhash_signatures(questions, num_perm, seed=seed, workers=1)
    s_sig = minhash_signatures(solutions, max(num_perm // 2, 16), seed=seed + 1, workers=1)
    keys = band_keys(q_sig, bands)
    buckets, drop = {}, np.zeros(len(questions), dtype=bool)
    for i in range(len(questions)):
        cands = sorted({j for key in keys[i].tolist() for j in buckets.get(key, [])})
        if cands and np.any(((q_sig[cands] == q_sig[i]).mean(axis=1) >= threshold)
                            & ((s_sig[cands] == s_sig[i]).mean(axis=1) >= solution_threshold)):
            drop[i] = True
            continue
        for key in keys[i].tolist():
            buckets.setdefault(key, []).append(i)
    return drop


def test_near_duplicates_equal_the_plain_pass_on_planted_repeats():
    import random

    rng = random.Random(3)
    vocab = [f"w{i}" for i in range(40)] + [str(i) for i in range(30)]
    questions, solutions = [], []
    for i in range(3000):
        if i % 4 and questions:                      # AnsAug: the previous question, another solution
            q = questions[-1]
        elif i % 7 == 0 and questions:               # a re-worded earlier question
            words = questions[rng.randrange(len(questions))].split()
            words[rng.randrange(len(words))] = "zz"
            q = " ".join(words)
        else:
            q = " ".join(rng.choice(vocab) for _ in range(rng.randint(8, 30)))
        s = solutions[-1] if (i % 11 == 0 and solutions) else " ".join(rng.choice(vocab) for _ in range(40))
        questions.append(q)
        solutions.append(s)
    for threshold in (0.85, 0.6):
        got = near_duplicates(questions, solutions, threshold, 0.7, 64, 16, seed=5)
        want = _reference_near_duplicates(questions, solutions, threshold, 0.7, 64, 16, 5)
        assert got.sum() > 20 and (got == want).all()


def test_minhash_signature_is_the_multiply_shift_formula():
    import numpy as np

    from arithmo.data.textsim import minhash_params, ngram_hashes, word_arrays

    texts = ["a b c d e", "x y", "", "a b c d e", "one two three four five six seven"]
    sig = minhash_signatures(texts, 32, seed=9, workers=1)
    a, b = minhash_params(32, 9)
    for i, text in enumerate(texts):
        words, offsets = word_arrays([text])
        hashes, _ = ngram_hashes(words, offsets, 3, short_docs=True)
        if len(hashes) == 0:
            assert (sig[i] == 0xFFFFFFFF).all()  # no words: matches only other empty texts
            continue
        with np.errstate(over="ignore"):
            want = ((hashes[:, None] * a[None, :] + b[None, :]) >> np.uint64(32)).min(axis=0)
        assert (sig[i] == want.astype(np.uint32)).all()
