#!/usr/bin/env python3
"""Fixtures for files written by other sops versions (tests/foreign.rs).

  tests/foreign/make-fixtures.py generate
      Rewrites tests/foreign/<sops version>/*.enc.* and their *.plain files.
      Needs: python3 with PyYAML, the pinned sops 3.11 (scripts/provision-tools
      puts it in target/tools/bin). The test suite never runs this script.

  tests/foreign/make-fixtures.py verify SOPS_CHECKOUT [OUT_DIR]
      Checks git-sops against the encrypted test files in a local clone of
      getsops/sops (functional-tests/res/, the root example.* files, store test
      fixtures, at every v3.x tag). Their data keys are wrapped by sops'
      published test PGP keys (pgp/sops_functional_tests_key.asc, also its
      2017 version): the script imports them into a throwaway GNUPGHOME, unwraps
      each data key with gpg, wraps it for the public sops age test key and
      inserts that age entry, leaving every other byte as it was (the MAC covers
      the values, not the metadata). Then it compares `sops decrypt` (3.11) with
      `git-sops decrypt` for every file and prints a table. Needs in addition:
      gpg (Debian `gnupg`), age, git, a built git-sops (target/debug). Nothing it
      writes goes into the repository.

How the generated fixtures are made: the pinned sops 3.11 encrypts plaintexts
written below for the public sops age test key, then the metadata block is
rewritten into the shape the named sops version writes (as read from its source
and from its own test files): key order, quoting and list style, triple-quoted
blocks in INI metadata (3.13.0 and 3.13.1), unsorted INI metadata (Go map order, before
3.13), a numeric `version` (sops 1.x), empty `kms`/`gcp_kms`/`azure_kv` lists,
the old `attention` field, and pgp, gcp_kms, azure_kv and hc_vault entries (kept
verbatim by git-sops; their `enc` is filler, since nothing here can unwrap it).
Only metadata other than `lastmodified` and `mac` changes, so the MAC stays
valid. Each `<name>.plain` is what sops 3.11 prints for the fixture.
"""
import base64, hashlib, json, os, random, re, shutil, subprocess, sys, tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
SOPS = os.path.join(ROOT, "target", "tools", "bin", "sops")
RECIPIENT = "age1lzd99uklcjnc0e7d860axevet2cz99ce9pq6tzuzd05l5nr28ams36nvun"
IDENTITY = "AGE-SECRET-KEY-1G0Q5K9TV4REQ3ZSQRMTMG8NSWQGYT0T7TZ33RAZEE0GZYVZN0APSU24RK7"
ENV = dict(os.environ, SOPS_DISABLE_VERSION_CHECK="1", SOPS_AGE_KEY=IDENTITY)
PGP_FP = "FBC7B9E2A4F9289AC0C1D4843D16CEE4A27381B4"

INI = """; database access
[db]
user = admin
password = `s3cr;t#1`
motd = \"\"\"line one
line two\"\"\"
padded = " spaced "

[api]
token_unencrypted = visible
token = abc
"""
DOTENV = "# app settings\nUSER=admin\nPASSWORD=hunter2\nPEM=line one\\nline two\nTOKEN_unencrypted=visible\n"
YAML = """# app settings
db:
    user: admin
    password: hunter2
    # ports
    ports:
        - 5432
        - 5433
ratio: 1.5
enabled: true
token_unencrypted: visible
"""
JSON = '{\n\t"user": "admin",\n\t"password": "hunter2",\n\t"port": 5432\n}\n'


def run(args, **kw):
    return subprocess.run(args, env=ENV, check=True, capture_output=True, **kw)


def sops_encrypt(text, kind):
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
        f.write(text)
    try:
        return run([SOPS, "encrypt", "--input-type", kind, "--output-type", kind,
                    "--age", RECIPIENT, f.name], text=True).stdout
    finally:
        os.unlink(f.name)


def sops_decrypt(path, kind):
    return run([SOPS, "decrypt", "--input-type", kind, "--output-type", kind, path]).stdout


def filler_armor(label, kind="PGP MESSAGE", trailing_newline=False):
    """A well-formed armor block whose content unwraps nothing (deterministic)."""
    data, block = b"", hashlib.sha256(label.encode()).digest()
    while len(data) < 270:
        data += block
        block = hashlib.sha256(block).digest()
    b64 = base64.b64encode(data[:270]).decode()
    lines = [b64[i:i + 64] for i in range(0, len(b64), 64)]
    text = "-----BEGIN %s-----\n\n%s\n=AbCd\n-----END %s-----" % (kind, "\n".join(lines), kind)
    return text + ("\n" if trailing_newline else "")


