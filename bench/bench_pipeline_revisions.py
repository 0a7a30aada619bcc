"""The co-signer pipeline bench on two revisions, interleaved in one session.

Runs ``bench/bench_cosigner_pipeline.py`` alternately with the server (and its three
co-signer processes) from another git revision's source tree and from this checkout,
``--rounds`` times each (old, new, old, new, ...), so that both meet the same machine
drift; the bench client, hardhat and the measurement are this checkout's in both. Prints
each run's burst rate and paced p50, then the medians side by side.

Run: ``.venv/bin/python bench/bench_pipeline_revisions.py --old REV [--rounds 3]
[--burst 100] [--paced 20]`` (about 3 minutes a run).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BENCH = REPO / "bench" / "bench_cosigner_pipeline.py"
KEYS = ("burst_signed_per_s", "burst_p50_ms", "paced_p50_ms", "paced_p99_ms")


def _run(code: Path, args: argparse.Namespace) -> dict[str, object]:
    command = [
        sys.executable, str(BENCH), "--code", str(code), "--burst", str(args.burst),
        "--bursts", "1", "--paced", str(args.paced), "--sustained", "2",
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.stderr.write(done.stdout[-2000:] + done.stderr[-4000:])
        raise SystemExit(f"the bench failed on {code}")
    summary: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--old", required=True, help="the git revision to compare against")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--burst", type=int, default=100)
    parser.add_argument("--paced", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="sv-bench-revision-") as tmp:
        old = Path(tmp) / "old"
        subprocess.run(
            ["git", "-C", str(REPO), "worktree", "add", "--detach", str(old), args.old],
            check=True,
            capture_output=True,
        )
        try:
            results: dict[str, list[dict[str, object]]] = {"old": [], "new": []}
            for round_ in range(args.rounds):
                for name, code in (("old", old), ("new", REPO)):
                    summary = _run(code, args)
                    results[name].append(summary)
                    figures = ", ".join(f"{k} {summary[k]}" for k in KEYS)
                    print(f"round {round_ + 1} {name}: {figures}", flush=True)
            print(f"medians over {args.rounds} rounds (old {args.old} / new):")
            for key in KEYS:
                old_median = statistics.median(float(str(r[key])) for r in results["old"])
                new_median = statistics.median(float(str(r[key])) for r in results["new"])
                print(f"  {key}: {old_median:.1f} / {new_median:.1f}")
        finally:
            subprocess.run(
                ["git", "-C", str(REPO), "worktree", "remove", "--force", str(old)],
                check=False,
                capture_output=True,
            )


if __name__ == "__main__":
    main()
