#!/usr/bin/env python3
"""Adding N new KMS-encrypted files: `git add -A && git commit` of N protected YAML
files that have no previous version, in a fresh repository, with git-sops'
`filter-process` and moto behind a delaying proxy (the DelayProxy of bench.py, by
import). Prints the time of add+commit, the KMS requests by operation, the serial
floor (N x delay: one Encrypt round trip after another) and the speed-up over it,
and checks that `git status` is clean afterwards.

    python3 benches/new_files.py [--git-sops target/release/git-sops] [--n 100 1000]
                                 [--delay-ms 50] [--runs 3]

Needs target/tools (scripts/provision-tools) and a release build of git-sops.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("bench", ROOT / "benches" / "bench.py")
bench = importlib.util.module_from_spec(spec)
sys.modules["bench"] = bench
spec.loader.exec_module(bench)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--git-sops", default=str(ROOT / "target" / "release" / "git-sops"))
    ap.add_argument("--n", type=int, nargs="+", default=[100, 1000])
    ap.add_argument("--delay-ms", type=float, default=50.0)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    git_sops = Path(args.git_sops).resolve()
    work = Path(tempfile.mkdtemp(prefix="new-files-bench-"))
    moto, port = bench.start_moto(work)
    try:
        proxy = bench.DelayProxy(port, 0.0)
        arn = bench.create_kms_key(port)
        home = work / "home"
        home.mkdir()
        (home / ".gitconfig").write_text(
            "[user]\n\tname = Bench\n\temail = bench@example.com\n"
            "[init]\n\tdefaultBranch = main\n[core]\n\tautocrlf = false\n[gc]\n\tauto = 0\n"
        )
        env = {
            "PATH": f"{bench.TOOLS / 'bin'}:{os.environ.get('PATH', '')}",
            "HOME": str(home),
            "GIT_CONFIG_NOSYSTEM": "1",
            "LANG": "C.UTF-8",
            "AWS_ENDPOINT_URL": proxy.endpoint,
            "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": "test",
            "AWS_REGION": "us-east-1",
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_CONFIG_FILE": str(home / "aws-config"),
            "AWS_SHARED_CREDENTIALS_FILE": str(home / "aws-credentials"),
            "NO_PROXY": "127.0.0.1,localhost",
        }

        def run(cmd, cwd, capture=False):
            r = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
            if r.returncode != 0:
                raise SystemExit(f"failed: {cmd}\n{r.stderr}")
            return r.stdout

        print(f"git-sops: {git_sops}\nKMS delay: {args.delay_ms:.0f} ms per request\n")
        print(f"{'N':>6} {'add+commit':>11} {'floor':>7} {'speed-up':>9} {'Encrypt':>8} {'other':>6}  dirty")
        for n in args.n:
            rng = random.Random(n)
            files = work / f"data-{n}"
            files.mkdir()
            for i in range(n):
                (files / f"{rng.choice(bench.SERVICES)}-{i:04d}.yaml").write_text(bench.gen_file(rng, i))
            samples, encrypts, others, dirty = [], [], [], []
            for r in range(args.runs):
                repo = work / f"repo-{n}-{r}"
                repo.mkdir()
                run(["git", "init", "-q"], repo)
                run(["git", "config", "filter.sops.process", f"{git_sops} filter-process"], repo)
                run(["git", "config", "filter.sops.required", "true"], repo)
                (repo / ".sops.yaml").write_text(
                    f"creation_rules:\n  - path_regex: ^secrets/.*\\.yaml$\n    kms: {arn}\n"
                )
                (repo / ".gitattributes").write_text("secrets/** filter=sops diff=sops -text\n")
                shutil.copytree(files, repo / "secrets")
                proxy.delay_s = args.delay_ms / 1000.0
                proxy.reset()
                start = time.perf_counter()
                run(["git", "add", "-A"], repo)
                run(["git", "commit", "-q", "-m", "add"], repo)
                samples.append(time.perf_counter() - start)
                calls = proxy.snapshot()
                encrypts.append(calls.get("Encrypt", 0))
                others.append(sum(v for k, v in calls.items() if k != "Encrypt"))
                proxy.delay_s = 0.0
                dirty.append(len(run(["git", "status", "--porcelain"], repo, capture=True).splitlines()))
                stored = run(["git", "grep", "-c", "sops:", "HEAD", "--", "secrets"], repo, capture=True)
                if len(stored.splitlines()) != n:
                    raise SystemExit(f"expected {n} SOPS blobs, found {len(stored.splitlines())}")
                shutil.rmtree(repo)
            t = statistics.median(samples)
            floor = n * args.delay_ms / 1000.0
            print(
                f"{n:>6} {t:>10.2f}s {floor:>6.1f}s {floor / t:>8.1f}x {max(encrypts):>8} {max(others):>6}  {max(dirty)}"
                f"   (runs: {', '.join(f'{s:.2f}' for s in samples)}; Encrypt: {encrypts})"
            )
    finally:
        moto.kill()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
