"""`python -m arithmo.data build RECIPE.yaml --out DIR [key=value ...]`"""

from __future__ import annotations

import argparse
import signal
import sys

from arithmo.config import SYSTEM_ERRORS, ConfigError, error_line, prog_name, recipe_epilog
from arithmo.data.build import build_from_recipe
from arithmo.data.recipe import DataConfig
from arithmo.io import DataError


class Terminated(KeyboardInterrupt):
    """SIGTERM (`kill`, `timeout`, a job scheduler) during a build: raised like Ctrl-C's KeyboardInterrupt, so
    the build's scratch folder (a TemporaryDirectory under --out) is removed on the way out instead of being left
    behind by the default action, which ends the process at once."""


def _raise_terminated(signum, frame):
    # Once: a second SIGTERM (`timeout` signals the process and then its group) must not interrupt the removal
    # of the scratch folder; SIGKILL still ends the process, and the next build sweeps what it left.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise Terminated()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=prog_name("data"), description="Build a training mix from a recipe.",
                                     epilog=recipe_epilog(DataConfig),
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    # The keys go on `build --help`, where a reader of the README looks for them (issue 31).
    build_cmd = commands.add_parser("build", help="build RECIPE into --out",
                                    description="Build RECIPE into --out. Scratch files go under --out too: leave "
                                                "about 3-4x the inputs' size free there (outputs included). Peak "
                                                "memory grows with the longest row (one 48 MB row: ~1.1 GB), not "
                                                "with how many rows are long.",
                                    epilog=recipe_epilog(DataConfig),
                                    formatter_class=argparse.RawDescriptionHelpFormatter)
    build_cmd.add_argument("recipe", help="recipe YAML, e.g. data_recipes/tiny.yaml")
    build_cmd.add_argument("--out", required=True, help="output folder for train.jsonl, val.jsonl, manifest.json")
    build_cmd.add_argument("overrides", nargs="*", help="key=value overrides")
    # Overrides may come before or after --out: argparse leaves the later ones unparsed.
    args, extra = parser.parse_known_args(argv)
    stray = [a for a in extra if "=" not in a]
    if stray:
        parser.error(f"unrecognized arguments: {' '.join(stray)} (overrides are key=value)")
    args.overrides = args.overrides + extra
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        manifest = build_from_recipe(args.recipe, args.out, args.overrides)
    except (ConfigError, DataError, *SYSTEM_ERRORS) as err:
        print(error_line(err), file=sys.stderr)
        return 2
    except Terminated:
        print(f"error: terminated (SIGTERM) before the build finished; scratch files removed, no file in {args.out} "
              f"is half-written; run the same command again", file=sys.stderr)
        return 143  # 128 + SIGTERM, the shell's status for a command ended by it
    except KeyboardInterrupt:  # each output file is written beside its name and renamed whole (build._write)
        print(f"error: interrupted (Ctrl-C) before the build finished; run the same command again (the same inputs "
              f"give the same bytes; no file in {args.out} is half-written)", file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)
    totals = manifest["totals"]
    print(f"[data] {totals['rows_in']:,} rows in -> {totals['rows_out']:,} out "
          f"(train {totals['train']:,}, val {totals['val']:,}); dropped {totals['dropped']}")
    for name, src in manifest["sources"].items():
        print(f"[data]   {name}: {src['rows_in']:,} in, {src['rows_out']:,} out {src['out_by_style']}, "
              f"dropped {src['dropped']}")
    print(f"[data] wrote {args.out}/train.jsonl, val.jsonl, manifest.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
