//! `git sops encrypt`, `git sops decrypt` (with `--extract`) and `git sops filestatus`.

use super::args::{DecryptArgs, EncryptArgs, FilestatusArgs, NewFileArgs};
use super::io::{read_input, write_output, write_output_bytes, Input};
use super::report::{code, Failure};
use crate::drivers::staged::Protected;
use std::io::Write;

use zeroize::Zeroizing;

use sops_file::binary;
use sops_file::config;
use sops_file::decrypt;
use sops_file::encrypt::{self, EncryptSpec};
use sops_file::file;
use sops_file::formats::convert::{convert, first_null, ConvertError};
use sops_file::formats::extract;
use sops_file::formats::{apply_edits, find_entry, Format, Value};
use sops_file::keygroups::{Keyring, Recipient};
use sops_file::selectors::Selector;

/// `plaintext` (a `from` file) re-written as `to` when `--output-type` differs
/// (layout and comments do not carry over); `None` when they are the same.
pub(super) fn convert_plaintext(
    name: &str,
    from: Format,
    to: Format,
    plaintext: &str,
) -> Result<Option<Zeroizing<String>>, Failure> {
    if from == to {
        return Ok(None);
    }
    let doc = from
        .store()
        .parse(plaintext)
        .map_err(|e| Failure::from_sops(name, e.into()))?;
    convert(&doc, from, to)
        .map(Some)
        .map_err(|e| conversion_failure(name, to, e))
}

fn conversion_failure(name: &str, to: Format, e: ConvertError) -> Failure {
    let code = match e {
        ConvertError::Documents(_) | ConvertError::Unsupported(_) => code::GENERIC,
        _ => code::ERROR_DUMPING_TREE,
    };
    Failure::new(
        format!("{name}: cannot write it as {}: {e}", to.name()),
        code,
    )
}

/// Encrypting into another format works as in sops: the document is encrypted in
/// its own format (so values keep their type tags and comments are encrypted),
/// then the encrypted tree is written in the output format (an `ENC[...]` value
/// is a string there like any other) with the metadata stored the way that
/// format stores it.
fn encrypt_then_convert(input: &Input, encrypted: &str) -> Result<String, Failure> {
    let store = input.format.store();
    let fail = |e: sops_file::formats::FormatError| Failure::from_sops(&input.name, e.into());
    let doc = store.parse(encrypted).map_err(fail)?;
    let meta = doc
        .docs
        .first()
        .and_then(|root| find_entry(root, "sops"))
        .map(|e| Value::from_node(&e.value))
        .ok_or_else(|| Failure::input(format!("{}: internal: no metadata", input.name)))?;
    let body = apply_edits(encrypted, store.remove_metadata(encrypted, &doc))
        .map_err(|e| Failure::input(format!("{}: internal: {e}", input.name)))?;
    let body_doc = store.parse(&body).map_err(fail)?;
    let flat = matches!(input.output_format, Format::Dotenv | Format::Ini);
    if let Some(key) = first_null(&body_doc).filter(|_| flat) {
        return Err(Failure::new(
            format!(
                "{}: cannot write it as {}: {key:?} is null, which {} cannot hold (sops writes `<nil>`, which no tool can decrypt); give it a value or remove it",
                input.name,
                input.output_format.name(),
                input.output_format.name()
            ),
            code::ERROR_DUMPING_TREE,
        ));
    }
    let text = convert(&body_doc, input.format, input.output_format)
        .map_err(|e| conversion_failure(&input.name, input.output_format, e))?;
    let out_store = input.output_format.store();
    let out_doc = out_store.parse(&text).map_err(fail)?;
    let out = apply_edits(&text, out_store.insert_metadata(&text, &out_doc, &meta))
        .map_err(|e| Failure::input(format!("{}: internal: {e}", input.name)))?;
    out_store.parse(&out).map_err(fail)?;
    Ok(out.to_string())
}

