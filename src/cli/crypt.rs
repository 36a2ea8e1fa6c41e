//! `git sops encrypt`, `git sops decrypt` (with `--extract`) and `git sops filestatus`.

use super::args::{DecryptArgs, EncryptArgs, FilestatusArgs};
use super::io::{read_input, write_output, write_output_bytes, Input};
use super::report::{code, Failure};
use std::io::Write;

use zeroize::Zeroizing;

use sops_file::binary;
use sops_file::config;
use sops_file::decrypt;
use sops_file::encrypt::{self, EncryptSpec};
use sops_file::file;
use sops_file::formats::convert::{convert, first_null, ConvertError};
use sops_file::formats::extract::{self, Component};
use sops_file::formats::{apply_edits, find_entry, Format, Value};
use sops_file::keygroups::{Keyring, Recipient};
use sops_file::selectors::Selector;

/// A plaintext in the input format, re-written in the output format when
/// `--output-type` differs (layout and comments do not carry over).
fn converted(input: &Input, plaintext: &str) -> Result<Option<Zeroizing<String>>, Failure> {
    convert_plaintext(&input.name, input.format, input.output_format, plaintext)
}

/// `plaintext` (a `from` file) re-written as `to`; `None` when they are the same.
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
fn binary_only(input: &Input) -> Result<bool, Failure> {
    match (input.format, input.output_format) {
        (Format::Binary, Format::Binary) => Ok(true),
        (Format::Binary, _) | (_, Format::Binary) => Err(Failure::usage(format!(
            "{}: converting between binary and {} is not supported",
            input.name,
            if input.format == Format::Binary {
                input.output_format.name()
            } else {
                input.format.name()
            }
        ))),
        _ => Ok(false),
    }
}

pub fn encrypt(args: &EncryptArgs) -> Result<(), Failure> {
    let input = read_input(&args.io)?;
    let spec = encrypt_spec(args, &input)?;
    if binary_only(&input)? {
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
    if !path.is_empty() {
        return decrypt_extract(args, &input, &path);
    }
    if binary_only(&input)? {
        let bytes = binary::decrypt(&input.bytes, &Keyring::new(), args.ignore_mac)
            .map_err(|e| Failure::from_sops(&input.name, e))?;
        return write_output_bytes(&args.io, &input, &bytes);
    }
    let opened = decrypt::decrypt(
        input.format.store(),
        &input.text,
        &Keyring::new(),
        args.ignore_mac,
    )
    .map_err(|e| Failure::from_sops(&input.name, e))?;
    for w in &opened.warnings {
        eprintln!("git-sops: warning: {}: {w}", input.name);
    }
    match converted(&input, &opened.text)? {
        Some(text) => write_output(&args.io, &input, &text),
        None => write_output(&args.io, &input, &opened.text),
    }
}

/// `decrypt --extract`: decrypt (checking the MAC unless --ignore-mac), then
/// print the one value as sops prints it. A binary file's tree is `{"data":
/// <bytes>}`; a structured file is read again from its plaintext, which is
/// exactly the decrypted tree.
fn decrypt_extract(args: &DecryptArgs, input: &Input, path: &[Component]) -> Result<(), Failure> {
    let out = if input.format == Format::Binary {
        let bytes = binary::decrypt(&input.bytes, &Keyring::new(), args.ignore_mac)
            .map_err(|e| Failure::from_sops(&input.name, e))?;
        extract::extract_binary(&bytes, path)
    } else {
        let opened = decrypt::decrypt(
            input.format.store(),
            &input.text,
            &Keyring::new(),
            args.ignore_mac,
        )
        .map_err(|e| Failure::from_sops(&input.name, e))?;
        for w in &opened.warnings {
            eprintln!("git-sops: warning: {}: {w}", input.name);
        }
        let doc = input
            .format
            .store()
            .parse(&opened.text)
            .map_err(|e| Failure::from_sops(&input.name, e.into()))?;
        extract::extract(&doc, input.format, path, input.output_format)
    }
    .map_err(|e| Failure::extract(&input.name, &e))?;
    write_output_bytes(&args.io, input, &out)
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
fn encrypt_spec(args: &EncryptArgs, input: &Input) -> Result<EncryptSpec, Failure> {
    let context = parse_encryption_context(args.encryption_context.as_deref())?;
    let profile = args.aws_profile.as_deref().unwrap_or("");
    // sops' order for keys from the command line: kms, then age.
    let mut flag_recipients = kms_recipients(&args.kms, &context, profile);
    flag_recipients.extend(age_recipients(&args.age));
    let flag_selector = selector_flag(args)?;
    let mut spec = if flag_recipients.is_empty() {
        let cfg = config::discover(args.config.as_deref())
            .map_err(|e| Failure::input(format!("{}: {e}", input.name)))?
            .ok_or_else(|| {
                Failure::usage(format!(
                    "{}: no recipients: pass --age RECIPIENT, or create a .sops.yaml with creation_rules",
                    input.name
                ))
                .with_hint("`git sops keygen` creates an age identity and prints its recipient")
            })?;
        let mut rule = cfg
            .rule_for(&input.rule_path)
            .map_err(|e| Failure::input(format!("{}: {e}", input.name)))?;
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

fn selector_flag(args: &EncryptArgs) -> Result<Option<Selector>, Failure> {
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
