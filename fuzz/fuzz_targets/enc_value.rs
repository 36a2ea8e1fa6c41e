//! `ENC[...]` values: parsing never panics, a parsed value renders to a text
//! that parses back to the same value, and decrypting it with a key fails or
//! succeeds cleanly.
#![no_main]

use sops_file::cipher::{self, EncValue};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = cipher::is_enc(text);
    let Ok(value) = EncValue::parse(text) else {
        return;
    };
    let rendered = value.render();
    assert_eq!(
        EncValue::parse(&rendered).as_ref(),
        Ok(&value),
        "{rendered:?} does not read back"
    );
    let _ = cipher::decrypt(&fuzz_support::key(), &value, "data:");
});
