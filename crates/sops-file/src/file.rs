//! A SOPS file of any format as the git drivers see it: bytes in, plaintext
//! bytes out, and back. The structured formats go through their store (the
//! plaintext is their text); a binary file is sops' JSON envelope around the raw
//! bytes ([`super::binary`]). The drivers (clean, smudge, merge, textconv) work
//! on this one shape so that every format behaves the same inside git.

use zeroize::Zeroizing;

use super::datakey::DataKey;
use super::decrypt::Check;
use super::encrypt::{self, Ivs};
use super::metadata::Metadata;
use super::stash::IvStash;
use super::{binary, decrypt, Error};
use crate::formats::{find_entry, Document, Format, FormatError};

/// A parsed SOPS file whose data key is not yet known.
pub struct Loaded {
    format: Format,
    text: String,
    doc: Document,
    pub meta: Metadata,
}

/// A decrypted file.
pub struct Opened {
    pub plaintext: Zeroizing<Vec<u8>>,
    /// What sops would also only warn about (see [`decrypt::Opened`]).
    pub warnings: Vec<String>,
    /// The IV of every value, for re-encrypting unchanged values byte for byte.
    pub ivs: IvStash,
}

/// Read `blob` as a SOPS file of `format`; `None` when it is not one (plaintext,
/// another format, damaged beyond reading its metadata).
pub fn load(format: Format, blob: &[u8]) -> Option<Loaded> {
    read(format, std::str::from_utf8(blob).ok()?).ok()
}

/// Why `blob` cannot be read as a SOPS file of `format` when it looks like one
/// (it mentions `sops` and `lastmodified`), for a warning; `None` otherwise.
pub fn why_unreadable(format: Format, blob: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(blob).ok()?;
    if !(text.contains("sops") && text.contains("lastmodified")) {
        return None;
    }
    read(format, text).err().map(|e| e.to_string())
}

/// [`load`] with the reason when `text` is not a SOPS file of `format`.
pub fn read(format: Format, text: &str) -> Result<Loaded, Error> {
    let (doc, meta) = decrypt::load(format.store(), text)?;
    Ok(Loaded {
        format,
        text: text.to_string(),
        doc,
        meta,
    })
}

