//! The yaml store: parse, encrypt with a fixed data key, read back, decrypt.
#![no_main]

use sops_file::formats::Format;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    fuzz_support::on_binary_stack(|| fuzz_support::store_round_trip(Format::Yaml, data));
});