def flat_meta(pairs_text, sep):
    """(key, value) pairs of sops 3.11's flattened metadata, values unescaped."""
    out = {}
    for line in pairs_text:
        k, v = line.split(sep, 1)
        out[k.strip()] = v.strip().replace("\\n", "\n")
    return out


# ---------------------------------------------------------------------------------
# The shapes
# ---------------------------------------------------------------------------------

def ini_313(version):
    """sops 3.13.0/3.13.1: metadata keys sorted, aligned, newlines in triple quotes."""
    enc = sops_encrypt(INI, "ini")
    body, meta = enc.split("[sops]\n")
    m = flat_meta([l for l in meta.splitlines() if l], "=")
    m["pgp__list_0__map_created_at"] = "2026-05-22T20:15:17Z"
    m["pgp__list_0__map_enc"] = filler_armor(version)
    m["pgp__list_0__map_fp"] = PGP_FP
    m["version"] = version
    width = max(len(k) for k in m)
    lines = []
    for k in sorted(m):
        v = m[k]
        if "\n" in v:
            v = '"""' + v + '"""'
        lines.append("%s = %s" % (k.ljust(width), v))
    return body + "[sops]\n" + "\n".join(lines) + "\n"


def ini_35():
    """sops 3.5: metadata keys in Go's random map order, two pgp keys."""
    enc = sops_encrypt(INI, "ini")
    body, meta = enc.split("[sops]\n")
    m = flat_meta([l for l in meta.splitlines() if l], "=")
    for i, fp in enumerate([PGP_FP, "D7229043384BCC60326C6FB9D8720D957C3D3074"]):
        m["pgp__list_%d__map_created_at" % i] = "2019-12-10T22:45:52Z"
        m["pgp__list_%d__map_enc" % i] = filler_armor("3.5.0-%d" % i)
        m["pgp__list_%d__map_fp" % i] = fp
    m["version"] = "3.5.0"
    keys = sorted(m)
    random.Random(35).shuffle(keys)
    width = max(len(k) for k in m)
    lines = ["%s = %s" % (k.ljust(width), m[k].replace("\n", "\\n")) for k in keys]
    return body + "[sops]\n" + "\n".join(lines) + "\n"


def dotenv_313():
    enc = sops_encrypt(DOTENV, "dotenv")
    body = [l for l in enc.splitlines() if not l.startswith("sops_")]
    m = flat_meta([l[5:] for l in enc.splitlines() if l.startswith("sops_")], "=")
    m["pgp__list_0__map_created_at"] = "2026-05-22T20:15:26Z"
    m["pgp__list_0__map_enc"] = filler_armor("3.13.1-env")
    m["pgp__list_0__map_fp"] = PGP_FP
    m["version"] = "3.13.1"
    meta = ["sops_%s=%s" % (k, m[k].replace("\n", "\\n")) for k in sorted(m)]
    return "\n".join(body + meta) + "\n"


def yaml_meta(enc):
    text = enc.split("\nsops:\n")
    import yaml  # PyYAML
    return text[0] + "\n", yaml.safe_load("sops:\n" + text[1])["sops"]


def block(text, indent):
    return "\n".join((indent + l) if l else "" for l in text.rstrip("\n").split("\n"))


def yaml_331():
    """sops 3.3.1 (go-yaml v2): `-   ` list items under their key, empty kms,
    gcp_kms and azure_kv lists, single-quoted times, pgp after mac."""
    body, m = yaml_meta(sops_encrypt(YAML, "yaml"))
    age = m["age"][0]
    out = body + "sops:\n    kms: []\n    gcp_kms: []\n    azure_kv: []\n"
    out += "    age:\n    -   recipient: %s\n        enc: |\n%s\n" % (
        age["recipient"], block(age["enc"], " " * 12))
    out += "    lastmodified: '%s'\n    mac: %s\n" % (m["lastmodified"], m["mac"])
    out += "    pgp:\n    -   created_at: '2019-08-29T22:42:03Z'\n        enc: |-\n%s\n" % block(
        filler_armor("3.3.1"), " " * 12)
    out += "        fp: %s\n    unencrypted_suffix: _unencrypted\n    version: 3.3.1\n" % PGP_FP
    return out