/// Binary files are bytes in a JSON envelope: they convert to nothing else.
fn binary_only(name: &str, format: Format, output: Format) -> Result<bool, Failure> {
    match (format, output) {
        (Format::Binary, Format::Binary) => Ok(true),
        (Format::Binary, other) | (other, Format::Binary) => Err(Failure::usage(format!(
            "{name}: converting between binary and {} is not supported",
            other.name()
        ))),
        _ => Ok(false),
    }
}

pub fn encrypt(args: &EncryptArgs) -> Result<(), Failure> {
    let input = read_input(&args.io)?;
    let spec = encrypt_spec(&args.keys, &input.name, &input.rule_path)?;
    if binary_only(&input.name, input.format, input.output_format)? {
        let out =
            binary::encrypt(&input.bytes, &spec).map_err(|e| Failure::from_sops(&input.name, e))?;
        return write_output(&args.io, &input, &out);
    }
    let mut text: &str = &input.text;
    if !input.format.sops_accepts_bom() {
        if let Some(rest) = text.strip_prefix('\u{feff}') {
            eprintln!(
                "git-sops: warning: {}: dropped the UTF-8 byte order mark, which sops cannot read in {} files",
                input.name,
                input.format.name()
            );
            text = rest;
        }
    }
    if input.format != input.output_format {
        let encrypted = encrypt::encrypt(input.format.store(), text, &spec)
            .map_err(|e| Failure::from_sops(&input.name, e))?;
        let out = encrypt_then_convert(&input, &encrypted)?;
        return write_output(&args.io, &input, &out);
    }
    let out = encrypt::encrypt(input.format.store(), text, &spec)
        .map_err(|e| Failure::from_sops(&input.name, e))?;
    write_output(&args.io, &input, &out)
}

pub fn decrypt(args: &DecryptArgs) -> Result<(), Failure> {
    // As sops: an empty path (`""`, `[`) means the whole file.
    let path = match args.extract.as_deref() {
        Some(p) => extract::parse_path(p).map_err(|e| Failure::tree_path(&e))?,
        None => Vec::new(),
    };
    let input = read_input(&args.io)?;
    let explicit = args.io.input_type.is_some().then_some(input.format);
    let protected = match &input.path {
        Some(p) => Protected::plaintext(p, explicit)?,
        None => None,
    };
    let (format, plaintext) = match protected {
        // Already plaintext on disk (the filter smudged it).
        Some(p) => (p.format, Zeroizing::new(input.content().to_vec())),
        None => (
            input.format,
            decrypt_content(&input.name, input.format, input.content(), args.ignore_mac)?,
        ),
    };
    if !path.is_empty() {
        let out = if format == Format::Binary {
            extract::extract_binary(&plaintext, &path)
        } else {
            let doc = format
                .store()
                .parse(as_text(&input.name, &plaintext)?)
                .map_err(|e| Failure::from_sops(&input.name, e.into()))?;
            extract::extract(&doc, format, &path, input.output_format)
        }
        .map_err(|e| Failure::extract(&input.name, &e))?;
        return write_output_bytes(&args.io, &input, &out);
    }
    if binary_only(&input.name, format, input.output_format)? {
        return write_output_bytes(&args.io, &input, &plaintext);
    }
    let text = as_text(&input.name, &plaintext)?;
    match convert_plaintext(&input.name, format, input.output_format, text)? {
        Some(converted) => write_output(&args.io, &input, &converted),
        None => write_output(&args.io, &input, text),
    }
}

