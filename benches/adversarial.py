#!/usr/bin/env python3
"""git-sops on hostile input: time and peak memory on adversarial blobs of about 10 MB.

Smudge runs in every clone and `git sops check --history` on servers, so no blob may
crash or stall them. This script generates one blob of each hostile kind and runs,
for each, with a wall-clock limit:

  encrypt   `git-sops encrypt --age R FILE`
  clean     `git add FILE` in a fresh repository whose .gitattributes gives it
            filter=sops (the long-running filter process; its own peak RSS is taken)
  smudge    `git checkout` of a commit holding the blob (stored with the filter off,
            as a hostile push would) in a clone with the filter on and a key
  check     `git sops check --staged` with the blob staged as it is (no filter)
  sops      `sops encrypt --age R FILE` (sops 3.11) for reference

Each row gives the exit code, wall time, peak RSS (max RSS of the git-sops process;
for clean and smudge the filter process itself) and the first line of the error.
"Bounded" means every run ends within its limit with a clear error or a result.

Run it through `scripts/bench --adversarial` (builds git-sops in release and
provisions sops), or directly once target/release/git-sops exists:

    python3 benches/adversarial.py [--size-mb 10] [--out benches/ADVERSARIAL.md]

Python 3.11 standard library only.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GIT_SOPS = ROOT / "target" / "release" / "git-sops"
SOPS = ROOT / "target" / "tools" / "bin" / "sops"
TIME = "/usr/bin/time"

# The public sops test key (published in getsops/sops), so nothing here is secret.
IDENTITY = "AGE-SECRET-KEY-1G0Q5K9TV4REQ3ZSQRMTMG8NSWQGYT0T7TZ33RAZEE0GZYVZN0APSU24RK7"
RECIPIENT = "age1lzd99uklcjnc0e7d860axevet2cz99ce9pq6tzuzd05l5nr28ams36nvun"


# ----------------------------------------------------------------------------- inputs
def repeat_to(size: int, unit: str) -> str:
    return unit * max(1, size // len(unit))


def gen_inputs(size: int) -> list[tuple[str, str, str, str]]:
    """(name, file name, what it is, content). `size` is the target in bytes."""
    out = []

    def add(name: str, file: str, what: str, text: str) -> None:
        out.append((name, file, what, text))

    # Depth. go-yaml (so sops) stops at 10,000 levels; the same limit here.
    add("yaml-deep-at-limit", "deep.yaml", "`- ` nested 9,999 deep under a key (the deepest sops reads)",
        "a:\n  " + "- " * 9999 + "x\n")
    add("yaml-deep-block", "deep.yaml", "`- ` repeated to the size: block nesting far past the limit",
        "a:\n  " + repeat_to(size, "- ") + "x\n")
    add("yaml-deep-flow", "deep.yaml", "`[` repeated to the size",
        "a: " + repeat_to(size, "[") + "\n")
    add("yaml-deep-maps", "deep.yaml", "block maps nested 1 space deeper per line (~3,000 levels)",
        "".join(" " * i + f"k{i}:\n" for i in range(int((2 * size) ** 0.5) - 10)) + " " * 3000 + "v: x\n")
    add("json-deep", "deep.json", "`[` repeated to the size", '{"a": ' + repeat_to(size, "[") + "\n")
    add("json-deep-at-limit", "deep.json", "arrays nested 500 deep (JSON parser limit 512)",
        '{"a": ' + "[" * 500 + "1" + "]" * 500 + "}\n")
    # Wide.
    n = size // 20
    add("yaml-flat-keys", "flat.yaml", f"{n:,} keys in one map",
        "".join(f"key_{i:07d}: value_{i:07d}\n" for i in range(n)))
    add("json-flat-keys", "flat.json", f"{n:,} keys in one object",
        "{\n" + ",\n".join(f'  "key_{i:07d}": "value_{i:07d}"' for i in range(n)) + "\n}\n")
    add("yaml-flow-one-line", "line.yaml", f"{n:,} pairs in one flow map on one line",
        "a: {" + ", ".join(f"k{i}: v{i}" for i in range(n)) + "}\n")
    add("dotenv-flat-keys", "flat.env", f"{n:,} keys", "".join(f"KEY_{i:07d}=value_{i:07d}\n" for i in range(n)))
    add("ini-flat-keys", "flat.ini", f"{n:,} keys in one section",
        "[s]\n" + "".join(f"key_{i:07d} = value_{i:07d}\n" for i in range(n)))
    m = size // 40
    add("dotenv-metadata-keys", "meta.env", f"{m:,} flattened `sops_` metadata keys",
        "A=1\n" + "".join(f"sops_x__map_k{i:07d}=v\n" for i in range(m)) + "sops_version=3.11.0\n")
    # Comments.
    c = min(100_000, size // 20)
    add("yaml-flow-comments", "comments.yaml", f"{c:,} flow items, each with a comment",
        "a: [\n" + "".join(f"  x{i}, # c{i}\n" for i in range(c)) + "  end]\n")
    add("yaml-own-line-comments", "comments.yaml", f"{c:,} own-line comments between keys at varying columns",
        "".join(f"{' ' * (i % 3)}# c{i}\nk{i}: v\n" for i in range(c)))
    add("yaml-dedented-comment-groups", "comments.yaml",
        "5,000 nested lists, then comment lines alternating columns 0 and 1",
        "a:\n  " + "- " * 5000 + "x\n" + repeat_to(size - 10_020, "# c\n # d\n"))
    # One huge value.
    add("yaml-huge-value", "huge.yaml", "one string value of the whole size", "a: " + repeat_to(size, "x") + "\n")
    add("json-huge-value", "huge.json", "one string value of the whole size", '{"a": "' + repeat_to(size, "x") + '"}\n')
    # Deep path with many leaves: AAD and selectors cost depth per leaf (inherent to sops' format).
    d = 1000
    leaves = max(1, (size - d * d // 2) // 3)
    add("yaml-deep-path-wide", "deepwide.yaml", f"maps nested {d} deep holding a flow list of {leaves:,} items",
        "".join(" " * i + f"k{i}:\n" for i in range(d)) + " " * d + "v: [" + ",".join("1" for _ in range(leaves)) + "]\n")
    return out


def alias_bomb(levels: int) -> str:
    """The billion-laughs .sops.yaml: each anchor aliases the previous one ten times."""
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, levels):
        lines.append(f"a{i}: &a{i} [" + ",".join(f"*a{i - 1}" for _ in range(10)) + "]")
    lines.append(f"creation_rules:\n  - path_regex: .*\n    age: {RECIPIENT}\n    x: *a{levels - 1}")
    return "\n".join(lines) + "\n"


def alias_heavy(size: int) -> str:
    """A large .sops.yaml that aliases as much as go-yaml's budget allows."""
    items = size // 16
    text = "shared: &s [" + ",".join(f"r{i:06d}" for i in range(items)) + "]\n"
    text += "copies: [" + ",".join("*s" for _ in range(8)) + "]\n"
    return text + f"creation_rules:\n  - path_regex: .*\n    age: {RECIPIENT}\n"