def yaml_17():
    """sops 1.x: a numeric version, `attention`, lastmodified first."""
    body, m = yaml_meta(sops_encrypt(YAML, "yaml"))
    age = m["age"][0]
    out = body + "sops:\n    lastmodified: '%s'\n" % m["lastmodified"]
    out += "    attention: This section contains key material that should only be modified with extra care. See `sops -h`.\n"
    out += "    mac: %s\n    version: 1.7\n" % m["mac"]
    out += "    age:\n    -   recipient: %s\n        enc: |\n%s\n" % (
        age["recipient"], block(age["enc"], " " * 12))
    out += "    pgp:\n    -   created_at: '2016-02-11T17:26:40Z'\n        enc: |\n%s\n" % block(
        filler_armor("1.7", trailing_newline=True), " " * 12)
    out += "        fp: %s\n" % PGP_FP
    return out


def json_39():
    """sops 3.9 JSON with gcp_kms, azure_kv and hc_vault keys."""
    enc = json.loads(sops_encrypt(JSON, "json"))
    m = enc["sops"]
    meta = {
        "gcp_kms": [{"resource_id": "projects/p/locations/global/keyRings/r/cryptoKeys/k",
                     "created_at": "2024-05-01T10:00:00Z",
                     "enc": base64.b64encode(hashlib.sha256(b"gcp").digest()).decode()}],
        "azure_kv": [{"vault_url": "https://v.vault.azure.net", "name": "k",
                      "version": "0123456789abcdef", "created_at": "2024-05-01T10:00:00Z",
                      "enc": base64.b64encode(hashlib.sha256(b"azure").digest()).decode()}],
        "hc_vault": [{"vault_address": "http://127.0.0.1:8200", "engine_path": "sops",
                      "key_name": "k", "created_at": "2024-05-01T10:00:00Z",
                      "enc": "vault:v1:" + base64.b64encode(hashlib.sha256(b"vault").digest()).decode()}],
        "age": m["age"],
        "lastmodified": m["lastmodified"],
        "mac": m["mac"],
        "unencrypted_suffix": "_unencrypted",
        "version": "3.9.0",
    }
    data = {k: v for k, v in enc.items() if k != "sops"}
    data["sops"] = meta
    return json.dumps(data, indent="\t") + "\n"


SHAPES = [
    ("3.13.1", "app.enc.ini", "ini", lambda: ini_313("3.13.1")),
    ("3.13.0", "app.enc.ini", "ini", lambda: ini_313("3.13.0")),
    ("3.13.1", "app.enc.env", "dotenv", dotenv_313),
    ("3.5.0", "app.enc.ini", "ini", ini_35),
    ("3.3.1", "app.enc.yaml", "yaml", yaml_331),
    ("1.7", "app.enc.yaml", "yaml", yaml_17),
    ("3.9.0", "keys.enc.json", "json", json_39),
]


def generate():
    for version, name, kind, make in SHAPES:
        d = os.path.join(HERE, version)
        os.makedirs(d, exist_ok=True)
        path = os.path.join(d, name)
        with open(path, "w") as f:
            f.write(make())
        with open(path + ".plain", "wb") as f:
            f.write(sops_decrypt(path, kind))
        print("wrote", os.path.relpath(path, ROOT))


# ---------------------------------------------------------------------------------
# verify: sops' own test files, re-wrapped for the age test key
# ---------------------------------------------------------------------------------

def gpg_unwrap(gnupghome, armored):
    r = subprocess.run(["gpg", "--homedir", gnupghome, "--batch", "--quiet", "--decrypt"],
                       input=armored.encode(), capture_output=True)
    return r.stdout if r.returncode == 0 else None


def age_wrap(key):
    return subprocess.run(["age", "-r", RECIPIENT, "-a"], input=key, capture_output=True,
                          check=True).stdout.decode()


def pgp_encs(name, text):
    """The wrapped data keys of a file's pgp entries."""
    if name.endswith((".ini", ".env")):
        lines = iter(text.split("\n"))
        encs = []
        for line in lines:
            m = re.match(r"(?:sops_)?pgp__list_\d+__map_enc\s*=\s*(.*)$", line)
            if not m:
                continue
            v = m.group(1)
            if v.startswith('"""'):
                v = v[3:]
                while not v.endswith('"""'):
                    v += "\n" + next(lines)
                v = v[:-3]
            encs.append(v.replace("\\n", "\n"))
        return encs
    if name.endswith((".json", ".txt")):
        meta = json.loads(text)["sops"]
    else:
        import yaml
        meta = [d for d in yaml.safe_load_all(text) if d][0]["sops"]
    return [k["enc"] for k in (meta.get("pgp") or [])]


