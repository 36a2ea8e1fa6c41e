//! `git sops encrypt` and `git sops decrypt`.

use super::args::{DecryptArgs, EncryptArgs};
use super::io::{read_input, write_output, Input};
use super::report::Failure;
use crate::sops::config;
use crate::sops::decrypt;
use crate::sops::encrypt::{self, EncryptSpec};
use crate::sops::keygroups::{Keyring, Recipient};
use crate::sops::selectors::Selector;

fn same_format(input: &Input) -> Result<(), Failure> {
    if input.format != input.output_format {
        return Err(Failure::usage(format!(
            "{}: converting {} to {} is not supported; git-sops keeps each file in its own format",
            input.name,
            input.format.name(),
            input.output_format.name()
        )));
    }
    Ok(())
}

pub fn encrypt(args: &EncryptArgs) -> Result<(), Failure> {
    let input = read_input(&args.io)?;
    same_format(&input)?;
    let spec = encrypt_spec(args, &input)?;
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
    let out = encrypt::encrypt(input.format.store(), text, &spec)
        .map_err(|e| Failure::from_sops(&input.name, e))?;
    write_output(&args.io, &input, &out)
}

pub fn decrypt(args: &DecryptArgs) -> Result<(), Failure> {
    let input = read_input(&args.io)?;
    same_format(&input)?;
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
    write_output(&args.io, &input, &opened.text)
}

/// Keys and selectors for a new file: key flags replace `.sops.yaml`'s keys
/// completely; a selector flag overrides the rule's selector (sops' precedence).
fn encrypt_spec(args: &EncryptArgs, input: &Input) -> Result<EncryptSpec, Failure> {
    let flag_recipients: Vec<Recipient> = args
        .age
        .iter()
        .flat_map(|a| a.split(','))
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .map(|a| Recipient::Age(a.to_string()))
        .collect();
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
        let rule = cfg
            .rule_for(&input.rule_path)
            .map_err(|e| Failure::input(format!("{}: {e}", input.name)))?;
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
