#!/usr/bin/env python3
"""git-sops benchmark: git-sops (process filter) side by side with plain git on the same
plaintext, sops 3.11 used as one-shot clean/smudge/textconv filters, and git-crypt.

Run it through `scripts/bench` (it provisions the tools and builds git-sops in release).
Python 3.11 standard library only. KMS is moto on loopback behind a proxy (in this
process) that adds a round-trip delay to every request and counts requests by
`X-Amz-Target`. Results: a Markdown report (default benches/RESULTS.md) and the raw
numbers as JSON next to it.

Operations, for N protected YAML files (N = 100 and 1000; 20-40 keys each):
  1. add+commit   `git add -A && git commit` of all files, in a fresh repository
  2. clone cold   `git clone` with the keys available and nothing cached
                  (git-crypt: clone + `git-crypt unlock`); git-sops also without its
                  prefetch: `clone -n`, `reset`, then `checkout-index -a` (no treeish, so
                  one unwrap after another) as the serial baseline
     checkout warm  remove the protected files, `git reset --hard` (keys cached where
                  the tool caches them)
  3. status       `git status --porcelain` after touching every protected file: time and
                  files reported dirty
  4. diff, log -p `git diff HEAD~1 HEAD` and `git log -p -1` over a commit that changes one
                  value in every file (textconv)
  5. check --all  `git sops check --all` (git-sops only)
     textconv floor  the same diff and log -p with `diff.sops.textconv=cat`: what git's
                  one process per blob costs with a converter that does nothing
  6. big files    encrypt and decrypt of one large YAML and one large JSON file (3, 10 and 30
                  MB; --quick: 3 MB): time and peak RSS, git-sops vs sops (up to 10 MB;
                  git-crypt's whole-file clean/smudge for reference)

The report ends with the targets of DESIGN.md §4 and of issue 18, met or missed, and a
comparison of every git-sops figure with the results file it replaces (same --out).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import socket
import statistics
import string
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TOOLS = ROOT / "target" / "tools"
GIT_SOPS = ROOT / "target" / "release" / "git-sops"
SOPS = TOOLS / "bin" / "sops"
MOTO = TOOLS / "bin" / "moto_server"
MOTO_PY = TOOLS / "moto-venv" / "bin" / "python"
TIME = "/usr/bin/time"

TOOL_NAMES = ["plain", "git-sops", "sops", "git-crypt"]


# ----------------------------------------------------------------------------- KMS
class DelayProxy:
    """HTTP/1.1 proxy on loopback: delays each request, counts X-Amz-Target."""

    def __init__(self, upstream_port: int, delay_s: float):
        self.upstream_port = upstream_port
        self.delay_s = delay_s
        self.counts: Counter[str] = Counter()
        self.lock = threading.Lock()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(256)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def reset(self) -> None:
        with self.lock:
            self.counts.clear()

    def calls(self) -> int:
        with self.lock:
            return sum(self.counts.values())

    def snapshot(self) -> dict:
        with self.lock:
            return {k.rsplit(".", 1)[-1]: v for k, v in self.counts.items()}

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        try:
            up = socket.create_connection(("127.0.0.1", self.upstream_port))
        except OSError:
            client.close()
            return

        def back() -> None:
            try:
                while True:
                    data = up.recv(65536)
                    if not data:
                        break
                    client.sendall(data)
            except OSError:
                pass
            try:
                client.shutdown(socket.SHUT_WR)
            except OSError:
                pass

        threading.Thread(target=back, daemon=True).start()
        reader = client.makefile("rb")
        try:
            while True:
                head = b""
                while True:
                    line = reader.readline()
                    if not line:
                        up.shutdown(socket.SHUT_WR)
                        return
                    head += line
                    if line in (b"\r\n", b"\n"):
                        break
                headers = {}
                for raw in head.decode("latin-1").split("\r\n")[1:]:
                    if ":" in raw:
                        k, v = raw.split(":", 1)
                        headers[k.strip().lower()] = v.strip()
                body = reader.read(int(headers.get("content-length", "0") or 0))
                with self.lock:
                    self.counts[headers.get("x-amz-target", "other")] += 1
                if self.delay_s > 0:
                    time.sleep(self.delay_s)
                up.sendall(head + body)
        except OSError:
            pass


def free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def start_moto(work: Path) -> tuple[subprocess.Popen, int]:
    port = free_port()
    log = open(work / "moto.log", "wb")
    proc = subprocess.Popen(
        [str(MOTO), "-H", "127.0.0.1", "-p", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={"PATH": os.environ.get("PATH", ""), "HOME": str(work)},
    )
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/moto-api/", timeout=1).read()
            return proc, port
        except Exception:
            time.sleep(0.2)
    proc.kill()
    sys.exit("moto_server did not start; see " + str(work / "moto.log"))


def create_kms_key(port: int) -> str:
    script = (
        "import boto3\n"
        f"c = boto3.client('kms', region_name='us-east-1', endpoint_url='http://127.0.0.1:{port}',"
        " aws_access_key_id='test', aws_secret_access_key='test')\n"
        "print(c.create_key(Description='git-sops bench')['KeyMetadata']['Arn'])\n"
    )
    out = subprocess.run([str(MOTO_PY), "-c", script], capture_output=True, text=True, check=True)
    return out.stdout.strip()


# ----------------------------------------------------------------------------- data
WORDS = (
    "alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike november "
    "oscar papa quebec romeo sierra tango uniform victor whiskey xray yankee zulu"
).split()
SERVICES = ["billing", "auth", "search", "ledger", "notifications", "gateway", "reports", "sync"]


def secret(rng: random.Random, n: int = 24) -> str:
    return "".join(rng.choice(string.ascii_letters + string.digits) for _ in range(n))


def gen_file(rng: random.Random, i: int) -> str:
    svc = rng.choice(SERVICES)
    env = rng.choice(["prod", "staging", "dev"])
    lines = [
        f"# {svc} service secrets ({env}), managed by the platform team",
        f"service: {svc}-{i:04d}",
        f"environment: {env}",
        "database:",
        f"    host: {svc}-db-{i}.{env}.internal.example.com",
        f"    port: {rng.choice([5432, 3306, 6432])}",
        f"    name: {svc}_{env}",
        f"    user: app_{svc}",
        f"    password: {secret(rng)}",
        f"    sslmode: {rng.choice(['require', 'verify-full'])}",
        "redis:",
        f"    url: redis://:{secret(rng, 16)}@redis-{i}.{env}.internal:6379/0",
        f"    tls: {rng.choice(['true', 'false'])}",
        "api:",
        f"    key: sk_live_{secret(rng, 32)}",
        f"    webhook_secret: whsec_{secret(rng, 28)}",
        f"    timeout_seconds: {rng.randint(5, 60)}",
    ]
    extra = rng.randint(6, 21)  # 20-35 leaf keys in total
    lines.append("integrations:")
    for k in range(extra):
        word = rng.choice(WORDS)
        kind = rng.random()
        if kind < 0.4:
            lines.append(f"    {word}_{k}_token: {secret(rng, rng.randint(20, 40))}")
        elif kind < 0.6:
            lines.append(f"    {word}_{k}_enabled: {rng.choice(['true', 'false'])}")
        elif kind < 0.8:
            lines.append(f"    {word}_{k}_endpoint: https://{word}.example.com/v{rng.randint(1, 3)}")
        else:
            lines.append(f"    {word}_{k}_limit: {rng.randint(1, 10000)}")
    lines.append("admins:")
    for _ in range(3):
        lines.append(f"    - {rng.choice(WORDS)}@example.com")
    return "\n".join(lines) + "\n"


def change_one_value(text: str, rev: int) -> str:
    return re.sub(r"(\n    password: )(\S+)", lambda m: f"{m.group(1)}{m.group(2)[:18]}r{rev}x", text, count=1)


def gen_big(path: Path, size: int) -> None:
    rng = random.Random(7)
    with open(path, "w") as f:
        f.write("# one large document of service records\nrecords:\n")
        written = 0
        i = 0
        while written < size:
            rec = (
                f"    - id: rec-{i:07d}\n"
                f"      name: {rng.choice(WORDS)}-{rng.choice(WORDS)}\n"
                f"      token: {secret(rng, 40)}\n"
                f"      password: {secret(rng, 20)}\n"
                f"      port: {rng.randint(1024, 65535)}\n"
                f"      enabled: {rng.choice(['true', 'false'])}\n"
            )
            f.write(rec)
            written += len(rec)
            i += 1


def gen_big_json(path: Path, size: int) -> None:
    """The same records as gen_big, as one indented JSON document."""
    rng = random.Random(7)
    with open(path, "w") as f:
        f.write('{\n  "records": [\n')
        written = 0
        i = 0
        while written < size:
            rec = (
                ("" if i == 0 else ",\n")
                + "    {\n"
                f'      "id": "rec-{i:07d}",\n'
                f'      "name": "{rng.choice(WORDS)}-{rng.choice(WORDS)}",\n'
                f'      "token": "{secret(rng, 40)}",\n'
                f'      "password": "{secret(rng, 20)}",\n'
                f'      "port": {rng.randint(1024, 65535)},\n'
                f'      "enabled": {rng.choice(["true", "false"])}\n'
                "    }"
            )
            f.write(rec)
            written += len(rec)
            i += 1
        f.write("\n  ]\n}\n")


# ----------------------------------------------------------------------------- running
class Bench:
    def __init__(self, args, work: Path, proxy: DelayProxy, arn: str):
        self.args = args
        self.work = work
        self.proxy = proxy
        self.arn = arn
        self.home = work / "home"
        self.home.mkdir()
        (self.home / ".gitconfig").write_text(
            "[user]\n\tname = Bench\n\temail = bench@example.com\n"
            "[init]\n\tdefaultBranch = main\n[advice]\n\tdetachedHead = false\n"
            "[core]\n\tautocrlf = false\n[gc]\n\tauto = 0\n"
        )
        self.env = {
            "PATH": f"{GIT_SOPS.parent}:{TOOLS / 'bin'}:{os.environ.get('PATH', '')}",
            "HOME": str(self.home),
            "GIT_CONFIG_NOSYSTEM": "1",
            "LANG": "C.UTF-8",
            "AWS_ENDPOINT_URL": proxy.endpoint,
            "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": "test",
            "AWS_REGION": "us-east-1",
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_CONFIG_FILE": str(self.home / "aws-config"),
            "AWS_SHARED_CREDENTIALS_FILE": str(self.home / "aws-credentials"),
            "NO_PROXY": "127.0.0.1,localhost",
            "SOPS_DISABLE_VERSION_CHECK": "1",
        }
        self.results: dict = {}
        self.gitcrypt_key = work / "git-crypt.key"

    # -- process helpers
    def run(self, cmd, cwd, capture=False, check=True, stdin=None, stdout=None):
        return subprocess.run(
            cmd,
            cwd=cwd,
            env=self.env,
            check=check,
            stdin=stdin,
            stdout=subprocess.PIPE if capture else (stdout or subprocess.DEVNULL),
            stderr=subprocess.PIPE,
            text=capture,
        )

    def timed(self, cmds, cwd, capture=False):
        """Run shell-free commands in sequence; (seconds, KMS calls, last stdout)."""
        self.proxy.reset()
        start = time.perf_counter()
        out = None
        for cmd in cmds:
            try:
                r = self.run(cmd, cwd, capture=capture)
            except subprocess.CalledProcessError as e:
                err = e.stderr.decode() if isinstance(e.stderr, bytes) else e.stderr
                raise SystemExit(f"command failed in {cwd}: {cmd}\n{err}")
            out = r.stdout
        return time.perf_counter() - start, self.proxy.calls(), out

    def delay(self, on: bool):
        self.proxy.delay_s = self.args.kms_delay_ms / 1000.0 if on else 0.0

    # -- tool configuration
    def mem_wrap(self, tag: str, cmd: str) -> str:
        """Wrap a filter command so each invocation appends its peak RSS (KiB) to a file."""
        f = self.work / "mem" / f"{tag}.txt"
        f.parent.mkdir(exist_ok=True)
        return f"{TIME} -f %M -a -o {f} {cmd}"

    def peak_rss(self, tag: str) -> int | None:
        f = self.work / "mem" / f"{tag}.txt"
        if not f.exists():
            return None
        vals = [int(x) for x in f.read_text().split() if x.isdigit()]
        f.unlink()
        return max(vals) if vals else None

    def filter_config(self, tool: str, mem_tag: str | None = None) -> list[tuple[str, str]]:
        wrap = (lambda c: self.mem_wrap(mem_tag, c)) if mem_tag else (lambda c: c)
        if tool == "git-sops":
            return [
                ("filter.sops.process", wrap(f"{GIT_SOPS} filter-process")),
                ("filter.sops.required", "true"),
                ("diff.sops.textconv", f"{GIT_SOPS} textconv"),
                ("diff.sops.binary", "false"),
            ]
        if tool == "sops":
            return [
                ("filter.sopsf.clean", wrap(f"{SOPS} encrypt --filename-override %f --input-type yaml --output-type yaml /dev/stdin")),
                ("filter.sopsf.smudge", wrap(f"{SOPS} decrypt --input-type yaml --output-type yaml /dev/stdin")),
                ("filter.sopsf.required", "true"),
                # git smudges a blob before textconv (so `sops decrypt` would see plaintext):
                # with a sops smudge filter the plaintext diff needs no more than `cat`.
                ("diff.sopsf.textconv", "cat"),
            ]
        return []

    def attributes(self, tool: str) -> str:
        return {
            "plain": "",
            "git-sops": "secrets/** filter=sops diff=sops -text\n",
            "sops": "secrets/** filter=sopsf diff=sopsf -text\n",
            "git-crypt": "secrets/** filter=git-crypt diff=git-crypt\n",
        }[tool]

    def init_repo(self, tool: str, repo: Path, files: Path, mem_tag: str | None):
        if repo.exists():
            shutil.rmtree(repo)
        repo.mkdir(parents=True)
        self.run(["git", "init", "-q"], repo)
        for k, v in self.filter_config(tool, mem_tag):
            self.run(["git", "config", k, v], repo)
        if tool == "git-crypt":
            # A new key per repository; the one exported last is the clones' origin's.
            self.run(["git-crypt", "init"], repo)
            self.run(["git-crypt", "export-key", str(self.gitcrypt_key)], repo)
        if tool in ("git-sops", "sops"):
            (repo / ".sops.yaml").write_text(
                f"creation_rules:\n  - path_regex: ^secrets/.*\\.yaml$\n    kms: {self.arn}\n"
            )
        (repo / ".gitattributes").write_text(self.attributes(tool))
        shutil.copytree(files, repo / "secrets")

    def clone_cmds(self, tool: str, src: Path, dst: Path, mem_tag: str | None):
        cfg = []
        for k, v in self.filter_config(tool, mem_tag):
            cfg += ["-c", f"{k}={v}"]
        cmds = [["git", "clone", "-q", *cfg, str(src), str(dst)]]
        if tool == "git-crypt":
            cmds.append(["sh", "-c", 'cd "$0" && git-crypt unlock "$1"', str(dst), str(self.gitcrypt_key)])
        return cmds

    # -- the suite for one N
    def suite(self, n: int) -> dict:
        res: dict = {"n": n, "ops": {}, "calls": {}, "dirty": {}, "mem": {}}
        rng = random.Random(n)
        files = self.work / f"data-{n}"
        files.mkdir()
        for i in range(n):
            (files / f"{rng.choice(SERVICES)}-{i:04d}.yaml").write_text(gen_file(rng, i))
        runs_fast = self.args.runs
        # The peers' per-file processes make them slow: fewer runs at N >= 1000
        # (and for sops in --quick mode).
        runs_slow = self.args.slow_runs if n >= 1000 else self.args.runs
        runs_sops = self.args.slow_runs if (n >= 1000 or self.args.quick) else self.args.runs

        def record(op, tool, samples, calls=None, dirty=None):
            res["ops"].setdefault(op, {})[tool] = statistics.median(samples)
            if calls is not None:
                res["calls"].setdefault(op, {})[tool] = calls
            if dirty is not None:
                res["dirty"].setdefault(op, {})[tool] = dirty
            log(f"  N={n} {op:<16} {tool:<9} {statistics.median(samples):8.3f}s"
                + (f"  kms={calls}" if calls is not None else "")
                + (f"  dirty={dirty}" if dirty is not None else ""))

        for tool in self.args.tools:
            runs = {"sops": runs_sops, "git-crypt": runs_slow}.get(tool, runs_fast)
            base = self.work / f"{tool}-{n}"
            origin = base / "origin"
            # 1. add + commit, in a fresh repository each run.
            samples = []
            for r in range(runs):
                self.delay(False)
                self.init_repo(tool, origin, files, f"{tool}-{n}-add" if tool != "plain" else None)
                self.delay(True)
                t, calls, _ = self.timed([["git", "add", "-A"], ["git", "commit", "-q", "-m", "secrets"]], origin)
                samples.append(t)
            record("add+commit", tool, samples, calls)
            if tool != "plain":
                res["mem"].setdefault("add+commit", {})[tool] = self.peak_rss(f"{tool}-{n}-add")
            # Setup (not measured, no KMS delay): a second commit that changes one
            # value in every file. The peers' commit is made with git-sops' clean for
            # speed (the same SOPS format); measured operations use each tool's own filters.
            self.delay(False)
            for f in sorted((origin / "secrets").iterdir()):
                f.write_text(change_one_value(f.read_text(), 1))
            extra = []
            if tool == "sops":
                extra = ["-c", f"filter.sopsf.process={GIT_SOPS} filter-process"]
            self.run(["git", *extra, "commit", "-q", "-a", "-m", "rotate one value per file"], origin)
            # 2. clone, cold.
            dst = base / "clone"
            samples = []
            for r in range(runs):
                if dst.exists():
                    shutil.rmtree(dst)
                self.delay(True)
                t, calls, _ = self.timed(self.clone_cmds(tool, origin, dst, f"{tool}-{n}-clone" if tool != "plain" else None), base)
                samples.append(t)
            record("clone cold", tool, samples, calls)
            if tool != "plain":
                res["mem"].setdefault("clone cold", {})[tool] = self.peak_rss(f"{tool}-{n}-clone")
            for k, v in self.filter_config(tool):  # the same filters, without the RSS wrapper
                self.run(["git", "config", k, v], dst)
            if tool == "git-sops":
                # The serial baseline: the same cold checkout without a treeish
                # (checkout-index), so every data key is unwrapped when its file is smudged.
                serial = base / "serial"
                cfg = []
                for k, v in self.filter_config(tool):
                    cfg += ["-c", f"{k}={v}"]
                self.delay(True)
                t0, _, _ = self.timed([["git", "clone", "-q", "-n", *cfg, str(origin), str(serial)]], base)
                t1, _, _ = self.timed([["git", "reset", "-q"]], serial)
                t2, calls, _ = self.timed([["git", "checkout-index", "-a", "-f"]], serial)
                record("clone cold serial", tool, [t0 + t1 + t2], calls)
                shutil.rmtree(serial)
            if tool == "git-sops":
                # The same cold clone with no KMS delay: what is left is moto's own
                # throughput on this machine plus the local work (the floor of the prefetch).
                nodelay = base / "clone-nodelay"
                self.delay(False)
                t, calls, _ = self.timed(self.clone_cmds(tool, origin, nodelay, None), base)
                record("clone cold 0ms KMS", tool, [t], calls)
                shutil.rmtree(nodelay)
                self.delay(True)
            # 2w. checkout with a warm cache: remove the files, reset --hard.
            if not (tool == "sops" and n >= 1000 and self.args.skip_slow_repeats):
                samples = []
                for r in range(runs):
                    shutil.rmtree(dst / "secrets")
                    t, calls, _ = self.timed([["git", "reset", "-q", "--hard"]], dst)
                    samples.append(t)
                record("checkout warm", tool, samples, calls)
            # 3. status after touching every protected file.
            samples, dirty = [], None
            for r in range(runs):
                stamp = time.time() - 100 + r
                for f in (dst / "secrets").iterdir():
                    os.utime(f, (stamp, stamp))
                t, calls, out = self.timed([["git", "status", "--porcelain"]], dst, capture=True)
                samples.append(t)
                dirty = len([l for l in out.splitlines() if l.strip()])
            record("status", tool, samples, calls, dirty)
            # 4. diff and log -p over the commit that changed every file.
            for op, cmd in (("diff", ["git", "diff", "HEAD~1", "HEAD"]), ("log -p -1", ["git", "log", "-p", "-1"])):
                if op == "log -p -1" and tool == "sops" and n >= 1000 and self.args.skip_slow_repeats:
                    continue
                samples = []
                for r in range(runs):
                    t, calls, out = self.timed([cmd], dst, capture=True)
                    samples.append(t)
                if tool != "plain":
                    assert "rotate" in out or op == "diff", "log -p shows the commit"
                record(op, tool, samples, calls)
                if tool == "git-sops":
                    # git's own floor: one process per blob with a converter that
                    # does nothing (the filter process still smudges every blob).
                    floor = ["git", "-c", "diff.sops.textconv=cat", *cmd[1:]]
                    samples = [self.timed([floor], dst)[0] for _ in range(runs)]
                    record(f"{op} (textconv=cat)", tool, samples)
            # 5. the plaintext guard.
            if tool == "git-sops":
                samples = []
                for r in range(runs):
                    t, calls, _ = self.timed([[str(GIT_SOPS), "check", "--all"]], dst)
                    samples.append(t)
                record("check --all", tool, samples, calls)
            self.delay(False)
        # Paired runs: the ratios to plain git of the cheap operations are sensitive to
        # machine load (other processes on a shared machine), so plain git and git-sops
        # alternate, run after run, in their clones from above.
        if "plain" in self.args.tools and "git-sops" in self.args.tools:
            paired: dict = {}
            for r in range(self.args.paired_runs):
                for tool in ("plain", "git-sops"):
                    dst = self.work / f"{tool}-{n}" / "clone"
                    shutil.rmtree(dst / "secrets")
                    t, calls, _ = self.timed([["git", "reset", "-q", "--hard"]], dst)
                    paired.setdefault(("checkout warm (paired)", tool), []).append((t, calls, None))
                    stamp = time.time() - 200 + r
                    for f in (dst / "secrets").iterdir():
                        os.utime(f, (stamp, stamp))
                    t, calls, out = self.timed([["git", "status", "--porcelain"]], dst, capture=True)
                    dirty = len([l for l in out.splitlines() if l.strip()])
                    paired.setdefault(("status (paired)", tool), []).append((t, calls, dirty))
            for (op, tool), samples in paired.items():
                record(op, tool, [x[0] for x in samples], samples[-1][1], samples[-1][2])
        return res

    # -- 6. the big files
    def big(self, mb: int, fmt: str) -> dict:
        res: dict = {"ops": {}, "mem": {}, "calls": {}, "format": fmt}
        big = self.work / f"big-{mb}.{fmt}"
        (gen_big if fmt == "yaml" else gen_big_json)(big, mb * 1024 * 1024)
        res["size"] = big.stat().st_size
        runs = self.args.big_runs
        self.delay(True)

        def measure(op, tool, argv, stdin=None, out=None):
            samples, mem, calls = [], 0, 0
            for _ in range(self.args.slow_runs if tool == "sops" else runs):
                memf = self.work / "big-mem.txt"
                self.proxy.reset()
                start = time.perf_counter()
                with open(stdin, "rb") if stdin else open(os.devnull, "rb") as si, open(out or os.devnull, "wb") as so:
                    r = subprocess.run([TIME, "-f", "%M", "-o", str(memf), *argv], cwd=self.work, env=self.env,
                                       stdin=si, stdout=so, stderr=subprocess.PIPE)
                samples.append(time.perf_counter() - start)
                if r.returncode != 0:
                    raise SystemExit(f"{argv} failed: {r.stderr.decode()[-2000:]}")
                mem = max(mem, int(memf.read_text().split()[-1]))
                calls = self.proxy.calls()
            res["ops"].setdefault(op, {})[tool] = statistics.median(samples)
            res["mem"].setdefault(op, {})[tool] = mem
            res["calls"].setdefault(op, {})[tool] = calls
            log(f"  {mb}MB {fmt} {op:<8} {tool:<9} {statistics.median(samples):8.3f}s  rss={mem}KiB kms={calls}")

        if "git-sops" in self.args.tools:
            enc = self.work / f"big-{mb}.gs.{fmt}"
            measure("encrypt", "git-sops", [str(GIT_SOPS), "encrypt", "--kms", self.arn, str(big)], out=enc)
            measure("decrypt", "git-sops", [str(GIT_SOPS), "decrypt", str(enc)])
        # sops needs minutes and gigabytes beyond 10 MB: compared up to there.
        if "sops" in self.args.tools and mb <= 10:
            enc = self.work / f"big-{mb}.sops.{fmt}"
            measure("encrypt", "sops", [str(SOPS), "encrypt", "--kms", self.arn, str(big)], out=enc)
            measure("decrypt", "sops", [str(SOPS), "decrypt", str(enc)])
        if "git-crypt" in self.args.tools and shutil.which("git-crypt"):
            repo = self.work / f"big-gc-{mb}-{fmt}"
            repo.mkdir()
            self.run(["git", "init", "-q"], repo)
            self.run(["git-crypt", "init"], repo)
            save = self.work
            self.work = repo
            measure("encrypt", "git-crypt", ["git-crypt", "clean"], stdin=big, out=save / "big.gc")
            measure("decrypt", "git-crypt", ["git-crypt", "smudge"], stdin=save / "big.gc")
            self.work = save
        for f in self.work.glob(f"big-{mb}*"):
            if f.is_file():
                f.unlink()
        self.delay(False)
        return res


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------- report
def fmt_t(v):
    if v is None:
        return "—"
    return f"{v * 1000:.0f} ms" if v < 10 else f"{v:.1f} s"


def ratio(a, b):
    if a is None or b is None or b == 0:
        return "—"
    return f"{a / b:.2f}×"


def report(all_res: dict, args, meta: dict, previous: dict | None = None) -> str:
    tools = [t for t in TOOL_NAMES if t in args.tools]
    L = []
    L.append("# git-sops benchmark results\n")
    L.append(
        f"Generated by `scripts/bench{' --quick' if args.quick else ''}` on {meta['date']} "
        f"({meta['cpus']} CPUs, {meta['kernel']}). git {meta['git']}, sops {meta['sops']}, "
        f"git-crypt {meta['git_crypt']}, git-sops release build. KMS: moto on loopback behind a proxy adding "
        f"**{args.kms_delay_ms} ms** per request; \"KMS\" columns count the requests the proxy saw. "
        f"Times are medians of {args.runs} runs (sops and git-crypt at N ≥ 1000, and sops in --quick "
        f"mode and on the big files: {args.slow_runs}); the big-file rows of {args.big_runs}.\n"
    )
    L.append(
        "Tools: **plain** = plain git on the same plaintext; **git-sops** = `filter.sops.process` "
        "(one process per git command); **sops** = sops 3.11 as one-shot filters, the way sops users "
        "configure it (`clean = sops encrypt --filename-override %f … /dev/stdin`, `smudge = sops decrypt "
        "… /dev/stdin`; git smudges blobs before textconv, so `textconv = cat`); **git-crypt** = Debian's git-crypt (symmetric key; "
        "no KMS, no per-value encryption). Ratios: ×plain = tool / plain git; peers = peer / git-sops "
        "(> 1 means git-sops is faster).\n"
    )
    L.append(
        "Operations: *add+commit* of all files in a fresh repository; *clone cold* = `git clone` with "
        "keys available and nothing cached (git-crypt: clone + `git-crypt unlock`); *clone cold serial* "
        "= git-sops without its prefetch (`clone -n`, `reset`, `checkout-index -a`: one KMS unwrap after "
        "another); *checkout warm* = delete the protected files, `git reset --hard`; *status* = "
        "`git status` after touching every protected file; *diff* = `git diff HEAD~1 HEAD` and *log -p "
        "-1* over a commit that changes one value in every file; *check --all* = `git sops check --all`; "
        "*(paired)* rows alternate plain git and git-sops run after run (the cheap operations are sensitive "
        "to load on a shared machine), medians of --paired-runs; *clone cold 0ms KMS* = the cold clone "
        "without the proxy delay (moto's own throughput plus local work).\n"
    )
    for key in sorted(k for k in all_res if k.startswith("N=")):
        r = all_res[key]
        n = r["n"]
        L.append(f"\n## N = {n} protected YAML files (20–35 keys each)\n")
        head = "| operation | " + " | ".join(tools) + " | git-sops ×plain | " + " | ".join(
            f"{t} / git-sops" for t in tools if t not in ("plain", "git-sops")) + " |"
        L.append(head)
        L.append("|" + "---|" * (head.count("|") - 1))
        for op, by in r["ops"].items():
            cells = []
            for t in tools:
                v = by.get(t)
                c = r["calls"].get(op, {}).get(t)
                d = r["dirty"].get(op, {}).get(t)
                s = fmt_t(v)
                extras = []
                if c is not None and t not in ("plain", "git-crypt") and v is not None:
                    extras.append(f"KMS {c}")
                if d is not None and v is not None:
                    extras.append(f"{d} dirty")
                if extras:
                    s += " (" + ", ".join(extras) + ")"
                cells.append(s)
            gs = by.get("git-sops")
            peer = [ratio(by.get(t), gs) for t in tools if t not in ("plain", "git-sops")]
            L.append(f"| {op} | " + " | ".join(cells) + f" | {ratio(gs, by.get('plain'))} | " + " | ".join(peer) + " |")
        if r["mem"]:
            L.append("\nPeak RSS of one filter process (KiB; sops and git-crypt: the largest of their per-file processes):\n")
            L.append("| operation | " + " | ".join(t for t in tools if t != "plain") + " |")
            L.append("|---|" + "---|" * len([t for t in tools if t != "plain"]))
            for op, by in r["mem"].items():
                L.append(f"| {op} | " + " | ".join(str(by.get(t) or "—") for t in tools if t != "plain") + " |")
    for key in big_keys(all_res):
        b = all_res[key]
        L.append(f"\n## One {b['size'] / 1e6:.1f} MB {b['format'].upper()} file\n")
        bt = [t for t in ("git-sops", "sops", "git-crypt") if any(t in v for v in b["ops"].values())]
        L.append("| operation | " + " | ".join(bt) + " | sops / git-sops |")
        L.append("|---|" + "---|" * (len(bt) + 1))
        for op, by in b["ops"].items():
            cells = [f"{fmt_t(by.get(t))} ({b['mem'][op].get(t, 0) // 1024} MiB, {b['mem'][op].get(t, 0) * 1024 / b['size']:.1f}× the file)"
                     if t in by else "—" for t in bt]
            L.append(f"| {op} | " + " | ".join(cells) + f" | {ratio(by.get('sops'), by.get('git-sops'))} |")
        L.append("\n(peak RSS of the process in parentheses; git-crypt encrypts the file as one blob)\n")
    L.append("\n## DESIGN.md §4 targets\n")
    L.extend(verdicts(all_res))
    L.append("\n## Issue 18 targets\n")
    L.extend(verdicts_18(all_res, args))
    if previous:
        L.append(f"\n## Compared with the previous results ({previous['meta']['date']})\n")
        L.extend(compare(all_res, previous["results"]))
    return "\n".join(L) + "\n"


def big_keys(all_res: dict) -> list[str]:
    return sorted(k for k in all_res if k.startswith("big-"))


def verdicts_18(all_res: dict, args) -> list[str]:
    out = []
    delay = args.kms_delay_ms / 1000.0
    for key in sorted(k for k in all_res if k.startswith("N=")):
        r = all_res[key]
        n, ops = r["n"], r["ops"]
        g = lambda op, t: ops.get(op, {}).get(t)
        add, calls = g("add+commit", "git-sops"), r["calls"].get("add+commit", {}).get("git-sops")
        if add:
            floor = n * delay
            out.append(f"- N={n} add+commit of new KMS files: {fmt_t(add)} ({calls} KMS calls) vs the serial floor "
                       f"{fmt_t(floor)} ({n} × {args.kms_delay_ms} ms), {floor / add:.1f}× faster (target ≥ 5×): "
                       f"**{'met' if floor >= 5 * add else 'MISSED'}**")
        for op in ("diff", "log -p -1"):
            gs, pl, cat = g(op, "git-sops"), g(op, "plain"), g(f"{op} (textconv=cat)", "git-sops")
            if gs and pl:
                note = ""
                if cat:
                    note = (f"; git itself with `textconv=cat` (one process per blob, nothing converted): {fmt_t(cat)}, "
                            f"{cat / pl:.1f}× plain, so git-sops is {gs / cat:.2f}× that floor")
                out.append(f"- N={n} {op}: {fmt_t(gs)} vs {fmt_t(pl)}, {gs / pl:.1f}× plain (target ≤ 5×): "
                           f"**{'met' if gs <= 5 * pl else 'MISSED'}**{note}")
        sop = "status (paired)" if g("status (paired)", "plain") else "status"
        st, stp = g(sop, "git-sops"), g(sop, "plain")
        if st and stp and n >= 1000:
            out.append(f"- N={n} {sop} after touching every file: {fmt_t(st)} vs {fmt_t(stp)}, {st / stp:.2f}× plain "
                       f"(target ≤ 3×): **{'met' if st <= 3 * stp else 'MISSED'}**")
    for key in big_keys(all_res):
        b = all_res[key]
        for op in ("encrypt", "decrypt"):
            m = b["mem"].get(op, {}).get("git-sops")
            if m:
                x = m * 1024 / b["size"]
                out.append(f"- {b['size'] / 1e6:.1f} MB {b['format'].upper()} {op}: peak {m // 1024} MiB, {x:.1f}× the file "
                           f"(target ≤ 10×): **{'met' if x <= 10 else 'MISSED'}**")
    ns = sorted((all_res[k]["n"], all_res[k]["mem"]) for k in all_res if k.startswith("N="))
    if len(ns) > 1:
        (n0, m0), (n1, m1) = ns[0], ns[-1]
        for op in ("add+commit", "clone cold"):
            a, b = m0.get(op, {}).get("git-sops"), m1.get(op, {}).get("git-sops")
            if a and b:
                out.append(f"- filter process peak RSS, {op}: N={n0} {a / 1024:.1f} MiB, N={n1} {b / 1024:.1f} MiB, "
                           f"{b / a:.2f}× for {n1 // n0}× the files (target flat, ≤ 1.25×): **{'met' if b <= 1.25 * a else 'MISSED'}**")
    return out


def compare(new: dict, old: dict) -> list[str]:
    """Every git-sops time in both runs: now / before (above 1.25: slower than noise explains)."""
    # One big YAML file was the only one before; its key was "big".
    old = {(f"big-{round(v['size'] / 1048576):03d}-yaml" if k == "big" else k): v for k, v in old.items()}
    rows, slower = [], []
    for key in sorted(new):
        if key not in old:
            continue
        for op, by in new[key]["ops"].items():
            a, b = old[key]["ops"].get(op, {}).get("git-sops"), by.get("git-sops")
            if a and b:
                name = f"{key} {op}"
                rows.append(f"| {name} | {fmt_t(a)} | {fmt_t(b)} | {b / a:.2f}× |")
                if b > 1.25 * a:
                    slower.append(name)
    if not rows:
        return ["(no row measured in both runs)"]
    out = ["| row (git-sops) | before | now | now / before |", "|---|---|---|---|", *rows, ""]
    out.append(f"- everything measured in both runs no slower (now / before ≤ 1.25, the noise of this machine): "
               f"**{'met' if not slower else 'MISSED'}**" + (f" (slower: {', '.join(slower)})" if slower else ""))
    return out


def verdicts(all_res: dict) -> list[str]:
    out = []
    for key in sorted(k for k in all_res if k.startswith("N=")):
        r = all_res[key]
        n = r["n"]
        ops, calls, dirty = r["ops"], r["calls"], r["dirty"]
        g = lambda op, t: ops.get(op, {}).get(t)
        sop = "status (paired)" if g("status (paired)", "plain") else "status"
        st, stp = g(sop, "git-sops"), g(sop, "plain")
        if st and stp:
            d = dirty[sop].get("git-sops")
            c = calls[sop].get("git-sops")
            ok = d == 0 and c == 0 and st <= 1.5 * stp
            out.append(f"- N={n} {sop} after touch: {d} dirty, {c} KMS calls, {fmt_t(st)} vs {fmt_t(stp)}, {st / stp:.2f}× plain (target 0, 0, ≤ 1.5×): **{'met' if ok else 'MISSED'}**")
        wop = "checkout warm (paired)" if g("checkout warm (paired)", "plain") else "checkout warm"
        w, wp = g(wop, "git-sops"), g(wop, "plain")
        if w and wp:
            out.append(f"- N={n} {wop}: {fmt_t(w)} vs {fmt_t(wp)}, {w / wp:.2f}× plain (target ≤ 2×): **{'met' if w <= 2 * wp else 'MISSED'}**")
        c, s = g("clone cold", "git-sops"), g("clone cold serial", "git-sops")
        if c and s:
            out.append(f"- N={n} cold checkout (prefetch) vs one unwrap after another: {fmt_t(c)} vs {fmt_t(s)}, {s / c:.1f}× faster (target ≥ 10×): **{'met' if s >= 10 * c else 'MISSED'}**"
                       + (f" (the same clone with 0 ms KMS delay: {fmt_t(g('clone cold 0ms KMS', 'git-sops'))})" if g("clone cold 0ms KMS", "git-sops") else ""))
        cc = calls.get("clone cold", {}).get("git-sops")
        if cc is not None:
            out.append(f"- N={n} KMS calls in a cold clone: {cc} for {n} distinct data keys (target ≤ 1 per key): **{'met' if cc <= n else 'MISSED'}**; warm commands: " +
                       ", ".join(f"{op} {calls[op]['git-sops']}" for op in ("checkout warm", "status", "diff", "log -p -1", "check --all") if "git-sops" in calls.get(op, {})))
    for key in big_keys(all_res):
        big = all_res[key]
        for op in ("encrypt", "decrypt"):
            gs, so = big["ops"].get(op, {}).get("git-sops"), big["ops"].get(op, {}).get("sops")
            if gs and so:
                out.append(f"- {big['size'] / 1e6:.1f} MB {big['format'].upper()} {op}: git-sops {fmt_t(gs)} vs sops {fmt_t(so)} ({so / gs:.1f}×; target faster): **{'met' if gs < so else 'MISSED'}**")
    mem = [(all_res[k]["n"], all_res[k]["mem"].get("clone cold", {}).get("git-sops")) for k in sorted(all_res) if k.startswith("N=")]
    mem = [(n, m) for n, m in mem if m]
    if len(mem) > 1:
        out.append("- filter process peak RSS (cold clone): " + ", ".join(f"N={n}: {m / 1024:.1f} MiB" for n, m in mem))
    return out


# ----------------------------------------------------------------------------- main
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="N=100 only, 3 MB big file, fewer runs (~3 minutes)")
    ap.add_argument("--sizes", default="100,1000")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--slow-runs", type=int, default=1, help="runs for sops at N >= 1000")
    ap.add_argument("--big-mb", default="3,10,30", help="sizes of the big files in MB, comma-separated")
    ap.add_argument("--big-runs", type=int, default=3)
    ap.add_argument("--paired-runs", type=int, default=7, help="alternating plain/git-sops runs of warm checkout and status")
    ap.add_argument("--kms-delay-ms", type=int, default=50)
    ap.add_argument("--tools", default=",".join(TOOL_NAMES))
    ap.add_argument("--skip-slow-repeats", action="store_true", default=True,
                    help="at N >= 1000, skip sops' warm checkout and log -p (sops has no cache: same work as clone and diff)")
    ap.add_argument("--out", help="report path (default benches/RESULTS.md, with --quick benches/RESULTS-quick.md)")
    ap.add_argument("--keep", action="store_true", help="keep the scratch directory")
    args = ap.parse_args()
    if args.quick:
        args.sizes, args.runs, args.big_mb, args.big_runs = "100", 3, "3", 1
        args.slow_runs = 1
    if args.out is None:
        args.out = str(ROOT / "benches" / ("RESULTS-quick.md" if args.quick else "RESULTS.md"))
    args.tools = [t for t in args.tools.split(",") if t]
    if "git-crypt" in args.tools and not shutil.which("git-crypt"):
        log("git-crypt not found: leaving it out (scripts/bench installs it)")
        args.tools.remove("git-crypt")
    for p in (GIT_SOPS, SOPS, MOTO, MOTO_PY):
        if not p.exists():
            sys.exit(f"missing {p}: run scripts/bench (it provisions tools and builds git-sops)")

    work = Path(tempfile.mkdtemp(prefix="git-sops-bench-"))
    moto, port = start_moto(work)
    started = time.time()
    try:
        arn = create_kms_key(port)
        proxy = DelayProxy(port, 0.0)
        bench = Bench(args, work, proxy, arn)
        meta = {
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "cpus": os.cpu_count(),
            "kernel": os.uname().release,
            "git": subprocess.run(["git", "--version"], capture_output=True, text=True).stdout.split()[-1],
            "sops": subprocess.run([str(SOPS), "--version", "--disable-version-check"], capture_output=True, text=True).stdout.split()[1],
            "git_crypt": (subprocess.run(["git-crypt", "--version"], capture_output=True, text=True, stdin=subprocess.DEVNULL)
                          .stderr.split() or ["—"])[-1]
            if shutil.which("git-crypt") else "—",
        }
        all_res: dict = {}
        for n in [int(x) for x in args.sizes.split(",")]:
            log(f"N = {n}")
            all_res[f"N={n:05d}"] = bench.suite(n)
        for mb in [int(x) for x in args.big_mb.split(",")]:
            for fmt in ("yaml", "json"):
                log(f"{mb} MB {fmt} file")
                all_res[f"big-{mb:03d}-{fmt}"] = bench.big(mb, fmt)
        meta["elapsed_s"] = round(time.time() - started)
        old = Path(args.out).with_suffix(".json")
        previous = json.loads(old.read_text()) if old.exists() else None
        text = report(all_res, args, meta, previous)
        text += f"\nWhole run: {meta['elapsed_s']} s.\n"
        Path(args.out).write_text(text)
        Path(args.out).with_suffix(".json").write_text(json.dumps({"meta": meta, "results": all_res}, indent=1))
        print(text)
        log(f"wrote {args.out} ({meta['elapsed_s']} s)")
    finally:
        moto.kill()
        moto.wait()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            log(f"scratch kept in {work}")


if __name__ == "__main__":
    main()
