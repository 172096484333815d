"""The streaming build (issue 30) writes the bytes the all-in-memory build wrote.

Each case builds a recipe and compares the sha256 of every output file with the digest the build at 8b27c2b
(before the build streamed) wrote for the same inputs and seed. Pitfalls each case guards:
- tiny / its variants: the shuffled split (random.Random(seed).shuffle over an int64 array must give the list's
  order), the lowercasing share, near-dedup thresholds that change which rows are witnesses;
- fixtures: every adapter's drop reason and the manifest's accounting;
- mix: exact repeats, AnsAug questions with several solutions (one node, many rows), re-worded near
  duplicates (nodes joined by band keys), all through partitioned digests and components.
The manifest is compared without `git_sha` (the commit differs) and with the repository and temporary folders
written as <repo>/<tmp> (paths are recorded). A change that moves outputs on purpose regenerates the table:
`python tests/test_data_identity.py` prints it (and says why in the commit).
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import pytest

from _shared import REPO

TINY = REPO / "data_recipes" / "tiny"
FIXTURES = REPO / "data_recipes" / "fixtures"

_TINY_RECIPE = f"""name: tiny
seed: 42
sources:
  - {{name: metamathqa, adapter: metamathqa, path: {TINY}/metamathqa.jsonl}}
  - {{name: mathinstruct, adapter: mathinstruct, path: {TINY}/mathinstruct.jsonl}}
  - {{name: lila_ood, adapter: lila, path: {TINY}/lila.jsonl, splits: [train]}}
decontaminate:
  benchmarks:
    - {{name: tiny_heldout, benchmark: file, path: {TINY}/heldout.jsonl}}
val_size: 40
"""
_MIX_RECIPE = """name: mix
seed: 42
sources:
  - {{name: metamathqa, adapter: metamathqa, path: {inputs}/metamathqa.jsonl}}
  - {{name: mathinstruct, adapter: mathinstruct, path: {inputs}/mathinstruct.jsonl}}
  - {{name: lila_ood, adapter: lila, path: {inputs}/lila.jsonl, splits: [train]}}
decontaminate:
  benchmarks:
    - {{name: tiny_heldout, benchmark: file, path: """ + str(TINY) + """/heldout.jsonl}}
