//! Running saphyr-parser and turning its events into owned records with byte spans.
//!
//! saphyr is the authority on YAML syntax; this module only collects its event
//! stream (values, styles, tags, anchors) and converts its character-index markers
//! into byte offsets. A parse error becomes a [`FormatError::Syntax`] with saphyr's
//! message and position. saphyr is guarded with `catch_unwind` so that no input can
//! make `parse` panic.
//!
//! Scalar values are plaintext when a file is encrypted: the events hold them in
//! zeroizing strings. saphyr's own buffers (its scanner's token text, from which
//! each value is copied) are not ours to wipe; they live only while the stream
//! is read.
//!
//! Collections nested deeper than [`MAX_DEPTH`] stop the stream at once: 10 MB of
//! `- - - ...` would otherwise become millions of events before the tree builder
//! refuses the depth.

use saphyr_parser::{Event, Parser, ScalarStyle};
use zeroize::Zeroizing;

use super::scan::Source;
use crate::formats::{too_deep, FormatError, MAX_DEPTH};

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum EvKind {
    DocStart,
    DocEnd,
    Alias,
    Scalar {
        /// The scalar's value: plaintext, wiped when the event is dropped.
        value: Zeroizing<String>,
        style: ScalarStyle,
        anchor: bool,
        /// (handle, suffix); handle `tag:yaml.org,2002:` for `!!x`.
        tag: Option<(String, String)>,
    },
    SeqStart {
        anchor: bool,
        tag: Option<(String, String)>,
    },
    SeqEnd,
    MapStart {
        anchor: bool,
        tag: Option<(String, String)>,
    },
    MapEnd,
}

#[derive(Clone, Debug)]
pub(crate) struct Ev {
    pub kind: EvKind,
    /// Byte offsets (saphyr's span, converted; not yet fixed up).
    pub start: usize,
    pub end: usize,
    /// 0-based column in characters of the start.
    pub col: usize,
}

/// All events of the stream (StreamStart/StreamEnd dropped).
pub(crate) fn events(src: &Source<'_>) -> Result<Vec<Ev>, FormatError> {
    let text = src.text;
    let raw = std::panic::catch_unwind(|| collect(text));
    let raw = match raw {
        Ok(r) => r,
        Err(_) => {
            return Err(FormatError::Syntax {
                line: 0,
                column: 0,
                message: "the YAML parser failed on this input; check the file is valid YAML"
                    .to_string(),
            })
        }
    };
    match raw {
        Ok((evs, too_deep_at)) => {
            if let Some(at) = too_deep_at {
                let (line, column) = src.line_col(src.byte(at));
                return Err(too_deep(line, column));
            }
            Ok(evs
                .into_iter()
                .map(|(kind, s, e, col)| Ev {
                    kind,
                    start: src.byte(s),
                    end: src.byte(e),
                    col,
                })
                .collect())
        }
        Err((index, line, col, info)) => {
            let _ = index;
            Err(FormatError::Syntax {
                line,
                column: col + 1,
                message: describe_error(&info),
            })
        }
    }
}

/// saphyr's error message, with the one about its nesting limit spelled out.
fn describe_error(info: &str) -> String {
    match flow_limit(info) {
        Some(m) => m.to_string(),
        None => format!("invalid YAML: {info}"),
    }
}

/// What saphyr's "recursion limit exceeded" means (it counts open `[`/`{` in a byte).
pub(crate) fn flow_limit(info: &str) -> Option<&'static str> {
    (info == "recursion limit exceeded").then_some(
        "flow collections (`[...]`, `{...}`) are nested more than 255 levels deep, which the \
         YAML parser does not accept: flatten the structure or write it in block style",
    )
}

type RawEv = (EvKind, usize, usize, usize);
type RawErr = (usize, usize, usize, String);

fn tag_of(tag: Option<&saphyr_parser::Tag>) -> Option<(String, String)> {
    tag.map(|t| (t.handle.clone(), t.suffix.clone()))
}

/// The events, or (as the second part) the char index of the first collection
/// nested deeper than [`MAX_DEPTH`], where collecting stopped.
fn collect(text: &str) -> Result<(Vec<RawEv>, Option<usize>), RawErr> {
    let mut parser = Parser::new_from_str(text);
    let mut out = Vec::new();
    let mut depth = 0usize;
    while let Some(next) = parser.next_event() {
        let (ev, span) = next.map_err(|e| {
            let m = e.marker();
            (m.index(), m.line(), m.col(), e.info().to_string())
        })?;
        let kind = match ev {
            Event::StreamStart | Event::Nothing => continue,
            Event::StreamEnd => break,
            Event::DocumentStart(_) => EvKind::DocStart,
            Event::DocumentEnd => EvKind::DocEnd,
            Event::Alias(_) => EvKind::Alias,
            Event::Scalar(v, style, anchor, tag) => EvKind::Scalar {
                value: Zeroizing::new(v.into_owned()),
                style,
                anchor: anchor != 0,
                tag: tag_of(tag.as_deref()),
            },
            Event::SequenceStart(anchor, tag) => EvKind::SeqStart {
                anchor: anchor != 0,
                tag: tag_of(tag.as_deref()),
            },
            Event::SequenceEnd => EvKind::SeqEnd,
            Event::MappingStart(anchor, tag) => EvKind::MapStart {
                anchor: anchor != 0,
                tag: tag_of(tag.as_deref()),
            },
            Event::MappingEnd => EvKind::MapEnd,
        };
        match kind {
            EvKind::SeqStart { .. } | EvKind::MapStart { .. } => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return Ok((out, Some(span.start.index())));
                }
            }
            EvKind::SeqEnd | EvKind::MapEnd => depth = depth.saturating_sub(1),
            _ => {}
        }
        out.push((kind, span.start.index(), span.end.index(), span.start.col()));
    }
    Ok((out, None))
}
