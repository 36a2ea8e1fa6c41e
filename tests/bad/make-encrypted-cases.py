#!/usr/bin/env python3
"""Regenerate the encrypted cases in tests/bad/ (run from anywhere).

They are made by the pinned sops 3.11 (scripts/provision-tools) for the *public*
sops test key (age/keysource_test.go in getsops/sops), then corrupted one way each.
`no-matching-key` is encrypted for a throwaway recipient whose identity is discarded.
The plain cases and every .expect file are written by hand.
"""
import base64, os, re, subprocess, sys, tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
SOPS = os.path.join(HERE, "..", "..", "target", "tools", "bin", "sops")
RECIPIENT = "age1lzd99uklcjnc0e7d860axevet2cz99ce9pq6tzuzd05l5nr28ams36nvun"
ENV = dict(os.environ, SOPS_DISABLE_VERSION_CHECK="1")

YAML = """# database settings
user_unencrypted: bob
password: hunter2
list:
  - first
  - second
"""
JSON = '{\n  "user_unencrypted": "bob",\n  "password": "hunter2"\n}\n'


def sops_encrypt(text, ext, recipient=RECIPIENT):
    with tempfile.NamedTemporaryFile("w", suffix="." + ext, delete=False) as f:
        f.write(text)
    try:
        return subprocess.run([SOPS, "encrypt", "--age", recipient, f.name], env=ENV,
                              check=True, capture_output=True, text=True).stdout
    finally:
        os.unlink(f.name)


def write(name, text):
    with open(os.path.join(HERE, name), "w") as f:
        f.write(text)


def enc_of(text, key):
    return re.search(key + r': (ENC\[AES256_GCM,data:([^,]+),iv:([^,]+),tag:([^,]+),type:(\w+)\])', text)


y = sops_encrypt(YAML, "yaml")
j = sops_encrypt(JSON, "json")
write("already-encrypted.yaml", y)

m = enc_of(y, "password")
tag = bytearray(base64.b64decode(m.group(4)))
tag[0] ^= 1
write("tampered-tag.yaml", y.replace(m.group(4), base64.b64encode(bytes(tag)).decode()))
write("truncated-enc.yaml", y.replace(m.group(1), m.group(1)[:40]))
write("bad-base64.yaml", y.replace("data:" + m.group(2), "data:" + m.group(2)[:-2] + "!="))
write("unknown-type.yaml", y.replace(m.group(1), m.group(1).replace("type:str]", "type:blob]")))
write("plain-value-in-encrypted-file.yaml", y.replace(m.group(1), "hunter2"))
write("renamed-key.yaml", y.replace("password: ENC", "passwort: ENC"))
write("mac-mismatch.yaml", y.replace("user_unencrypted: bob", "user_unencrypted: eve"))
write("list-reordered.yaml", re.sub(r"(    - ENC\[[^\n]*\n)(    - ENC\[[^\n]*\n)", r"\2\1", y))
write("mac-mismatch.json", j.replace('"user_unencrypted": "bob"', '"user_unencrypted": "eve"'))
write("no-version.yaml", re.sub(r"\n    version: [^\n]*", "", y))
write("bad-lastmodified.yaml", re.sub(r'lastmodified: "[^"]*"', 'lastmodified: "yesterday"', y))
write("no-keys.yaml", re.sub(r"    age:\n(?:        [^\n]*\n|          [^\n]*\n)*", "", y))
# Flip one character inside the armored data key: no identity can open it.
armor = re.search(r"-----BEGIN AGE ENCRYPTED FILE-----\n\s+(\S+)\n", y)
line = armor.group(1)
bad = line[:20] + ("A" if line[20] != "A" else "B") + line[21:]
write("tampered-data-key.yaml", y.replace(line, bad))

throwaway = subprocess.run(["age-keygen"], capture_output=True, text=True, check=True).stdout
throwaway_recipient = re.search(r"# public key: (\S+)", throwaway).group(1)
write("no-matching-key.yaml", sops_encrypt(YAML, "yaml", throwaway_recipient))
print("no-matching-key recipient:", throwaway_recipient, file=sys.stderr)
