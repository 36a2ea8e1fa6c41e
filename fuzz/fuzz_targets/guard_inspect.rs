//! The guard's check of one blob. The low nibble of the first byte picks the
//! path (and so the format) and whether it is protected; the rest is the blob.
//! Inspection never panics, whatever the bytes.
#![no_main]

use git_sops::drivers::guard::inspect::{inspect, worth_reading_unprotected};
use sops_file::formats::Format;
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
    if protected || worth_reading_unprotected(path) {
        let _ = inspect(path, Format::detect(path), content, protected);
    }
}
