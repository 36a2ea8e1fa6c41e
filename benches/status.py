#!/usr/bin/env python3
"""`git status` after touching every protected file: git-sops against plain git.

A focused companion to bench.py's "status (paired)" row, quick enough to run after
every change to the clean path (issue 18). For each N it generates N YAML files
with bench.py's `gen_file`, commits them once in a git-sops repository (age key,
no KMS: status makes no key calls) and once in a plain one, then alternates runs:
touch every file (a new mtime each run, so git sees all of them stat-dirty and
cleans each one), time `git status --porcelain`, check that nothing is reported
dirty. Prints the medians and the ratio.

    python3 benches/status.py [--bin target/release/git-sops] [--n 200 1000] [--runs 9]

Standard library only; needs git and target/tools/bin/age-keygen.
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benches"))
from bench import SERVICES, gen_file  # noqa: E402


def run(cmd, cwd, env, capture=False):
    r = subprocess.run(cmd, cwd=cwd, env=env, check=True, capture_output=True)
    return r.stdout.decode() if capture else None


def make_repo(root: Path, n: int, tool: str, binary: Path, recipient: str, env) -> Path:
    repo = root / f"{tool}-{n}"
    (repo / "secrets").mkdir(parents=True)
    run(["git", "init", "-q"], repo, env)
    config = [
        ("filter.sops.process", f"{binary} filter-process"),
        ("filter.sops.required", "true"),
        ("diff.sops.textconv", f"{binary} textconv"),
    ] if tool == "git-sops" else []
    for k, v in config:
        run(["git", "config", k, v], repo, env)
    if tool == "git-sops":
        (repo / ".sops.yaml").write_text(
            f"creation_rules:\n  - path_regex: ^secrets/.*\\.yaml$\n    age: {recipient}\n"
        )
        (repo / ".gitattributes").write_text("secrets/** filter=sops diff=sops -text\n")
    rng = random.Random(n)
    for i in range(n):
        (repo / "secrets" / f"{rng.choice(SERVICES)}-{i:04d}.yaml").write_text(gen_file(rng, i))
    run(["git", "add", "-A"], repo, env)
    run(["git", "commit", "-q", "-m", "secrets"], repo, env)
    # Measured in a clone, as bench.py does (packed objects, files written by smudge).
    clone = root / f"{tool}-{n}-clone"
    cfg = [a for k, v in config for a in ("-c", f"{k}={v}")]
    run(["git", "clone", "-q", *cfg, str(repo), str(clone)], root, env)
    return clone


def cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def timed_status(repo: Path, env, stamp: float) -> tuple[float, float, int]:
    """Wall time, CPU time of git and everything it waited for, files dirty."""
    for f in (repo / "secrets").iterdir():
        os.utime(f, (stamp, stamp))
    c0, t0 = cpu(), time.perf_counter()
    out = run(["git", "status", "--porcelain"], repo, env, capture=True)
    t, c = time.perf_counter() - t0, cpu() - c0
    return t, c, len([l for l in out.splitlines() if l.strip()])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bin", type=Path, default=ROOT / "target" / "release" / "git-sops")
    ap.add_argument("--n", type=int, nargs="+", default=[200, 1000])
    ap.add_argument("--runs", type=int, default=9)
    ap.add_argument("--keep", action="store_true", help="keep the repositories (printed)")
    args = ap.parse_args()
    binary = args.bin.resolve()
    with tempfile.TemporaryDirectory(prefix="git-sops-status-") as tmp:
        root = Path(tmp)
        key = root / "age.txt"
        subprocess.run([str(ROOT / "target/tools/bin/age-keygen"), "-o", str(key)],
                       check=True, capture_output=True)
        recipient = next(l.split(": ")[1] for l in key.read_text().splitlines()
                         if l.startswith("# public key: "))
        env = dict(os.environ, HOME=str(root), GIT_CONFIG_NOSYSTEM="1",
                   SOPS_AGE_KEY_FILE=str(key), GIT_AUTHOR_NAME="b", GIT_AUTHOR_EMAIL="b@x",
                   GIT_COMMITTER_NAME="b", GIT_COMMITTER_EMAIL="b@x")
        for n in args.n:
            repos = {t: make_repo(root, n, t, binary, recipient, env) for t in ("plain", "git-sops")}
            times: dict[str, list[float]] = {"plain": [], "git-sops": []}
            cpus: dict[str, list[float]] = {"plain": [], "git-sops": []}
            for r in range(args.runs + 1):
                for tool, repo in repos.items():
                    t, c, dirty = timed_status(repo, env, time.time() - 1000 + r)
                    if dirty:
                        print(f"N={n} {tool}: {dirty} files reported dirty", file=sys.stderr)
                        return 1
                    if r:  # the first round warms caches
                        times[tool].append(t)
                        cpus[tool].append(c)
            p, s = (statistics.median(times[t]) for t in ("plain", "git-sops"))
            pc, sc = (statistics.median(cpus[t]) for t in ("plain", "git-sops"))
            print(f"N={n:5d}  wall: plain {p * 1000:6.1f} ms  git-sops {s * 1000:6.1f} ms  "
                  f"ratio {s / p:5.2f}x   cpu: plain {pc * 1000:6.1f} ms  git-sops "
                  f"{sc * 1000:6.1f} ms  ratio {sc / pc:5.2f}x  (median of {args.runs}, 0 dirty)")
            if args.keep:
                print(f"  kept: {repos['git-sops']}", file=sys.stderr)
        if args.keep:
            input("press enter to delete the repositories ")
    return 0


if __name__ == "__main__":
    sys.exit(main())