/// `sops filestatus`: is `blob`, read as `format`, a SOPS-encrypted file? As
/// sops decides it (`cmd/sops/subcommand/filestatus`): no top-level `sops`
/// entry (or an empty YAML, dotenv or INI file) is `false`; metadata that
/// names a `version` and a `mac` is `true`, without decrypting or checking
/// anything; metadata without either is `false`. What cannot be read is an
/// error, as in sops: a file that does not parse (a binary file is read as
/// its JSON envelope, so any other bytes fail), a `sops` entry that is not
/// valid metadata, metadata naming no key.
pub fn status(format: Format, blob: &[u8]) -> Result<bool, Error> {
    let text = std::str::from_utf8(blob).map_err(|e| {
        Error::Format(FormatError::Syntax {
            line: 1,
            column: 1,
            message: format!(
                "not UTF-8 text (invalid byte at offset {})",
                e.valid_up_to()
            ),
        })
    })?;
    let doc = match format.store().parse(text) {
        Ok(doc) => doc,
        // go-yaml, sops' dotenv and go-ini read an empty file as an empty tree;
        // Go's JSON decoder refuses it.
        Err(FormatError::Empty { .. }) if !matches!(format, Format::Json | Format::Binary) => {
            return Ok(false)
        }
        Err(e) => return Err(e.into()),
    };
    let Some(entry) = doc.docs.first().and_then(|root| find_entry(root, "sops")) else {
        return Ok(false);
    };
    match Metadata::from_value(&crate::formats::Value::from_node(&entry.value)) {
        Ok(meta) => Ok(!meta.version.is_empty() && !meta.mac.is_empty()),
        Err(crate::metadata::MetadataError::Missing("version")) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Can `blob` be a SOPS file at all? Every format's metadata names `sops` and
/// `lastmodified`; a cheap test before parsing blobs that are mostly not SOPS.
pub fn might_be_sops(blob: &[u8]) -> bool {
    let has = |needle: &[u8]| blob.windows(needle.len()).any(|w| w == needle);
    has(b"sops") && has(b"lastmodified")
}

/// Parse plaintext whose format is not known for sure (a temporary file's
/// name, a path whose extension sops calls binary): its extension's format
/// first, then every structured one; the first that parses with a value in it.
pub fn parse_plaintext(path: &str, text: &str) -> Option<Document> {
    let formats = Format::from_path(path).into_iter().chain([
        Format::Yaml,
        Format::Json,
        Format::Dotenv,
        Format::Ini,
    ]);
    formats
        .filter_map(|format| format.store().parse(text).ok())
        .find(|doc| doc.docs.iter().any(|m| !m.items.is_empty()))
}

/// Read `blob` as a SOPS file when its format is not known for sure (textconv
/// sees only a temporary file name; the prefetch only needs the metadata): the
/// format of `path`'s extension first, then the others. A binary file's JSON
/// envelope is also a valid JSON (and YAML) SOPS file, so the extension decides
/// between those.
pub fn sniff(path: &str, blob: &[u8]) -> Option<Loaded> {
    let detected = Format::detect(path);
    std::iter::once(detected)
        .chain(
            [Format::Yaml, Format::Dotenv, Format::Ini]
                .into_iter()
                .filter(|f| *f != detected),
        )
        .find_map(|format| load(format, blob))
}

/// Read `blob`, configured as `format` at `path`, as the SOPS file it is. A
/// path sops calls binary (say `kubeconfig`) may hold a SOPS file of another
/// format, written by `sops` under that name: that file is what it is, not a
/// binary secret to wrap a second time, so for binary every format counts.
pub fn load_as_configured(path: &str, format: Format, blob: &[u8]) -> Option<Loaded> {
    match format {
        Format::Binary if might_be_sops(blob) => sniff(path, blob),
        Format::Binary => None,
        _ => load(format, blob),
    }
}

impl Loaded {
    pub fn format(&self) -> Format {
        self.format
    }

    /// The parsed ciphertext and its source text.
    pub fn document(&self) -> (&Document, &str) {
        (&self.doc, &self.text)
    }

    /// Decrypt with `key`, verifying the MAC.
    pub fn open(&self, key: &DataKey) -> Result<Opened, Error> {
        self.open_with(key, Check::Mac)
    }

    /// Decrypt with `key` under `check` (see [`Check`]). A binary envelope is
    /// one value, so it is always checked in full.
    pub fn open_with(&self, key: &DataKey, check: Check) -> Result<Opened, Error> {
        if self.format == Format::Binary {
            let plaintext = binary::open(&self.doc, &self.meta, key, false)?;
            return Ok(Opened {
                plaintext,
                warnings: Vec::new(),
                ivs: IvStash::default(),
            });
        }
        let opened = decrypt::open(
            self.format.store(),
            &self.text,
            &self.doc,
            &self.meta,
            key,
            check,
        )?;
        let plaintext = Zeroizing::new(opened.text.as_bytes().to_vec());
        Ok(Opened {
            plaintext,
            warnings: opened.warnings,
            ivs: opened.ivs,
        })
    }
}

/// Does a parsed document carry a top-level `sops` entry?
pub fn has_metadata(doc: &Document) -> bool {
    doc.docs
        .iter()
        .any(|root| find_entry(root, "sops").is_some())
}

/// Encrypt `plaintext` as a `format` file with `key`, filling in `lastmodified`
/// and the MAC of `meta`. Values whose (path, plaintext) `ivs` remembers keep
/// their ciphertext.
pub fn seal(
    format: Format,
    plaintext: &[u8],
    key: &DataKey,
    meta: &mut Metadata,
    ivs: &mut dyn Ivs,
) -> Result<Vec<u8>, Error> {
    if format == Format::Binary {
        meta.selector = None;
        return binary::seal(plaintext, key, meta).map(String::into_bytes);
    }
    let text = std::str::from_utf8(plaintext).map_err(|e| {
        let line = plaintext[..e.valid_up_to()]
            .iter()
            .filter(|b| **b == b'\n')
            .count()
            + 1;
        Error::Format(FormatError::Unsupported {
            line,
            column: 0,
            message: format!(
                "not UTF-8 text, so it cannot be encrypted as {} (sops treats other extensions as binary)",
                format.name()
            ),
        })
    })?;
    let store = format.store();
    let doc = store.parse(text)?;
    if has_metadata(&doc) {
        return Err(Error::AlreadyEncrypted);
    }
    if !format.sops_accepts_bom() && text.starts_with('\u{feff}') {
        return Err(Error::Format(FormatError::Unsupported {
            line: 1,
            column: 1,
            message: format!(
                "starts with a UTF-8 byte order mark, which sops cannot read in {} files; remove it",
                format.name()
            ),
        }));
    }
    encrypt::seal(store, text, &doc, key, meta, ivs).map(String::into_bytes)
}
