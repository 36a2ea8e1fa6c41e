//! The binary store: any bytes seal into sops' JSON envelope and open back to
//! exactly those bytes; any text read as an envelope opens or fails cleanly.
#![no_main]

use fuzz_support::{key, meta, CountingIvs};
use sops_file::formats::Format;
use sops_file::file;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| fuzz_support::on_binary_stack(|| check(data)));

fn check(data: &[u8]) {
    let mut m = meta();
    let sealed = file::seal(
        Format::Binary,
        data,
        &key(),
        &mut m,
        &mut CountingIvs::default(),
    )
    .expect("any bytes seal as a binary file");
    let text = std::str::from_utf8(&sealed).expect("the envelope is UTF-8");
    let loaded = file::read(Format::Binary, text).expect("the envelope reads back");
    let opened = loaded.open(&key()).expect("the envelope opens");
    assert_eq!(opened.plaintext.as_slice(), data);

    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(loaded) = file::read(Format::Binary, text) {
            let _ = loaded.open(&key());
        }
    }
}
