//! `.sops.yaml`: any text is read (with go-yaml's depth and alias budgets), and
//! choosing the creation rule for a few paths succeeds or fails cleanly.
#![no_main]

use std::path::Path;

use sops_file::config::Config;
use libfuzzer_sys::fuzz_target;

const FILES: [&str; 5] = [
    "/fuzz/secrets/db.yaml",
    "/fuzz/prod/app.env",
    "/fuzz/config.json",
    "/fuzz/x.ini",
    "/elsewhere/kubeconfig",
];

fuzz_target!(|data: &[u8]| fuzz_support::on_binary_stack(|| check(data)));

fn check(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(Some(config)) = Config::parse(Path::new("/fuzz/.sops.yaml"), text) else {
        return;
    };
    for file in FILES {
        let _ = config.rule_for(file);
    }
}
