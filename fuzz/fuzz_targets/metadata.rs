//! The metadata block. The first byte picks the store (YAML, JSON, dotenv,
//! INI) the rest is read with. A block that reads must render (as sops 3.11
//! writes it) to a block that reads back the same, and must survive being
//! written into a file of every store and read back from it (exactly into its
//! own store; into the others, as far as git-sops interprets it).
#![no_main]

use sops_file::formats::{apply_edits, Format, Value};
use sops_file::decrypt;
use sops_file::metadata::{MasterKey, Metadata};
use libfuzzer_sys::fuzz_target;

const FORMATS: [Format; 4] = [Format::Yaml, Format::Json, Format::Dotenv, Format::Ini];

/// A small plaintext file of each store to write the block into.
fn host(format: Format) -> &'static str {
    match format {
        Format::Yaml => "a: 1\n",
        Format::Json => "{\n\t\"a\": 1\n}\n",
        Format::Dotenv => "a=1\n",
        Format::Ini => "[s]\na = 1\n",
        Format::Binary => unreachable!(),
    }
}

/// `v` with every map's entries in key order: dotenv and INI write the block
/// flattened and sorted, so the fields of a key kind git-sops only carries along
/// (gcp_kms, azure_kv, ...) come back in another order, meaning the same.
fn sorted(v: &Value) -> Value {
    match v {
        Value::Map(entries) => {
            let mut e: Vec<_> = entries
                .iter()
                .map(|(k, v)| (k.clone(), sorted(v)))
                .collect();
            e.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Map(e)
        }
        Value::List(items) => Value::List(items.iter().map(sorted).collect()),
        other => other.clone(),
    }
}

/// What git-sops interprets of a block. The fields of key kinds it only
/// carries along (pgp, gcp_kms, ...) are typed by the store they were read
/// from (a JSON `0` is a float, a dotenv `0` a string), so across stores only
/// their kind is compared.
fn interpreted(m: &Metadata) -> Metadata {
    let mut m = m.clone();
    // No threshold with several groups means all of them, and is written so.
    if m.key_groups.len() > 1 && m.shamir_threshold == 0 {
        m.shamir_threshold = m.key_groups.len();
    }
    for key in m.key_groups.iter_mut().flatten() {
        if let MasterKey::Other { entry, .. } = key {
            *entry = Value::Null;
        }
    }
    m
}

/// Whether dotenv and INI, which write the block flattened, can carry `v` at
/// all (sops' encoding has the same limits): a newline is written as the two
/// characters `\n`, so a string holding those two characters reads back with
/// a newline; a map key holding `__` splits into other keys; a key or value
/// holding both a backquote and `"""` has no INI quoting; an empty list or map
/// (an empty key group) has no leaf to write. INI keys also cannot hold what
/// go-ini reads differently (`:`, quotes, `=`, brackets, comment characters,
/// spaces around them).
fn flat_can_carry(target: Format, v: &Value) -> bool {
    let text = |s: &str| !s.contains("\\n") && !(s.contains('`') && s.contains("\"\"\""));
    let key = |k: &str| {
        text(k)
            && !k.contains("__")
            && (target != Format::Ini
                || (!k.contains([':', '"', '\'', '`', '=', '[', ']', ';', '#'])
                    && k.trim() == k))
    };
    match v {
        Value::Str(s) => text(s),
        Value::List(items) => !items.is_empty() && items.iter().all(|i| flat_can_carry(target, i)),
        Value::Map(entries) => {
            !entries.is_empty() && entries.iter().all(|(k, v)| key(k) && flat_can_carry(target, v))
        }
        _ => true,
    }
}

fuzz_target!(|data: &[u8]| fuzz_support::on_binary_stack(|| check(data)));

fn check(data: &[u8]) {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    let format = FORMATS[usize::from(pick) % FORMATS.len()];
    let Ok((_, meta)) = decrypt::load(format.store(), text) else {
        return;
    };
    let rendered = meta.to_value();
    let again = match Metadata::from_value(&rendered) {
        Ok(m) => m,
        Err(e) => panic!("a block that was read renders unreadable: {e}\n{rendered:?}"),
    };
    assert_eq!(again.to_value(), rendered, "rendering is not a fixed point");
    for target in FORMATS {
        if target != format
            && matches!(target, Format::Dotenv | Format::Ini)
            && !flat_can_carry(target, &rendered)
        {
            continue;
        }
        let store = target.store();
        let src = host(target);
        let doc = store.parse(src).expect("host file parses");
        let edits = store.insert_metadata(src, &doc, &rendered);
        let written = apply_edits(src, edits).expect("the block splices in");
        let back = match decrypt::load(store, &written) {
            Ok((_, m)) => m,
            Err(e) => panic!(
                "{target:?}: the written block does not read back: {e}\n{}",
                *written
            ),
        };
        if target == format {
            assert_eq!(
                sorted(&back.to_value()),
                sorted(&rendered),
                "{target:?}: the block reads back different\n{}",
                *written
            );
        } else {
            assert_eq!(
                interpreted(&back),
                interpreted(&meta),
                "{target:?}: the block reads back different\n{}",
                *written
            );
        }
    }
}