def rewrap(name, text, key):
    enc = age_wrap(key)
    if name.endswith(".yaml"):
        lines = text.split("\n")
        i = lines.index("sops:")
        child = next(l for l in lines[i + 1:] if l.strip())
        ind = len(child) - len(child.lstrip())
        entry = [" " * ind + "age:", " " * 2 * ind + "- recipient: " + RECIPIENT,
                 " " * (2 * ind + 2) + "enc: |"]
        entry += [" " * (2 * ind + 4) + l for l in enc.rstrip("\n").split("\n")]
        lines = [l for l in lines if l != " " * ind + "age: []"]
        j = next(n for n in range(i + 1, len(lines)) if lines[n].startswith(" " * ind + "lastmodified:"))
        lines[j:j] = entry
        return "\n".join(lines)
    if name.endswith((".json", ".txt")):
        m = re.search(r'"sops": \{\n([ \t]*)', text)
        ins = '"age": [{"recipient": %s, "enc": %s}],\n%s' % (json.dumps(RECIPIENT), json.dumps(enc), m.group(1))
        return text[:m.end()] + ins + text[m.end():]
    if name.endswith(".ini"):
        triple = '"""' in text.split("[sops]")[1]
        v = '"""' + enc + '"""' if triple else enc.replace("\n", "\\n")
        p = text.index("[sops]\n") + len("[sops]\n")
        return text[:p] + "age__list_0__map_enc = %s\nage__list_0__map_recipient = %s\n" % (v, RECIPIENT) + text[p:]
    p = text.index("sops_lastmodified=")
    return text[:p] + "sops_age__list_0__map_enc=%s\nsops_age__list_0__map_recipient=%s\n" % (
        enc.replace("\n", "\\n"), RECIPIENT) + text[p:]


def verify(checkout, out_dir):
    git = lambda *a: subprocess.run(["git", "-C", checkout] + list(a), capture_output=True,
                                    text=True, check=True).stdout
    gnupghome = tempfile.mkdtemp(prefix="sops-test-gpg-")
    for rev in ["HEAD", "be4a35e7f"]:  # the current and the 2017 test keys
        key = git("show", rev + ":pgp/sops_functional_tests_key.asc")
        subprocess.run(["gpg", "--homedir", gnupghome, "--batch", "--import"], input=key.encode(),
                       capture_output=True)
    tags = [t for t in git("tag").split() if re.match(r"^v?3\.", t)] + ["HEAD"]
    seen = {}
    for tag in tags:
        for path in git("grep", "-l", "ENC\\[AES256_GCM", tag, "--", "*.yaml", "*.json", "*.ini",
                        "*.env", "example.txt").split():
            path = path.split(":", 1)[1]
            blob = git("rev-parse", "%s:%s" % (tag, path)).strip()
            seen.setdefault(blob, (tag, path))
    os.makedirs(out_dir, exist_ok=True)
    gitsops = os.path.join(ROOT, "target", "debug", "git-sops")
    same = differ = both_fail = 0
    for blob, (tag, path) in sorted(seen.items(), key=lambda x: x[1]):
        text = git("show", blob)
        name = "%s-%s" % (blob[:8], os.path.basename(path))
        key = next((k for k in (gpg_unwrap(gnupghome, e) for e in pgp_encs(name, text)) if k), None)
        if key is None:
            print("%-45s %-8s no test key opens it" % (name, tag))
            continue
        f = os.path.join(out_dir, name)
        with open(f, "w") as fh:
            fh.write(rewrap(name, text, key))
        s = subprocess.run([SOPS, "decrypt", f], env=ENV, capture_output=True)
        o = subprocess.run([gitsops, "decrypt", f], env=ENV, capture_output=True)
        if s.returncode == 0 and o.returncode == 0:
            verdict = "same bytes" if s.stdout == o.stdout else "differ (layout kept?)"
            same += s.stdout == o.stdout
            differ += s.stdout != o.stdout
        elif s.returncode and o.returncode:
            verdict = "both refuse (sops %d, git-sops %d)" % (s.returncode, o.returncode)
            both_fail += 1
        else:
            verdict = "MISMATCH: sops %d, git-sops %d: %s" % (
                s.returncode, o.returncode, (o.stderr or s.stderr).decode()[:200])
        print("%-45s %-8s %s" % (name, tag, verdict))
    shutil.rmtree(gnupghome, ignore_errors=True)
    print("%d same, %d differ, %d refused by both" % (same, differ, both_fail))


if __name__ == "__main__":
    if sys.argv[1:2] == ["generate"]:
        generate()
    elif sys.argv[1:2] == ["verify"] and len(sys.argv) >= 3:
        verify(sys.argv[2], sys.argv[3] if len(sys.argv) > 3 else tempfile.mkdtemp(prefix="sops-foreign-"))
    else:
        sys.exit(__doc__)
