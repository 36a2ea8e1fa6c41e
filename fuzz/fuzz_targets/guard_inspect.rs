//! The guard's check of one blob. The first byte picks the path (and so the
//! format, low 3 bits), whether it is protected (bit 3) and whether a creation
//! rule's selector applies (bit 4); the rest is the blob.
//! Inspection never panics, whatever the bytes.
#![no_main]

use git_sops::guard::inspect::{inspect, worth_reading_unprotected};
use sops_file::formats::Format;
use sops_file::selectors::Selector;
use libfuzzer_sys::fuzz_target;

const PATHS: [&str; 8] = [
    "secrets/db.yaml",
    "config/app.json",
    "prod/app.env",
    "legacy/settings.ini",
    "kubeconfig",
    "secrets.dec.yaml",
    "values.decrypted.json",
    "notes.txt",
];

fuzz_target!(|data: &[u8]| fuzz_support::on_binary_stack(|| check(data)));

fn check(data: &[u8]) {
    let Some((&pick, content)) = data.split_first() else {
        return;
    };
    let path = PATHS[usize::from(pick & 7)];
    let protected = pick & 8 != 0;
    let selector = Selector::new("encrypted_regex", "^(password|token)$").ok();
    let rule = selector.as_ref().filter(|_| pick & 16 != 0).map(|s| (0, s));
    if protected || worth_reading_unprotected(path) {
        let _ = inspect(path, Format::detect(path), content, protected, rule);
    }
}
