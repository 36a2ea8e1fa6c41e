//! Which leaves get encrypted: sops' six mutually exclusive selectors
//! (`shouldBeEncrypted`, docs/sops-format.md §2).
//!
//! Path components are the map keys from the root (list indices are not
//! components); regexes are searched unanchored, as Go's `regexp.Match` does.
//! The comment selectors look at a stack of comment levels that the tree walk
//! maintains: one level per map or list, holding the comments seen since the last
//! non-comment item of that level.

use regex::Regex;

use super::walk::{CommentStack, Position};

#[derive(Clone, Debug)]
pub enum Selector {
    UnencryptedSuffix(String),
    EncryptedSuffix(String),
    UnencryptedRegex(Regex),
    EncryptedRegex(Regex),
    UnencryptedCommentRegex(Regex),
    EncryptedCommentRegex(Regex),
}

impl PartialEq for Selector {
    fn eq(&self, other: &Selector) -> bool {
        self.field_name() == other.field_name() && self.pattern() == other.pattern()
    }
}

impl Selector {
    /// The metadata / `.sops.yaml` field names, which are also the CLI flag names.
    pub const FIELDS: [&'static str; 6] = [
        "unencrypted_suffix",
        "encrypted_suffix",
        "unencrypted_regex",
        "encrypted_regex",
        "unencrypted_comment_regex",
        "encrypted_comment_regex",
    ];

    /// sops' default when no selector is given.
    pub fn default_suffix() -> Selector {
        Selector::UnencryptedSuffix("_unencrypted".to_string())
    }

    /// Build the selector for a field name; fails on an invalid regex.
    pub fn new(field: &str, pattern: &str) -> Result<Selector, regex::Error> {
        let re = || Regex::new(pattern);
        Ok(match field {
            "unencrypted_suffix" => Selector::UnencryptedSuffix(pattern.to_string()),
            "encrypted_suffix" => Selector::EncryptedSuffix(pattern.to_string()),
            "unencrypted_regex" => Selector::UnencryptedRegex(re()?),
            "encrypted_regex" => Selector::EncryptedRegex(re()?),
            "unencrypted_comment_regex" => Selector::UnencryptedCommentRegex(re()?),
            "encrypted_comment_regex" => Selector::EncryptedCommentRegex(re()?),
            other => return Err(regex::Error::Syntax(format!("unknown selector {other}"))),
        })
    }

    pub fn field_name(&self) -> &'static str {
        match self {
            Selector::UnencryptedSuffix(_) => "unencrypted_suffix",
            Selector::EncryptedSuffix(_) => "encrypted_suffix",
            Selector::UnencryptedRegex(_) => "unencrypted_regex",
            Selector::EncryptedRegex(_) => "encrypted_regex",
            Selector::UnencryptedCommentRegex(_) => "unencrypted_comment_regex",
            Selector::EncryptedCommentRegex(_) => "encrypted_comment_regex",
        }
    }

    pub fn pattern(&self) -> &str {
        match self {
            Selector::UnencryptedSuffix(s) | Selector::EncryptedSuffix(s) => s,
            Selector::UnencryptedRegex(r)
            | Selector::EncryptedRegex(r)
            | Selector::UnencryptedCommentRegex(r)
            | Selector::EncryptedCommentRegex(r) => r.as_str(),
        }
    }

    /// [`Selector::should_encrypt`] at a position of the tree walk; the path
    /// selectors' answer is kept per path (see [`Position::per_path`]).
    pub(crate) fn should_encrypt_at(&self, pos: &Position<'_>, is_comment: bool) -> bool {
        match self {
            Selector::UnencryptedCommentRegex(_) | Selector::EncryptedCommentRegex(_) => {
                self.should_encrypt(&pos.path, &pos.comments, is_comment)
            }
            _ => pos.per_path(self as *const Selector as usize, |path| {
                self.should_encrypt(path, &CommentStack::default(), is_comment)
            }),
        }
    }

    /// sops' `shouldBeEncrypted`. `comments` is the comment stack; when the leaf is a
    /// comment it is already the last entry of the innermost level.
    pub(crate) fn should_encrypt<S: AsRef<str>>(
        &self,
        path: &[S],
        comments: &CommentStack<'_>,
        is_comment: bool,
    ) -> bool {
        let any_component = |f: &dyn Fn(&str) -> bool| path.iter().any(|p| f(p.as_ref()));
        match self {
            Selector::UnencryptedSuffix(s) => !any_component(&|p| p.ends_with(s.as_str())),
            Selector::EncryptedSuffix(s) => any_component(&|p| p.ends_with(s.as_str())),
            Selector::UnencryptedRegex(r) => !any_component(&|p| r.is_match(p)),
            Selector::EncryptedRegex(r) => any_component(&|p| r.is_match(p)),
            Selector::UnencryptedCommentRegex(r) => comments.count_matching(r) == 0,
            Selector::EncryptedCommentRegex(r) => {
                // The trigger comment itself stays plain: skip the last comment of the
                // innermost level when the leaf is that comment.
                let own = usize::from(is_comment && comments.last_matches(r));
                comments.count_matching(r) > own
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sel(field: &str, p: &str) -> Selector {
        Selector::new(field, p).unwrap()
    }

    #[test]
    fn suffixes_cover_whole_subtrees() {
        let s = Selector::default_suffix();
        assert!(s.should_encrypt(&["a", "b"], &none(), false));
        assert!(!s.should_encrypt(&["parent_unencrypted", "child"], &none(), false));
        let e = sel("encrypted_suffix", "_secret");
        assert!(e.should_encrypt(&["db_secret", "pw"], &none(), false));
        assert!(!e.should_encrypt(&["db", "pw"], &none(), false));
    }

    #[test]
    fn regexes_search_unanchored_in_any_component() {
        let e = sel("encrypted_regex", "^password$");
        assert!(e.should_encrypt(&["db", "password"], &none(), false));
        assert!(!e.should_encrypt(&["db", "passwords"], &none(), false));
        assert!(!e.should_encrypt::<&str>(&[], &none(), true)); // top-level comments stay plain
        let u = sel("unencrypted_regex", "pub");
        assert!(!u.should_encrypt(&["public_key"], &none(), false));
    }

    #[test]
    fn comment_regexes_skip_the_trigger_comment() {
        let e = sel("encrypted_comment_regex", "sops:enc");
        let stack = stack_of(" sops:enc");
        assert!(!e.should_encrypt(&["a"], &stack, true));
        assert!(e.should_encrypt(&["a"], &stack, false));
        let u = sel("unencrypted_comment_regex", "sops:plain");
        assert!(!u.should_encrypt(&["a"], &stack_of(" sops:plain"), false));
        assert!(u.should_encrypt(&["a"], &stack_of(" other"), false));
    }

    fn stack_of(c: &str) -> CommentStack<'_> {
        CommentStack::from_levels(vec![vec![c]])
    }

    fn none() -> CommentStack<'static> {
        CommentStack::default()
    }

    #[test]
    fn comment_regexes_see_every_level_and_new_comments() {
        let re = Regex::new("hit").unwrap();
        let stack = CommentStack::from_levels(vec![vec!["a", "hit 1"], vec![], vec!["b", "hit 2"]]);
        assert_eq!(stack.count_matching(&re), 2);
        assert_eq!(stack.count_matching(&re), 2, "asked again");
        assert!(stack.last_matches(&re));
        let other = Regex::new("^b$").unwrap();
        assert_eq!(
            stack.count_matching(&other),
            1,
            "another regex starts afresh"
        );
    }
}
