//! What the fuzz targets share: a fixed data key and metadata (no age, no KMS,
//! so every execution is pure computation), deterministic IVs, and the store
//! round-trip property.

use sops_file::decrypt::{self, Check};
use sops_file::formats::{Format, Lean, Value};
use sops_file::cipher::TypeTag;
use sops_file::datakey::DataKey;
use sops_file::encrypt::{self, Ivs};
use sops_file::file;
use sops_file::metadata::{AgeKey, MasterKey, Metadata};

/// Run `f` as the binary runs its work: on a thread with the binary's stack
/// ([`git_sops::cli::STACK_SIZE`]), which the parsers' depth limit is measured
/// against. libFuzzer's own thread has only what `ulimit -s` gives. A panic on
/// that thread is re-raised here, where libFuzzer reports it.
pub fn on_binary_stack(f: impl FnOnce() + Send) {
    std::thread::scope(|s| {
        let worker = std::thread::Builder::new()
            .stack_size(git_sops::cli::STACK_SIZE)
            .spawn_scoped(s, f)
            .expect("a thread for the work");
        if let Err(panic) = worker.join() {
            std::panic::resume_unwind(panic);
        }
    });
}

/// The one data key every target encrypts with.
pub fn key() -> DataKey {
    DataKey::from_bytes([0x5a; 32])
}

/// Metadata for one age recipient whose wrapped key is never unwrapped (the
/// targets hold the data key itself); enough for the block to read back.
pub fn meta() -> Metadata {
    Metadata {
        key_groups: vec![vec![MasterKey::Age(AgeKey {
            recipient: "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p".into(),
            enc: "-----BEGIN AGE ENCRYPTED FILE-----\nYWdlLWVuY3J5cHRpb24ub3JnL3YxCg==\n-----END AGE ENCRYPTED FILE-----\n".into(),
        })]],
        shamir_threshold: 0,
        lastmodified: String::new(),
        mac: String::new(),
        selector: None,
        mac_only_encrypted: false,
        version: "3.11.0".into(),
    }
}

/// IVs from a counter: the same input always gives the same ciphertext, so the
/// fuzzer's coverage feedback is not disturbed by randomness.
#[derive(Default)]
pub struct CountingIvs(u64);

impl Ivs for CountingIvs {
    fn iv(&mut self, _aad: &str, _tag: TypeTag, _plaintext: &[u8]) -> [u8; 32] {
        self.0 += 1;
        let mut iv = [0u8; 32];
        iv[..8].copy_from_slice(&self.0.to_le_bytes());
        iv
    }
}

/// The tree of a parsed document, for comparing two texts by meaning.
fn tree(format: Format, text: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(text).ok()?;
    let doc = format.store().parse(text).ok()?;
    let docs: Vec<Value> = doc.docs.iter().map(Value::from_map).collect();
    Some(format!("{docs:?}"))
}

/// A structured store's round trip: whatever parses and encrypts must read
/// back as a SOPS file and decrypt, with the data key, to the original bytes
/// (or, where sops itself normalises a spelling, to a text of the same tree
/// that is then a fixed point). A text that already is a SOPS file is opened
/// with the (wrong) fixed key: errors are fine, panics are not.
pub fn store_round_trip(format: Format, data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(doc) = format.store().parse(text) else {
        return;
    };
    if file::has_metadata(&doc) {
        if let Ok(loaded) = file::read(format, text) {
            let _ = loaded.open(&key());
            let _ = loaded.open_with(&key(), sops_file::decrypt::Check::Mixed);
        }
        return;
    }
    let Some(back) = seal_and_open(format, data) else {
        return;
    };
    if back.as_slice() == data {
        return;
    }
    assert_eq!(
        tree(format, &back),
        tree(format, data),
        "decrypt(encrypt(x)) reads as another tree: {:?}",
        String::from_utf8_lossy(&back)
    );
    let again = seal_and_open(format, &back).expect("the normalised text encrypts again");
    assert_eq!(
        String::from_utf8_lossy(&again),
        String::from_utf8_lossy(&back),
        "the normalised text is not a fixed point"
    );
}

/// Encrypt `data` with the fixed key, read the result back and decrypt it.
/// `None` when encryption refuses the input; a sealed file that cannot be read
/// back or opened is a bug.
fn seal_and_open(format: Format, data: &[u8]) -> Option<zeroize::Zeroizing<Vec<u8>>> {
    let mut m = meta();
    let sealed = file::seal(format, data, &key(), &mut m, &mut CountingIvs::default()).ok()?;
    let sealed_text = std::str::from_utf8(&sealed).expect("sealed output is UTF-8");
    let loaded = match file::read(format, sealed_text) {
        Ok(l) => l,
        Err(e) => panic!("sealed output does not read back: {e}\n{sealed_text}"),
    };
    assert_eq!(loaded.meta.key_groups, m.key_groups, "metadata reads back");
    let plain = match loaded.open(&key()) {
        Ok(o) => o.plaintext,
        Err(e) => panic!("sealed output does not decrypt: {e}\n{sealed_text}"),
    };
    hollow_reads_agree(format, data, sealed_text, &loaded.meta, &plain);
    Some(plain)
}

/// `git sops encrypt` and `decrypt` read JSON and YAML hollow (issue 18):
/// opening the sealed text that way gives the plaintext the tree gave (and
/// its MAC, computed over the hollow walk, matches the one the tree walk
/// sealed), and sealing the input that way gives a file that opens to it.
fn hollow_reads_agree(format: Format, data: &[u8], sealed: &str, meta: &Metadata, plain: &[u8]) {
    if !matches!(format, Format::Yaml | Format::Json) {
        return;
    }
    let store = format.store();
    let doc = store
        .parse_lean(sealed, Lean::Sealed)
        .expect("sealed output reads hollow");
    let opened = decrypt::open(store, sealed, &doc, meta, &key(), Check::Mac)
        .unwrap_or_else(|e| panic!("sealed output does not open hollow: {e}\n{sealed}"));
    assert_eq!(opened.text.as_bytes(), plain, "hollow decrypt differs");
    let text = std::str::from_utf8(data).expect("UTF-8 input");
    let lean = store
        .parse_lean(text, Lean::Strings)
        .expect("the input reads hollow");
    let mut m = self::meta();
    let resealed = encrypt::seal(store, text, &lean, &key(), &mut m, &mut CountingIvs::default())
        .unwrap_or_else(|e| panic!("the input does not seal hollow: {e}"));
    let back = file::read(format, &resealed)
        .and_then(|l| l.open(&key()))
        .unwrap_or_else(|e| panic!("hollow-sealed output does not open: {e}\n{resealed}"));
    assert_eq!(back.plaintext.as_slice(), plain, "hollow encrypt differs");
}
