//! `git sops set FILE PATH VALUE` and `git sops unset FILE PATH`, with sops
//! 3.11's arguments, flags and exit codes (`cmd/sops/main.go`, `set.go`,
//! `unset.go`). The tree semantics and the format-preserving edits are the
//! library's (`sops_file::formats::set`); this module reads the arguments,
//! decrypts, applies the edits and writes the result.
//!
//! Unlike sops, which decrypts, changes the tree and re-encrypts the whole
//! file in its own layout, the change is made to the *plaintext text* and
//! sealed with the file's own data key and IV stash: every other value keeps
//! its exact ciphertext, so the file's diff is the changed value plus `mac`
//! and `lastmodified` (README "Commands", docs/architecture.md §4.8).
//!
//! Inside a git-sops working tree a protected file is plaintext on disk (the
//! filter smudged it): then the plaintext file is edited in place, and the
//! next `git add` encrypts it, keeping every unchanged value's ciphertext.

use std::ffi::OsString;
use std::io::Read;
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use super::args::{SetArgs, UnsetArgs};
use super::crypt::{as_text, convert_plaintext};
use super::io::{format_named, write_atomically};
use super::report::{code, Failure};
use crate::drivers::staged::Protected;
use sops_file::decrypt::Check;
use sops_file::file;
use sops_file::formats::extract::{parse_path, Component};
use sops_file::formats::set::{self as tree, UnsetError};
use sops_file::formats::{apply_edits, Edit, Format, Node, Scalar};
use sops_file::keygroups::{self, Keyring};
use sops_file::Error;

/// The file, what it is, and how to write it back.
struct Target {
    path: PathBuf,
    name: String,
    format: Format,
    /// `--input-type`, which overrides the `sops-type` attribute in git.
    explicit: Option<Format>,
    output: Format,
    ignore_mac: bool,
}

fn target(
    file: &OsString,
    input_type: Option<&str>,
    output_type: Option<&str>,
    ignore_mac: bool,
) -> Result<Target, Failure> {
    let path = PathBuf::from(file);
    let name = path.display().to_string();
    let explicit = input_type
        .map(|t| format_named(t, "--input-type"))
        .transpose()?;
    let format = explicit.unwrap_or_else(|| Format::detect(&name));
    let output = match output_type {
        Some(t) => format_named(t, "--output-type")?,
        None => format,
    };
    Ok(Target {
        path,
        name,
        format,
        explicit,
        output,
        ignore_mac,
    })
}

fn tree_path(arg: &OsString) -> Result<Vec<Component>, Failure> {
    let text = arg.to_str().ok_or_else(|| Failure::set_path(None))?;
    parse_path(text).map_err(|e| Failure::set_path(Some(&e)))
}

pub fn set(args: &SetArgs) -> Result<(), Failure> {
    if args.value_file && args.value_stdin {
        return Err(Failure::new(
            "cannot use both --value-file and --value-stdin".into(),
            code::GENERIC,
        ));
    }
    let wanted = if args.value_stdin { 2 } else { 3 };
    if args.args.len() != wanted {
        return Err(Failure::new(
            if args.value_stdin {
                "need precisely 2 arguments with --value-stdin: git sops set --value-stdin FILE PATH".into()
            } else {
                "need precisely 3 arguments: git sops set FILE PATH VALUE (VALUE is JSON: '\"text\"', 1, {\"a\": true})".into()
            },
            code::NO_FILE_SPECIFIED,
        ));
    }
    let t = target(
        &args.args[0],
        args.common.input_type.as_deref(),
        args.common.output_type.as_deref(),
        args.common.ignore_mac,
    )?;
    let path = tree_path(&args.args[1])?;
    let raw = read_value(args)?;
    let text = as_text("VALUE", &raw)?;
    let value = tree::parse_value(text).map_err(|e| Failure::set_value(&e))?;
    drop(raw);
    if t.format == Format::Binary && t.output == Format::Binary {
        return set_binary(&t, &path, &value, args.idempotent);
    }
    edit(&t, args.idempotent, |format, src, doc| {
        let out = tree::set(format.store(), src, doc, &path, &value)
            .map_err(|e| Failure::set(&t.name, &e))?;
        Ok(Some((out.edits, out.changed)))
    })
}