/// What the SOPS file `content` (of `format`) decrypts to: a binary file's
/// bytes, a text file's text. The MAC is checked unless `ignore_mac`.
pub(super) fn decrypt_content(
    name: &str,
    format: Format,
    content: &[u8],
    ignore_mac: bool,
) -> Result<Zeroizing<Vec<u8>>, Failure> {
    let keyring = Keyring::new();
    if format == Format::Binary {
        return binary::decrypt(content, &keyring, ignore_mac)
            .map_err(|e| Failure::from_sops(name, e));
    }
    let mut opened = decrypt::decrypt(
        format.store(),
        as_text(name, content)?,
        &keyring,
        ignore_mac,
    )
    .map_err(|e| Failure::from_sops(name, e))?;
    for w in &opened.warnings {
        eprintln!("git-sops: warning: {name}: {w}");
    }
    // Moved, not copied: the plaintext stays in one zeroizing buffer.
    Ok(Zeroizing::new(
        std::mem::take(&mut *opened.text).into_bytes(),
    ))
}

/// A text format's plaintext as text.
pub(super) fn as_text<'a>(name: &str, bytes: &'a [u8]) -> Result<&'a str, Failure> {
    std::str::from_utf8(bytes).map_err(|e| {
        Failure::input(format!(
            "{name}: not UTF-8 text (invalid byte at offset {})",
            e.valid_up_to()
        ))
    })
}

/// `filestatus FILE`: sops' one line of JSON. The file on disk is what is
/// judged; inside a git-sops working tree a protected file is plaintext there,
/// so it is `{"encrypted":false}` as sops says too.
pub fn filestatus(args: &FilestatusArgs) -> Result<(), Failure> {
    let Some(path) = &args.file else {
        return Err(Failure::new(
            "no file specified: git sops filestatus FILE".to_string(),
            code::NO_FILE_SPECIFIED,
        ));
    };
    let name = path.display().to_string();
    let format = match &args.input_type {
        Some(t) => Format::from_name(t).ok_or_else(|| {
            Failure::usage(format!(
                "--input-type {t:?} is not supported; git-sops reads yaml, json, dotenv, ini and binary"
            ))
        })?,
        None => Format::detect(&name),
    };
    let bytes = Zeroizing::new(
        std::fs::read(path).map_err(|e| Failure::io(format!("{name}: cannot read it: {e}")))?,
    );
    let encrypted = file::status(format, &bytes).map_err(|e| {
        let mut f = Failure::from_sops(&name, e);
        // sops fails with its generic code on whatever it cannot read.
        f.exit_code = code::GENERIC;
        f.hint = None;
        f
    })?;
    let line = if encrypted {
        "{\"encrypted\":true}\n"
    } else {
        "{\"encrypted\":false}\n"
    };
    let mut out = std::io::stdout().lock();
    out.write_all(line.as_bytes())
        .and_then(|_| out.flush())
        .map_err(|e| Failure::io(format!("cannot write to standard output: {e}")))
}

/// Keys and selectors for a new file: key flags replace `.sops.yaml`'s keys
/// completely; a selector flag overrides the rule's selector (sops' precedence).
pub(super) fn encrypt_spec(
    args: &NewFileArgs,
    name: &str,
    rule_path: &str,
) -> Result<EncryptSpec, Failure> {
    let context = parse_encryption_context(args.encryption_context.as_deref())?;
    let profile = args.aws_profile.as_deref().unwrap_or("");
    // sops' order for keys from the command line: kms, then age.
    let mut flag_recipients = kms_recipients(&args.kms, &context, profile);
    flag_recipients.extend(age_recipients(&args.age));
    let flag_selector = selector_flag(args)?;
    let mut spec = if flag_recipients.is_empty() {
        let cfg = config::discover(args.config.as_deref())
            .map_err(|e| Failure::input(format!("{}: {e}", name)))?
            .ok_or_else(|| {
                Failure::usage(format!(
                    "{}: no recipients: pass --age RECIPIENT, or create a .sops.yaml with creation_rules",
                    name
                ))
                .with_hint("`git sops keygen` creates an age identity and prints its recipient")
            })?;
        let mut rule = cfg
            .rule_for(rule_path)
            .map_err(|e| Failure::input(format!("{}: {e}", name)))?;
        // sops applies --encryption-context to the rule's `kms` keys (a key
        // group's `kms` entries carry their own `context`).
        if !context.is_empty() {
            for r in rule.key_groups.iter_mut().flatten() {
                if let Recipient::Kms { context: c, .. } = r {
                    if c.is_empty() {
                        c.clone_from(&context);
                    }
                }
            }
        }
        EncryptSpec {
            key_groups: rule.key_groups,
            shamir_threshold: rule.shamir_threshold,
            selector: rule.selector,
            mac_only_encrypted: rule.mac_only_encrypted,
        }
    } else {
        EncryptSpec {
            key_groups: vec![flag_recipients],
            shamir_threshold: 0,
            selector: None,
            mac_only_encrypted: false,
        }
    };
    if flag_selector.is_some() {
        spec.selector = flag_selector;
    }
    if args.mac_only_encrypted {
        spec.mac_only_encrypted = true;
    }
    if let Some(t) = args.shamir_secret_sharing_threshold {
        spec.shamir_threshold = t;
    }
    Ok(spec)
}