val_size: 300
"""

# (case, recipe text or file, overrides)
CASES = [
    ("tiny", _TINY_RECIPE, []),
    ("tiny_seed7", _TINY_RECIPE, ["seed=7"]),
    ("tiny_nodecontam_nonear", _TINY_RECIPE, ["decontaminate.enabled=false", "dedup.near=false"]),
    ("tiny_near095_share", _TINY_RECIPE, ["decontaminate.near_threshold=0.95", "val_size=0.2",
                                          "transforms.lowercase_share=1.0"]),
    ("tiny_loose_dedup", _TINY_RECIPE, ["dedup.threshold=0.6", "dedup.solution_threshold=0.3"]),
    ("fixtures", FIXTURES / "recipe.yaml", []),
    ("longcot_mix", FIXTURES / "longcot_mix.yaml", []),
    ("mix", _MIX_RECIPE, []),
    ("mix_loose", _MIX_RECIPE, ["dedup.threshold=0.7", "dedup.solution_threshold=0.5", "seed=3"]),
]

# sha256 of each output file, written by the build at 8b27c2b (python tests/test_data_identity.py with that tree)
GOLDEN = {
    "fixtures": {
        "contamination.md": "10d6a980946660197f85f1c293dd629cbbbaa1c22236c6a0760dd216394457c1",
        "manifest.json": "f5c5739ff8fa13794e701b9b830a0cea4a3a79c0e8d199b4c1d4817b27462013",
        "train.jsonl": "419169593f6c7c30e20db9669d65cc05426238ea0fc73cc44e2198fde07503a3",
        "val.jsonl": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    },
    "longcot_mix": {
        "contamination.md": "b5c1c5b6c80dd3e0b1aa1ae332434c1b560fc64bf67a2b47a16c993c6679b02e",
        "manifest.json": "e99c48b5d4ce1051d136c3b3c7b0960895c7c60d7256f118f204ec6a3f9d36e2",
        "train.jsonl": "c66f89577d76c9f7397dce870bb9538c4ca7c8d8596225614961f0e76b561d6f",
        "val.jsonl": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    },
    "mix": {
        "contamination.md": "f49c1df8836218256d6d4f9d367c92074b166eb5dec632f3846af382d1e5fb72",
        "manifest.json": "72031f632da1d9dcddd72cecabb7ea9dd0d2877f8916d503e4c1e810fcb56088",
        "train.jsonl": "2d7082d3ea9907fe597cfb507d8cef842bcd94abe4717c47ceead21b023816b2",
        "val.jsonl": "5d20cd9978a2537c4dc44f653d85d91648af1db759189a3f0da2bf64add375c8",
    },
    "mix_loose": {
        "contamination.md": "f49c1df8836218256d6d4f9d367c92074b166eb5dec632f3846af382d1e5fb72",
        "manifest.json": "4d206afd03284e0111b8406a41407bf0cef3e7d75d1daccdf01eae14ce13e392",
        "train.jsonl": "3af60a6a76597451f4d7e1455f1a91db4eef553ef6fe170607b7d0fedd0910b9",
        "val.jsonl": "a15a68a0b1a77a1e91338dc72ca99eadb77738d2d09eb6ba4b0fb300180a0711",
    },
    "tiny": {
        "contamination.md": "c8b2e7320240ed29c51ba1eefcabd8d8ff2504aa10bc5b10ad0766bec49c6897",
        "manifest.json": "5d198a9e6da6c1e61549e26a84da7f96575f405f76afecf1869f9f7a992e3275",
        "train.jsonl": "af801bc2f45a2196c957ec012518b1d66af2260cea8513c2de30404076560c4c",
        "val.jsonl": "9975171095a087dc8bae9d73683c2b3881335295b43c3156ae61b4496e6432f6",
    },
    "tiny_loose_dedup": {
        "contamination.md": "c8b2e7320240ed29c51ba1eefcabd8d8ff2504aa10bc5b10ad0766bec49c6897",
        "manifest.json": "cf1467159c93f1c344f5a72d8a490d44c8a07beb4544e07e65b8adba8cf90454",
        "train.jsonl": "88c8093a8465f31d159605e52218e3c9cfeef9775debb9c6f5c496c9ff9c328b",
        "val.jsonl": "c19c28d36795e6ba3f33899affc736ebd3ea2e17ffb68068d529a0c5809ff5b7",
    },
    "tiny_near095_share": {
        "contamination.md": "e2379ba6f91c3f3c260c3a4215e7e5ba574d8a4932098a7720cf6787b2d8a2db",
        "manifest.json": "e4606bb417a1f9182888d58b3794651c4b509c69e9fd1608d0f57452bfec4753",
        "train.jsonl": "68029db0dc4264b65ed001db5d99bed0f6f572d67c85365d49a15c1186e632fd",
        "val.jsonl": "0640141d117c0a8b088060ca7d4f933535198105be693c3d71b9ce333929f471",
    },
    "tiny_nodecontam_nonear": {
        "contamination.md": "d3ff91a9a9ccb38e5641a938acdde08661d2350f82e70a5369bffa070011145c",
        "manifest.json": "e2904486084437f50cefce7abdb2fb99608f5a8f3525341f2d1981f0bf2f9b27",
        "train.jsonl": "197d31aba45ad14f308388edb8d12bff476f2b0e837cbc870ba2e576c644790a",
        "val.jsonl": "2d3428bffbfc85c922d4322879cb60e4d58530f4d3d86b5138e7b616f4d13e1e",
    },
    "tiny_seed7": {
        "contamination.md": "c8b2e7320240ed29c51ba1eefcabd8d8ff2504aa10bc5b10ad0766bec49c6897",
        "manifest.json": "9334c14d02a12e580fb6716649ce19de704d94f52b7b48effdfaf0a44774f118",
        "train.jsonl": "c3280d67085e2eb296a97104a84048358ecf0f3ef29a80f9c15b2ff0d0f1fcec",
        "val.jsonl": "c83b632c89c167c41d74fb44779406401310baecaacd4455a45b529c81b06ed0",
    },
}


def _inputs(folder: Path) -> Path:
    """The bench's mix shape (bench/bench_data.py) at 6,000 rows, without planted test questions."""
    sys.path.insert(0, str(REPO / "bench"))
    try:
        import bench_data
    finally:
        sys.path.remove(str(REPO / "bench"))
    bench_data.SHARED = folder / "absent"  # no rows of the real test sets: the same inputs on every machine
    bench_data.write_inputs(folder, 6000, seed=1)
    return folder


def _digests(case: str, recipe, overrides: list[str], tmp: Path) -> dict[str, str]:
    from arithmo.data.build import build_from_recipe

    if isinstance(recipe, str):
        text = recipe.format(inputs=_inputs(tmp / "inputs")) if "{inputs}" in recipe else recipe
        path = tmp / "recipe.yaml"
        path.write_text(text)
        recipe = path
    out = tmp / "out"
    build_from_recipe(recipe, out, overrides, log=lambda line: None)
    digests = {}
    for file in sorted(out.iterdir()):
        data = file.read_bytes()
        if file.name == "manifest.json":
            manifest = json.loads(data)
            manifest.pop("git_sha", None)
            manifest.get("sandbox", {}).pop("warm_up", None)  # a timing
            text = json.dumps(manifest, sort_keys=True).replace(str(tmp), "<tmp>").replace(str(REPO), "<repo>")
            data = text.encode()
        digests[file.name] = hashlib.sha256(data).hexdigest()
    return digests


