//! Test support: what the tests of a hollow read (`Hollow`, issue 18) compare
//! between a hollow document and the whole tree of the same text, so that the
//! JSON and YAML stores are held to the same account of "walks the same".

use super::{Document, Scalar, Span, Store, Value};
use crate::walk::{walk, walk_source, Position, Visit};

/// Everything a walk's visitors read of each leaf and comment, in walk order:
/// path (AAD), span, value, style, line, column, leaf context, the comment
/// itself, and what the comment selectors see of the comment stack.
pub(crate) fn visited(doc: &Document, src: &str, hollow: bool) -> Vec<String> {
    let any = regex::Regex::new("").expect("the empty pattern is a valid regex");
    let mut out = Vec::new();
    let mut record = |visit: Visit<'_>, pos: &Position<'_>| {
        let stack = format!(
            "{} {}",
            pos.comments.count_matching(&any),
            pos.comments.last_matches(&any)
        );
        out.push(match visit {
            Visit::Leaf(l) => format!(
                "leaf {} {:?} {} {:?} {} {} {:?} {stack}",
                pos.aad(),
                l.span,
                match &l.value {
                    Scalar::Str(s) => format!("str {:?}", s.as_str()),
                    Scalar::Int(i) => format!("int {i}"),
                    Scalar::Float(f) => format!("float {f:?}"),
                    Scalar::Bool(b) => format!("bool {b}"),
                    Scalar::Time(t) => format!("time {t}"),
                    Scalar::Null => "null".to_string(),
                },
                l.style,
                l.line,
                l.column,
                l.context,
            ),
            Visit::Comment(c) => format!(
                "comment {} {:?} {:?} {} {stack}",
                pos.aad(),
                c.span,
                c.text.as_str(),
                c.line
            ),
        });
        Ok::<(), super::FormatError>(())
    };
    if hollow {
        walk_source(doc, src, &mut record).expect("the visitor never fails");
    } else {
        walk(doc, &mut record).expect("the visitor never fails");
    }
    out
}

/// The edits `store` makes to insert `meta` into `doc` and to remove it again.
pub(crate) fn metadata_edits(
    store: &dyn Store,
    src: &str,
    doc: &Document,
    meta: &Value,
) -> Vec<(Span, String)> {
    let mut e = store.insert_metadata(src, doc, meta);
    e.extend(store.remove_metadata(src, doc));
    e.iter().map(|e| (e.span.clone(), e.text.clone())).collect()
}