/// age recipients from repeatable, comma-separated flags.
pub(super) fn age_recipients(flags: &[String]) -> Vec<Recipient> {
    flags
        .iter()
        .flat_map(|a| a.split(','))
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .map(|a| Recipient::Age(a.to_string()))
        .collect()
}

/// KMS recipients from repeatable, comma-separated `ARN[+ROLE_ARN]` flags; as in
/// sops, the encryption context and the profile apply to every one of them.
pub(super) fn kms_recipients(
    flags: &[String],
    context: &[(String, String)],
    profile: &str,
) -> Vec<Recipient> {
    flags
        .iter()
        .flat_map(|a| a.split(','))
        .filter(|a| !a.trim().is_empty())
        .map(|a| {
            let mut r = config::parse_kms_arn(a, profile);
            if let Recipient::Kms { context: c, .. } = &mut r {
                *c = context.to_vec();
            }
            r
        })
        .collect()
}

/// `--encryption-context key:value,key2:value2`, parsed as sops parses it (each
/// pair must split on `:` into exactly two parts), sorted by key.
pub(super) fn parse_encryption_context(
    flag: Option<&str>,
) -> Result<Vec<(String, String)>, Failure> {
    let Some(text) = flag.filter(|t| !t.is_empty()) else {
        return Ok(Vec::new());
    };
    let mut out: Vec<(String, String)> = Vec::new();
    for pair in text.split(',') {
        let parts: Vec<&str> = pair.split(':').collect();
        let [k, v] = parts.as_slice() else {
            return Err(Failure::new(
                format!("--encryption-context: {pair:?} is not a key:value pair; expected key:value,key2:value2 (a value cannot contain ':' or ',')"),
                code::INVALID_KMS_ENCRYPTION_CONTEXT,
            ));
        };
        out.retain(|(existing, _)| existing != k);
        out.push((k.to_string(), v.to_string()));
    }
    out.sort();
    Ok(out)
}

fn selector_flag(args: &NewFileArgs) -> Result<Option<Selector>, Failure> {
    let flags = [
        ("unencrypted_suffix", &args.unencrypted_suffix),
        ("encrypted_suffix", &args.encrypted_suffix),
        ("unencrypted_regex", &args.unencrypted_regex),
        ("encrypted_regex", &args.encrypted_regex),
        ("unencrypted_comment_regex", &args.unencrypted_comment_regex),
        ("encrypted_comment_regex", &args.encrypted_comment_regex),
    ];
    for (field, value) in flags {
        if let Some(pattern) = value {
            let selector = Selector::new(field, pattern).map_err(|e| {
                Failure::usage(format!(
                    "--{}: invalid regular expression: {e}",
                    field.replace('_', "-")
                ))
            })?;
            return Ok(Some(selector));
        }
    }
    Ok(None)
}