@pytest.mark.parametrize("case,recipe,overrides", CASES, ids=[c[0] for c in CASES])
def test_outputs_are_the_bytes_the_in_memory_build_wrote(case, recipe, overrides, tmp_path):
    got = _digests(case, recipe, overrides, tmp_path)
    assert set(got) == {"train.jsonl", "val.jsonl", "manifest.json", "contamination.md"}  # no spill left behind
    assert got == GOLDEN[case]


if __name__ == "__main__":  # print the table (run with the tree whose outputs are the reference)
    import tempfile

    sys.path.insert(0, str(Path(__file__).parent))
    table = {}
    for case, recipe, overrides in CASES:
        with tempfile.TemporaryDirectory() as tmp:
            table[case] = _digests(case, recipe, overrides, Path(tmp))
    print(json.dumps(table, indent=4, sort_keys=True))


def test_chunk_and_batch_boundaries_change_no_byte(tmp_path, monkeypatch):
    """Chunks of 97 rows (decontamination, spills) and near-dedup batches of 5 rows: the same bytes as one chunk.
    Pitfall: a component split across batches, or a report pair kept per chunk instead of over all rows."""
    import importlib

    build_module = importlib.import_module("arithmo.data.build")  # the package re-exports build(), a function
    from arithmo.data import dedup

    monkeypatch.setattr(build_module, "CHUNK_ROWS", 97)
    original = dedup.StreamingNearDedup.__init__

    def small(self, *args, **kwargs):
        original(self, *args, **kwargs)
        self.batch_rows, self.parts = 5, 3

    monkeypatch.setattr(dedup.StreamingNearDedup, "__init__", small)
    assert _digests("tiny_loose_dedup", _TINY_RECIPE, ["dedup.threshold=0.6", "dedup.solution_threshold=0.3"],
                    tmp_path) == GOLDEN["tiny_loose_dedup"]


# (rows of (question, solution), expected near-duplicate mask): the streaming pass must equal the in-memory one.
NEAR_ROWS = [
    # one question with four solutions: the 2nd repeats the 1st (dropped), the 4th repeats the 3rd (dropped)
    ([("how many apples does she have left", "she has 5 apples left after giving 3 away"),
      ("how many apples does she have left", "she has 5 apples left after giving 3 away ok"),
      ("how many apples does she have left", "count the pears first then subtract the 7 eaten ones"),
      ("how many apples does she have left", "count the pears first then subtract the 7 eaten ones ok")],
     [False, True, False, True]),
    # must NOT drop: the same question with genuinely different solutions (AnsAug) stays
    ([("what is the total cost of the books", "add 12 and 30 to get 42 dollars"),
      ("what is the total cost of the books", "multiply the 6 books by 7 dollars each for 42")],
     [False, False]),
    # a re-worded question (another text, shared band keys) with the same solution: joined heads, dropped
    ([("tom buys 3 apples and 4 pears at the market on monday how many fruits does he buy in total today",
       "3 plus 4 is 7 fruits"),
      ("tom buys 3 apples and 4 pears at the market on monday how many fruits does he buy in total now",
       "3 plus 4 is 7 fruits")],
     [False, True]),
    # must NOT drop: a row whose only close row was itself dropped (witnesses are kept rows only). Solution word
    # 3-gram Jaccard: A-B 8/11, B-C 11/14 (both >= 0.7), A-C 8/14 (below)
    ([("a b c d e f g h i j k l", " ".join(f"w{i}" for i in range(10))),
      ("a b c d e f g h i j k l", " ".join(f"w{i}" for i in range(13))),
      ("a b c d e f g h i j k l", " ".join(f"w{i}" for i in range(16)))],
     [False, True, False]),
    # must NOT drop: different questions, same solution
    ([("the train leaves at 3 and arrives at 5", "the answer is 2 hours"),
      ("a recipe needs 4 eggs for 2 cakes how many for 6", "the answer is 2 hours")],
     [False, False]),
]


@pytest.mark.parametrize("rows,expected", NEAR_ROWS)
def test_streaming_near_dedup_equals_the_in_memory_pass(rows, expected, tmp_path):
    import numpy as np

    from arithmo.data.dedup import DIGEST_ROW, StreamingNearDedup, digest_records, near_duplicates
    from arithmo.data.spill import BlobSpill, Partitions, digests

    questions, solutions = [q for q, _ in rows], [s for _, s in rows]
    want = near_duplicates(questions, solutions, 0.7, 0.7, 64, 16, seed=5)
    parts = Partitions(tmp_path, "q", DIGEST_ROW, parts=2)
    parts.add(digest_records(digests([q.encode() for q in questions]), np.arange(len(rows))), np.arange(len(rows)))
    parts.close()
    blobs = BlobSpill(tmp_path / "s.bin")
    for s in solutions:
        blobs.append(s.encode())
    got = StreamingNearDedup(tmp_path, 0.7, 0.7, 64, 16, seed=5, parts=3, batch_rows=2).run(
        len(rows), np.ones(len(rows), dtype=bool), parts, lambda: iter(questions), blobs)
    assert got.tolist() == want.tolist() == expected
