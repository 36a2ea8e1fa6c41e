//! The line-based three-way merge. The input is `base NUL ours NUL theirs`.
//! Merging never panics; a side that did not change takes the other side's
//! text; both sides making the same change give that change, without conflict.
#![no_main]

use git_sops::drivers::merge::diff3::{merge3, Markers};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut parts = data.splitn(3, |b| *b == 0);
    let base = parts.next().unwrap_or_default();
    let ours = parts.next().unwrap_or_default();
    let theirs = parts.next().unwrap_or_default();
    let markers = Markers::default();

    let _ = merge3(base, ours, theirs, &markers);

    let same = merge3(base, ours, ours, &markers);
    assert_eq!(same.conflicts, 0, "identical sides conflict");
    assert_eq!(
        same.text.as_slice(),
        ours,
        "identical sides merge to another text"
    );

    let theirs_only = merge3(base, base, theirs, &markers);
    assert_eq!(theirs_only.conflicts, 0);
    assert_eq!(theirs_only.text.as_slice(), theirs, "only theirs changed");

    let ours_only = merge3(base, ours, base, &markers);
    assert_eq!(ours_only.conflicts, 0);
    assert_eq!(ours_only.text.as_slice(), ours, "only ours changed");
});