# ----------------------------------------------------------------------------- running
class Runner:
    def __init__(self, work: Path, limit: float, sops_limit: float):
        self.work = work
        self.limit = limit
        self.sops_limit = sops_limit
        self.env = dict(os.environ)
        home = work / "home"
        home.mkdir()
        key = home / "keys.txt"
        key.write_text(IDENTITY + "\n")
        self.env.update({
            "HOME": str(home),
            "GIT_CONFIG_GLOBAL": str(home / "gitconfig"),
            "GIT_CONFIG_NOSYSTEM": "1",
            "SOPS_AGE_KEY_FILE": str(key),
            "SOPS_DISABLE_VERSION_CHECK": "1",
            "GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "bench@example.invalid",
            "GIT_COMMITTER_NAME": "bench", "GIT_COMMITTER_EMAIL": "bench@example.invalid",
            "PATH": f"{GIT_SOPS.parent}:{os.environ.get('PATH', '')}",
        })
        (home / "gitconfig").write_text("[init]\n\tdefaultBranch = main\n[advice]\n\tdetachedHead = false\n")

    def git(self, args: list[str], cwd: Path, **kw) -> subprocess.CompletedProcess:
        return subprocess.run(["git", *args], cwd=cwd, env=self.env, capture_output=True, **kw)

    def timed(self, argv: list[str], cwd: Path, mem_file: Path | None = None,
              limit: float | None = None, want_stdout: bool = False) -> dict:
        """Run argv under /usr/bin/time within the limit. mem_file: where a wrapped
        filter writes its own peak RSS (then that is reported instead)."""
        own = self.work / "time.txt"
        own.unlink(missing_ok=True)
        if mem_file:
            mem_file.unlink(missing_ok=True)
        start = time.perf_counter()
        out_file = self.work / "stdout.txt"
        try:
            with open(out_file, "wb") as so:
                r = subprocess.run([TIME, "-f", "%M", "-o", str(own), *argv], cwd=cwd, env=self.env,
                                   stdout=so, stderr=subprocess.PIPE, timeout=limit or self.limit)
            code, err = r.returncode, r.stderr.decode(errors="replace")
        except subprocess.TimeoutExpired as e:
            code, err = None, (e.stderr or b"").decode(errors="replace")
        if want_stdout:
            # `check` prints its findings on stdout: the first one says what was found.
            with open(out_file, "rb") as f:
                err = f.read(4096).decode(errors="replace") + "\n" + err
        elapsed = time.perf_counter() - start
        rss = None
        src = mem_file if mem_file and mem_file.exists() else own
        try:
            rss = max(int(line.split()[-1]) for line in src.read_text().splitlines() if line.strip()
                      and line.split()[-1].isdigit())
        except (OSError, ValueError):
            pass
        return {"exit": code, "time": elapsed, "rss_kib": rss, "message": first_line(err)}

    def repo(self, name: str, attrs: str) -> Path:
        repo = self.work / name
        shutil.rmtree(repo, ignore_errors=True)
        repo.mkdir()
        self.git(["init", "-q"], repo)
        (repo / ".gitattributes").write_text(attrs)
        return repo

    def filter_config(self, repo: Path, mem: Path) -> None:
        cmd = f"{TIME} -f %M -a -o {mem} {GIT_SOPS} filter-process"
        for k, v in [("filter.sops.process", cmd), ("filter.sops.required", "true"),
                     ("filter.sops.clean", "false"), ("filter.sops.smudge", "false")]:
            self.git(["config", k, v], repo)

    # -- operations -------------------------------------------------------------------
    def encrypt(self, file: str, text: str, config: str | None) -> dict:
        d = self.work / "enc"
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir()
        (d / file).write_text(text)
        args = [str(GIT_SOPS), "encrypt"]
        if config is None:
            args += ["--age", RECIPIENT]
        else:
            (d / ".sops.yaml").write_text(config)
        return self.timed([*args, file], d)

    def sops_encrypt(self, file: str, text: str, config: str | None) -> dict:
        d = self.work / "enc"
        args = [str(SOPS), "encrypt"]
        if config is None:
            args += ["--age", RECIPIENT]
        return self.timed([*args, file], d, limit=self.sops_limit)

    def clean(self, file: str, text: str, config: str | None) -> dict:
        repo = self.repo("clean", f"{file} filter=sops\n")
        if config is not None:
            (repo / ".sops.yaml").write_text(config)
        else:
            (repo / ".sops.yaml").write_text(f"creation_rules:\n  - age: {RECIPIENT}\n")
        (repo / file).write_text(text)
        mem = self.work / "filter-mem.txt"
        self.filter_config(repo, mem)
        return self.timed(["git", "add", file], repo, mem_file=mem)

    def stage_raw(self, repo: Path, path: str, text: str) -> None:
        """Stage `text` at `path` as it is, without any filter (a hostile push)."""
        blob = repo / ".raw"
        blob.write_text(text)
        oid = self.git(["hash-object", "-w", "--no-filters", str(blob)], repo, text=True).stdout.strip()
        blob.unlink()
        self.git(["update-index", "--add", "--cacheinfo", f"100644,{oid},{path}"], repo)

    def check(self, file: str, text: str, config: str | None) -> dict:
        repo = self.repo("check", f"{file} filter=sops\n")
        self.git(["add", ".gitattributes"], repo)
        if config is not None:
            self.stage_raw(repo, ".sops.yaml", config)
        self.stage_raw(repo, file, text)
        return self.timed([str(GIT_SOPS), "check", "--staged"], repo, want_stdout=True)

    def smudge(self, file: str, text: str, config: str | None) -> dict:
        src = self.repo("smudge-src", f"{file} filter=sops\n")
        self.stage_raw(src, file, text)
        (src / "other.yaml").write_text("other: file\n")
        self.git(["add", ".gitattributes", "other.yaml"], src)
        if config is not None:
            self.stage_raw(src, ".sops.yaml", config)
        self.git(["commit", "-q", "-m", "hostile", "--no-verify"], src)
        dst = self.work / "smudge-dst"
        shutil.rmtree(dst, ignore_errors=True)
        self.git(["clone", "-q", "--no-checkout", str(src), str(dst)], self.work)
        mem = self.work / "filter-mem.txt"
        self.filter_config(dst, mem)
        r = self.timed(["git", "checkout", "-q", "main"], dst, mem_file=mem)
        r["others_checked_out"] = (dst / "other.yaml").exists()
        return r