pub fn unset(args: &UnsetArgs) -> Result<(), Failure> {
    if args.args.len() != 2 {
        return Err(Failure::new(
            "need precisely 2 arguments: git sops unset FILE PATH".into(),
            code::NO_FILE_SPECIFIED,
        ));
    }
    let t = target(
        &args.args[0],
        args.common.input_type.as_deref(),
        args.common.output_type.as_deref(),
        args.common.ignore_mac,
    )?;
    let path = tree_path(&args.args[1])?;
    edit(&t, false, |format, src, doc| {
        match tree::unset(format.store(), src, doc, &path) {
            Ok(edits) => Ok(Some((edits, true))),
            // sops: `--idempotent` succeeds when the path is not there.
            Err(UnsetError::NotFound(_)) if args.idempotent => Ok(None),
            Err(e) => Err(Failure::unset(&t.name, &e)),
        }
    })
}

/// `set` on a binary file: sops' tree of one string `data`. Only that value,
/// and only as a string, can be set; sops accepts other paths and values and
/// writes a file that no longer decrypts (`unset` likewise, so it is refused
/// in `edit`).
fn set_binary(
    t: &Target,
    path: &[Component],
    value: &Node,
    idempotent: bool,
) -> Result<(), Failure> {
    let data = match (path, value) {
        ([Component::Key(k)], Node::Leaf(leaf)) if k.as_slice() == b"data" => match &leaf.value {
            Scalar::Str(s) => Zeroizing::new(s.as_bytes().to_vec()),
            _ => {
                return Err(binary_refusal(
                    t,
                    "its one value `[\"data\"]` must be set to a JSON string",
                ))
            }
        },
        _ => {
            return Err(binary_refusal(
                t,
                "it holds one value, `[\"data\"]`, and nothing else can be set",
            ))
        }
    };
    let on_disk = Zeroizing::new(std::fs::read(&t.path).map_err(|e| {
        Failure::new(
            format!("{}: cannot read it: {e}", t.name),
            code::COULD_NOT_READ_INPUT_FILE,
        )
    })?);
    if Protected::plaintext(&t.path, t.explicit)?.is_some() {
        // The working-tree copy is the secret's bytes; `git add` encrypts them.
        if idempotent && on_disk[..] == data[..] {
            return Ok(());
        }
        return write(t, &data);
    }
    let src = as_text(&t.name, &on_disk)?;
    let loaded = file::read(Format::Binary, src).map_err(|e| Failure::from_sops(&t.name, e))?;
    let key = keygroups::recover(&loaded.meta, &Keyring::new())
        .map_err(|e| Failure::from_sops(&t.name, Error::Keys(e)))?;
    let check = if t.ignore_mac {
        Check::IgnoreMac
    } else {
        Check::Mac
    };
    let mut opened = loaded
        .open_with(&key, check)
        .map_err(|e| Failure::from_sops(&t.name, e))?;
    if idempotent && opened.plaintext[..] == data[..] {
        return Ok(());
    }
    let mut meta = loaded.meta.clone();
    let out = file::seal(Format::Binary, &data, &key, &mut meta, &mut opened.ivs)
        .map_err(|e| Failure::from_sops(&t.name, e))?;
    write(t, &out)
}

fn binary_refusal(t: &Target, why: &str) -> Failure {
    Failure::input(format!(
        "{}: a binary file is one value: {why} (sops would write a file that no longer decrypts); nothing was written",
        t.name
    ))
}

/// VALUE's bytes: the argument, the file it names, or standard input.
fn read_value(args: &SetArgs) -> Result<Zeroizing<Vec<u8>>, Failure> {
    let mut buf = Zeroizing::new(Vec::new());
    if args.value_stdin {
        std::io::stdin()
            .read_to_end(&mut buf)
            .map_err(|e| Failure::io(format!("cannot read the value from standard input: {e}")))?;
    } else if args.value_file {
        let file = Path::new(&args.args[2]);
        std::fs::File::open(file)
            .and_then(|mut f| f.read_to_end(&mut buf))
            .map_err(|e| {
                Failure::io(format!(
                    "{}: cannot read the value from it: {e}",
                    file.display()
                ))
            })?;
    } else {
        let arg = args.args[2]
            .to_str()
            .ok_or_else(|| Failure::set_value(&tree::ValueError::NotJson))?;
        buf.extend_from_slice(arg.as_bytes());
    }
    Ok(buf)
}

