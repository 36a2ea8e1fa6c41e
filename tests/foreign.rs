//! Files in the shapes other sops versions write (tests/foreign/<version>/, made
//! by tests/foreign/make-fixtures.py for the public sops age test key): INI
//! metadata in `"""` blocks (3.13.0, 3.13.1) or in Go's random key order (before
//! 3.13), YAML metadata with go-yaml v2 list style, empty key lists and the old
//! `attention` field, a numeric `version` (1.x), and pgp, gcp_kms, azure_kv and
//! hc_vault entries. Each must decrypt to what sops 3.11 prints for it (the
//! `.plain` file beside it, checked against the live sops too), and go through
//! git: checkout decrypts it, an untouched file stays the same blob, an edit is
//! encrypted again in 3.11's layout with the foreign master keys kept, and sops
//! reads the result.

mod common;

use common::*;

/// Every fixture: (path relative to tests/foreign, sops type).
fn fixtures() -> Vec<(String, &'static str)> {
    let root = manifest_dir().join("tests/foreign");
    let mut out = Vec::new();
    let mut dirs: Vec<_> = std::fs::read_dir(&root)
        .expect("tests/foreign")
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir())
        .collect();
    dirs.sort_by_key(|e| e.file_name());
    for dir in dirs {
        let mut files: Vec<_> = std::fs::read_dir(dir.path())
            .expect("fixture dir")
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| !n.ends_with(".plain"))
            .collect();
        files.sort();
        for name in files {
            let kind = match name.rsplit('.').next() {
                Some("env") => "dotenv",
                Some("ini") => "ini",
                Some("json") => "json",
                _ => "yaml",
            };
            out.push((
                format!("{}/{name}", dir.file_name().to_string_lossy()),
                kind,
            ));
        }
    }
    assert!(out.len() >= 7, "fixtures missing: {out:?}");
    out
}

fn read_fixture(rel: &str) -> Vec<u8> {
    let p = manifest_dir().join("tests/foreign").join(rel);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[test]
fn foreign_files_decrypt_as_sops_3_11_prints_them() {
    let env = Env::with_keys(&[&AgeKey::sops_test_key()]);
    let mut checks = Checks::new();
    for (rel, kind) in fixtures() {
        checks.check(&rel, || {
            let name = rel.replace('/', "-");
            env.write(&name, read_fixture(&rel));
            let expected = read_fixture(&format!("{rel}.plain"));
            let ours = env.git_sops().args(["decrypt", &name]).run().ok();
            assert_bytes_eq(&expected, &ours.stdout, "git-sops decrypt");
            let sops = env
                .sops()
                .args([
                    "decrypt",
                    "--input-type",
                    kind,
                    "--output-type",
                    kind,
                    &name,
                ])
                .run()
                .ok();
            assert_bytes_eq(&expected, &sops.stdout, "sops 3.11 decrypt");
        });
    }
    checks.finish("foreign fixtures");
}

#[test]
fn foreign_files_go_through_git() {
    let key = AgeKey::sops_test_key();
    let mut env = Env::with_keys(&[&key]);
    env.use_git();
    let repo = env.path("repo");
    std::fs::create_dir_all(&repo).expect("repo dir");
    let git = |args: &[&str]| env.tool("git").current_dir(&repo).args(args).run();
    git(&["init", "-q", "-b", "main"]).ok();
    env.write(
        "repo/.sops.yaml",
        format!("creation_rules:\n  - age: {}\n", key.recipient),
    );
    env.git_sops()
        .current_dir(&repo)
        .args(["init", "secrets/**"])
        .run()
        .ok();
    // The fixtures enter the repository as they are (no filter), as if another
    // sops had committed them.
    let fixtures = fixtures();
    for (rel, _) in &fixtures {
        let path = format!("secrets/{}", rel.replace('/', "-"));
        env.write(format!("repo/{path}"), read_fixture(rel));
        let blob = git(&["hash-object", "-w", &path]).ok().stdout_str();
        git(&[
            "update-index",
            "--add",
            "--cacheinfo",
            &format!("100644,{},{path}", blob.trim()),
        ])
        .ok();
    }
    git(&["add", ".gitattributes", ".sops.yaml"]).ok();
    git(&["commit", "-q", "-m", "foreign files"]).ok();
    // Checkout decrypts each one to what sops prints.
    for (rel, _) in &fixtures {
        std::fs::remove_file(env.path(format!("repo/secrets/{}", rel.replace('/', "-"))))
            .expect("remove");
    }
    git(&["checkout", "--", "secrets"]).ok();
    let mut checks = Checks::new();
    for (rel, _) in &fixtures {
        checks.check(&format!("{rel}: checkout"), || {
            let path = format!("repo/secrets/{}", rel.replace('/', "-"));
            assert_bytes_eq(
                &read_fixture(&format!("{rel}.plain")),
                &env.read(&path),
                "working tree after checkout",
            );
        });
    }
    checks.finish("checkout");
    let status = git(&["status", "--porcelain"]).ok().stdout_str();
    assert_eq!(status, "", "untouched foreign files look modified");
    // An edit: every fixture holds the value `admin`.
    for (rel, _) in &fixtures {
        let path = format!("repo/secrets/{}", rel.replace('/', "-"));
        let text = String::from_utf8(env.read(&path)).expect("UTF-8");
        assert!(text.contains("admin"), "{rel}: no `admin` value");
        env.write(&path, text.replacen("admin", "root", 1));
    }
    git(&["add", "secrets"]).ok();
    git(&["commit", "-q", "-m", "edit"]).ok();
    let mut checks = Checks::new();
    for (rel, kind) in &fixtures {
        checks.check(&format!("{rel}: edited"), || {
            let path = format!("secrets/{}", rel.replace('/', "-"));
            let blob = git(&["cat-file", "-p", &format!("HEAD:{path}")])
                .ok()
                .stdout;
            let text = String::from_utf8_lossy(&blob).into_owned();
            assert!(!text.contains("root"), "plaintext in the blob:\n{text}");
            let plain = String::from_utf8(read_fixture(&format!("{rel}.plain"))).expect("UTF-8");
            let expected = plain.replacen("admin", "root", 1);
            let name = format!("edited-{}", rel.replace('/', "-"));
            env.write(&name, &blob);
            let sops = env
                .sops()
                .args([
                    "decrypt",
                    "--input-type",
                    kind,
                    "--output-type",
                    kind,
                    &name,
                ])
                .run()
                .ok();
            assert_bytes_eq(expected.as_bytes(), &sops.stdout, "sops reads the blob");
            let ours = env.git_sops().args(["decrypt", &name]).run().ok();
            assert_bytes_eq(expected.as_bytes(), &ours.stdout, "git-sops reads the blob");
            // Rewritten in 3.11's layout, foreign master keys kept.
            assert!(text.contains("3.11.0"), "version not updated:\n{text}");
            let original = String::from_utf8_lossy(&read_fixture(rel)).into_owned();
            for marker in [
                "FBC7B9E2A4F9289AC0C1D4843D16CEE4A27381B4",
                "projects/p/locations/global/keyRings/r/cryptoKeys/k",
                "https://v.vault.azure.net",
                "http://127.0.0.1:8200",
            ] {
                if original.contains(marker) {
                    assert!(text.contains(marker), "{marker} dropped:\n{text}");
                }
            }
        });
    }
    checks.finish("edited foreign files");
}