def first_line(err: str) -> str:
    for line in err.splitlines():
        line = line.strip()
        if line and not line.startswith("Command exited") and not line.startswith("Command terminated"):
            return line[:220]
    return ""


# ----------------------------------------------------------------------------- report
def fmt_t(v):
    if v is None:
        return "—"
    return f"{v * 1000:.0f} ms" if v < 10 else f"{v:.1f} s"


def fmt_rss(k):
    return "—" if k is None else f"{k / 1024:.0f} MiB"


def fmt_exit(r):
    if r["exit"] is None:
        return "**timeout**"
    return str(r["exit"])


def report(rows: list[dict], args, meta: dict) -> str:
    out = ["# git-sops on hostile input", ""]
    out.append(f"Generated by `benches/adversarial.py` on {meta['date']} ({meta['cpus']} CPUs, "
               f"kernel {meta['kernel']}, git {meta['git']}, sops {meta['sops']}), release build, "
               f"inputs of about {args.size_mb:g} MB, every git-sops run limited to {args.limit:.0f} s "
               f"(sops to {args.sops_limit:.0f} s). Rerun with:")
    out += ["", "```sh", "scripts/bench --adversarial        # or: python3 benches/adversarial.py --size-mb 10", "```", ""]
    if meta.get("rerun"):
        out += [f"Rows rerun after a fix (same command with `--only`): {', '.join(meta['rerun'])}.", ""]
    out.append("Each input is run through `git-sops encrypt`, the clean filter (`git add` in a fresh "
               "repository), smudge (`git checkout` of a commit that holds the blob as pushed, in a clone "
               "with a key: `others` says whether the other file of that commit was checked out), "
               "`git sops check --staged` (the blob staged without a filter) and `sops encrypt` for "
               "reference. Peak RSS is the git-sops process's own (for clean and smudge the filter "
               "process). Exit 0 with clean/smudge means the blob was stored or checked out; check exits 1 "
               "when it reports the file. The limits are in the README (\"Limits on hostile input\").")
    out.append("")
    out += ["## Summary", "",
            "The slowest and the largest of the four git-sops operations per input, whether every one "
            "ended by itself within the limit (with a result or a clear error), and sops 3.11 on the "
            "same input.", "",
            "| input | size | slowest | largest peak RSS | all ended | sops encrypt |",
            "|---|---|---|---|---|---|"]
    for r in rows:
        ours = [v for k, v in r["ops"].items() if k != "sops"]
        if not ours:
            continue
        slow = max(ours, key=lambda v: v["time"])
        big = max((v["rss_kib"] or 0) for v in ours)
        ended = all(v["exit"] is not None for v in ours)
        sops = r["ops"].get("sops")
        sops_txt = "—" if sops is None else f"exit {fmt_exit(sops)}, {fmt_t(sops['time'])}"
        out.append(f"| {r['name']} | {r['size'] / 1048576:.1f} MB | {fmt_t(slow['time'])} | "
                   f"{fmt_rss(big or None)} | {'yes' if ended else '**NO**'} | {sops_txt} |")
    out.append("")
    for r in rows:
        out.append(f"## {r['name']}: {r['what']}")
        out.append("")
        out.append(f"`{r['file']}`, {r['size']:,} bytes.")
        out.append("")
        out.append("| operation | exit | time | peak RSS | the error (check: its first finding) |")
        out.append("|---|---|---|---|---|")
        for op, res in r["ops"].items():
            msg = res["message"].replace("|", "\\|")
            extra = ""
            if "others_checked_out" in res:
                extra = f" (others: {'yes' if res['others_checked_out'] else 'NO'})"
            out.append(f"| {op} | {fmt_exit(res)}{extra} | {fmt_t(res['time'])} | {fmt_rss(res['rss_kib'])} | {msg} |")
        out.append("")
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size-mb", type=float, default=10)
    ap.add_argument("--limit", type=float, default=300, help="seconds allowed per git-sops run")
    ap.add_argument("--sops-limit", type=float, default=60,
                    help="seconds allowed per sops run (sops is quadratic on large maps)")
    ap.add_argument("--only", default="",
                    help="comma-separated input names; the other rows are kept from the existing JSON next to --out")
    ap.add_argument("--ops", default="encrypt,clean,smudge,check,sops")
    ap.add_argument("--out", default=str(ROOT / "benches" / "ADVERSARIAL.md"))
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    for p in (GIT_SOPS, SOPS):
        if not p.exists():
            sys.exit(f"missing {p}: run scripts/bench --adversarial (it provisions sops and builds git-sops)")
    size = int(args.size_mb * 1024 * 1024)
    inputs = [(n, f, w, t, None) for (n, f, w, t) in gen_inputs(size)]
    plain = "db:\n    password: hunter2\n"
    inputs.append(("sops-yaml-alias-bomb", "secret.yaml",
                   ".sops.yaml: 9 levels of ten aliases each (10^9 strings if expanded)", plain, alias_bomb(9)))
    inputs.append(("sops-yaml-alias-heavy", "secret.yaml",
                   f".sops.yaml of ~{args.size_mb:g} MB whose list is aliased 8 times (within go-yaml's budget?)",
                   plain, alias_heavy(size)))
    inputs.append(("sops-yaml-deep", "secret.yaml", ".sops.yaml: `[` repeated to the size", plain,
                   "creation_rules: " + repeat_to(size, "[") + "\n"))
    only = {x for x in args.only.split(",") if x}
    ops = [x for x in args.ops.split(",") if x]

    work = Path(tempfile.mkdtemp(prefix="git-sops-adversarial-"))
    runner = Runner(work, args.limit, args.sops_limit)
    meta = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "cpus": os.cpu_count(),
        "kernel": os.uname().release,
        "git": subprocess.run(["git", "--version"], capture_output=True, text=True).stdout.split()[-1],
        "sops": subprocess.run([str(SOPS), "--version", "--disable-version-check"], capture_output=True,
                               text=True).stdout.split()[1],
    }
    rows = []
    started = time.time()
    try:
        for name, file, what, text, config in inputs:
            if only and name not in only:
                continue
            size_of = len((config if config is not None else text).encode())
            row = {"name": name, "file": file if config is None else ".sops.yaml", "what": what,
                   "size": size_of, "ops": {}}
            for op in ops:
                res = getattr(runner, {"sops": "sops_encrypt"}.get(op, op))(file, text, config)
                row["ops"][op] = res
                print(f"{name:<30} {op:<8} exit={fmt_exit(res):<4} {fmt_t(res['time']):>9} "
                      f"{fmt_rss(res['rss_kib']):>8}  {res['message'][:90]}", file=sys.stderr, flush=True)
            rows.append(row)
        meta["elapsed_s"] = round(time.time() - started)
        previous = Path(args.out).with_suffix(".json")
        if only and previous.exists():
            # Rerun rows replace theirs; the others keep their earlier numbers.
            old = json.loads(previous.read_text())
            fresh = {r["name"]: r for r in rows}
            rows = [fresh.pop(r["name"], r) for r in old["rows"]] + list(fresh.values())
            meta["rerun"] = sorted(only)
            meta["elapsed_s"] += old["meta"].get("elapsed_s", 0)
        text = report(rows, args, meta) + f"\nWhole run: {meta['elapsed_s']} s.\n"
        Path(args.out).write_text(text)
        Path(args.out).with_suffix(".json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
        print(f"wrote {args.out}", file=sys.stderr)
    finally:
        if args.keep:
            print(f"scratch kept in {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