/// What a change does to a document: its edits and sops' `changed`, or
/// `None` for "nothing to do, exit 0" (`unset --idempotent` of a missing path).
type Change = Option<(Vec<Edit>, bool)>;

/// Apply `change` to the file's plaintext and write the result: into the
/// plaintext file itself when it is a protected working-tree file, else
/// sealed with the file's own data key and IVs.
fn edit(
    t: &Target,
    idempotent: bool,
    change: impl FnOnce(Format, &str, &sops_file::formats::Document) -> Result<Change, Failure>,
) -> Result<(), Failure> {
    if t.format == Format::Binary && t.output == Format::Binary {
        return Err(binary_refusal(
            t,
            "removing `[\"data\"]` would leave nothing to decrypt, and there is nothing else",
        ));
    }
    if t.format == Format::Binary || t.output == Format::Binary {
        return Err(Failure::input(format!(
            "{}: converting between binary and {} is not supported; nothing was written",
            t.name,
            if t.format == Format::Binary {
                t.output.name()
            } else {
                t.format.name()
            }
        )));
    }
    let on_disk = Zeroizing::new(std::fs::read(&t.path).map_err(|e| {
        Failure::new(
            format!("{}: cannot read it: {e}", t.name),
            code::COULD_NOT_READ_INPUT_FILE,
        )
    })?);
    let protected = Protected::plaintext(&t.path, t.explicit)?;
    let parse = |src: &str| {
        t.format
            .store()
            .parse(src)
            .map_err(|e| Failure::from_sops(&t.name, e.into()))
    };
    if let Some(p) = protected {
        // Plaintext on disk: edit it as it is; `git add` encrypts it.
        let src = as_text(&t.name, &on_disk)?;
        let doc = p
            .format
            .store()
            .parse(src)
            .map_err(|e| Failure::from_sops(&t.name, e.into()))?;
        let Some((edits, changed)) = change(p.format, src, &doc)? else {
            return Ok(());
        };
        if !changed && idempotent {
            return Ok(());
        }
        let text = apply(&t.name, src, edits)?;
        let output = if t.output == t.format {
            p.format
        } else {
            t.output
        };
        let text = match convert_plaintext(&t.name, p.format, output, &text)? {
            Some(converted) => converted,
            None => text,
        };
        return write(t, text.as_bytes());
    }
    let src = as_text(&t.name, &on_disk)?;
    let loaded = file::read(t.format, src).map_err(|e| Failure::from_sops(&t.name, e))?;
    let key = keygroups::recover(&loaded.meta, &Keyring::new())
        .map_err(|e| Failure::from_sops(&t.name, Error::Keys(e)))?;
    let check = if t.ignore_mac {
        Check::IgnoreMac
    } else {
        Check::Mac
    };
    let mut opened = loaded
        .open_with(&key, check)
        .map_err(|e| Failure::from_sops(&t.name, e))?;
    for w in &opened.warnings {
        eprintln!("git-sops: warning: {}: {w}", t.name);
    }
    let plain = as_text(&t.name, &opened.plaintext)?;
    let doc = parse(plain)?;
    let Some((edits, changed)) = change(t.format, plain, &doc)? else {
        return Ok(());
    };
    if !changed && idempotent {
        return Ok(());
    }
    let text = apply(&t.name, plain, edits)?;
    let text = match convert_plaintext(&t.name, t.format, t.output, &text)? {
        Some(converted) => converted,
        None => text,
    };
    let mut meta = loaded.meta.clone();
    let out = file::seal(t.output, text.as_bytes(), &key, &mut meta, &mut opened.ivs)
        .map_err(|e| Failure::from_sops(&t.name, e))?;
    write(t, &out)
}

fn apply(name: &str, src: &str, edits: Vec<Edit>) -> Result<Zeroizing<String>, Failure> {
    apply_edits(src, edits).map_err(|e| Failure::input(format!("{name}: {e}")))
}

fn write(t: &Target, data: &[u8]) -> Result<(), Failure> {
    write_atomically(&t.path, data).map_err(|e| {
        Failure::new(
            format!("{}: cannot write it: {e}; nothing was changed", t.name),
            code::COULD_NOT_WRITE_OUTPUT_FILE,
        )
    })
}
