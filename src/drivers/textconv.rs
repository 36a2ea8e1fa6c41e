//! `diff.sops.textconv`: what `git diff`, `git log -p` and `git show` display.
//!
//! git smudges a blob before handing it to textconv, so with a key the input is
//! already plaintext and is printed as it is. Ciphertext (a locked clone, or no
//! smudge) is decrypted when a key is available; otherwise every encrypted value
//! is replaced by a short fingerprint of its ciphertext. Unchanged values keep
//! their ciphertext (the clean filter's byte stability), so a locked reviewer sees
//! exactly which keys changed without seeing a value. The `sops` block is never
//! shown; one summary line of the recipients takes its place.

use crate::formats::{Edit, Format, Scalar};
use crate::sops::walk::{walk, Visit};
use crate::sops::{cipher, decrypt, keycache::KeyCache, keygroups::Keyring, metadata::Metadata};

/// The text to show for `content` of a file named `path`.
/// `keys` is only built for ciphertext input: git runs textconv once per blob per
/// side, and smudged plaintext (the usual input) needs no keys and no git calls.
pub fn render(
    path: &str,
    content: &[u8],
    keys: impl FnOnce() -> KeyCache,
    keyring: &Keyring,
) -> Vec<u8> {
    let Some(format) = Format::from_path(path) else {
        return content.to_vec();
    };
    let store = format.store();
    let Ok(text) = std::str::from_utf8(content) else {
        return content.to_vec();
    };
    let Ok((doc, meta)) = decrypt::load(store, text) else {
        return content.to_vec(); // plaintext (smudged) or not SOPS at all
    };
    let summary = summary_line(&meta);
    if let Ok(key) = keys().recover(&meta, keyring) {
        if let Ok(opened) = decrypt::open(store, text, &doc, &meta, &key, false) {
            let mut out = opened.text.as_bytes().to_vec();
            push_line(&mut out, &summary, doc.newline);
            return out;
        }
    }
    let mut edits = Vec::new();
    let _ = walk(&doc, &mut |visit, _pos| -> Result<(), ()> {
        match visit {
            Visit::Leaf(leaf) => {
                if let Scalar::Str(s) = &leaf.value {
                    if cipher::is_enc(s) {
                        edits.push(Edit::replace(
                            leaf.span.clone(),
                            format!("<encrypted {}>", fingerprint(s)),
                        ));
                    }
                }
            }
            Visit::Comment(c) if cipher::is_enc(&c.text) => {
                edits.push(Edit::replace(
                    c.span.clone(),
                    format!(" <encrypted comment {}>", fingerprint(&c.text)),
                ));
            }
            Visit::Comment(_) => {}
        }
        Ok(())
    });
    edits.extend(store.remove_metadata(text, &doc));
    let mut out = match crate::formats::apply_edits(text, edits) {
        Ok(t) => t.as_bytes().to_vec(),
        Err(_) => content.to_vec(),
    };
    push_line(&mut out, &summary, doc.newline);
    out
}

fn push_line(out: &mut Vec<u8>, line: &str, newline: &str) {
    if !out.is_empty() && !out.ends_with(b"\n") {
        out.extend_from_slice(newline.as_bytes());
    }
    out.extend_from_slice(line.as_bytes());
    out.extend_from_slice(newline.as_bytes());
}

/// Eight hex digits of the SHA-256 of an encrypted value: stable while the value
/// is unchanged, reveals nothing about it.
fn fingerprint(enc: &str) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(&Sha256::digest(enc.as_bytes())[..4])
}

fn summary_line(meta: &Metadata) -> String {
    let keys: Vec<String> = meta
        .all_keys()
        .map(|k| format!("{} {}", k.kind(), k.identifier()))
        .collect();
    format!("# sops: encrypted for {}", keys.join(", "))
}
