"""Rejection-sampling fine-tuning (RFT): `python -m arithmo.rft`.

- `recipe.py`: RFTConfig and `rft(cfg)`, the recipe that reads top to bottom, and the CLI;
- `sampling.py`: sampling rounds (fixed, or difficulty-aware), samples.jsonl for resume, selection and accounting;
- `dedup.py`: when two correct solutions are one reasoning path (equation lists; normalised programs).
"""

from arithmo.rft.recipe import RFTConfig, main, resolve_preset, rft
from arithmo.rft.sampling import RFTError

__all__ = ["RFTConfig", "RFTError", "main", "resolve_preset", "rft"]
