//! `diff.sops.textconv`: what `git diff`, `git log -p` and `git show` display.
//!
//! git smudges a blob before handing it to textconv, so with a key the input is
//! already plaintext and is printed as it is. Ciphertext (a locked clone, or no
//! smudge) is decrypted when a key is available; otherwise every encrypted value
//! is replaced by a short fingerprint of its ciphertext. Unchanged values keep
//! their ciphertext (the clean filter's byte stability), so a locked reviewer sees
//! exactly which keys changed without seeing a value. The `sops` block is never
//! shown; one summary line of the recipients takes its place.
//!
//! The output is plaintext and is built in zeroizing buffers. The fingerprint
//! rendering of ciphertext holds nothing secret and uses plain ones.

use zeroize::Zeroizing;

use sops_file::formats::{Edit, Scalar};
use sops_file::walk::{walk, Visit};
use sops_file::{cipher, file, keycache::KeyCache, keygroups::Keyring, metadata::Metadata};

/// The text to show for `content` of a file named `path` (git's temporary copy:
/// only its base name, hence its extension, is the real one).
/// `keys` is only built for ciphertext input: git runs textconv once per blob per
/// side, and smudged plaintext (the usual input) needs no keys and no git calls.
/// `hide`: git caches this output (`diff.sops.cachetextconv`), so nothing
/// decrypted may be printed: ciphertext is shown as fingerprints even with a
/// key, and plaintext input as its structure with every value hidden.
pub fn render(
    path: &str,
    content: &[u8],
    keys: impl FnOnce() -> KeyCache,
    keyring: &Keyring,
    hide: bool,
) -> Zeroizing<Vec<u8>> {
    let Some(loaded) = file::sniff(path, content) else {
        // Plaintext (smudged) or not SOPS at all.
        return if hide {
            Zeroizing::new(hidden(path, content))
        } else {
            plaintext(content)
        };
    };
    let format = loaded.format();
    let summary = summary_line(&loaded.meta);
    let key = if hide {
        None
    } else {
        keys().recover(&loaded.meta, keyring).ok()
    };
    if let Some(key) = key {
        if let Ok(opened) = loaded.open(&key) {
            // Text formats always decrypt to text; a binary secret may not.
            let mut out = plaintext(&opened.plaintext);
            // Room for the summary line first: growing would leave a copy behind.
            let mut grown = Zeroizing::new(Vec::with_capacity(out.len() + summary.len() + 4));
            grown.extend_from_slice(&out);
            out = grown;
            push_line(&mut out, &summary, loaded.document().0.newline);
            return out;
        }
    }
    let (doc, text) = loaded.document();
    let store = format.store();
    let mut edits = Vec::new();
    let _ = walk(doc, &mut |visit, _pos| -> Result<(), ()> {
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
    edits.extend(store.remove_metadata(text, doc));
    let mut out = match sops_file::formats::apply_edits(text, edits) {
        Ok(t) => t.as_bytes().to_vec(),
        Err(_) => content.to_vec(),
    };
    push_line(&mut out, &summary, doc.newline);
    Zeroizing::new(out)
}

/// Plaintext with every value and comment replaced by a placeholder: the key
/// structure, which a SOPS file shows in the clear anyway, and nothing else.
fn hidden(path: &str, content: &[u8]) -> Vec<u8> {
    let note = "# git-sops: values hidden because diff.sops.cachetextconv is set (git would store this output)";
    let parsed = std::str::from_utf8(content)
        .ok()
        .and_then(|text| Some((text, file::parse_plaintext(path, text)?)));
    let Some((text, doc)) = parsed else {
        return format!("<content hidden, {} bytes>\n{note}\n", content.len()).into_bytes();
    };
    let mut edits = Vec::new();
    let _ = walk(&doc, &mut |visit, _pos| -> Result<(), ()> {
        match visit {
            Visit::Leaf(leaf) if leaf.value != Scalar::Null => {
                edits.push(Edit::replace(leaf.span.clone(), "<hidden>".to_string()));
            }
            Visit::Comment(c) if !c.text.trim().is_empty() => {
                edits.push(Edit::replace(
                    c.span.clone(),
                    " <hidden comment>".to_string(),
                ));
            }
            _ => {}
        }
        Ok(())
    });
    match sops_file::formats::apply_edits(text, edits) {
        Ok(t) => {
            let mut out = t.as_bytes().to_vec();
            push_line(&mut out, note, doc.newline);
            out
        }
        Err(_) => format!("<content hidden, {} bytes>\n{note}\n", content.len()).into_bytes(),
    }
}

/// Plaintext as it is when it is text; a one-line summary for binary data,
/// which git would otherwise print byte for byte (textconv output is never
/// treated as binary). The hash shows that the content changed.
fn plaintext(content: &[u8]) -> Zeroizing<Vec<u8>> {
    if std::str::from_utf8(content).is_ok() && !content.contains(&0) {
        return Zeroizing::new(content.to_vec());
    }
    use sha2::{Digest, Sha256};
    format!(
        "<binary data, {} bytes, sha256 {}>\n",
        content.len(),
        &hex::encode(Sha256::digest(content))[..16]
    )
    .into_bytes()
    .into()
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
