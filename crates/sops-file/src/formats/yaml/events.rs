//! Running saphyr-parser and turning its events into owned records with byte spans.
//!
//! saphyr is the authority on YAML syntax; this module only reads its event
//! stream (values, styles, tags, anchors) and converts its character-index markers
//! into byte offsets. A parse error becomes a [`FormatError::Syntax`] with saphyr's
//! message and position. saphyr is guarded with `catch_unwind` so that no input can
//! make `parse` panic.
//!
//! The events are handed to the tree builder one at a time ([`Events`]), not
//! collected first: a list of every event of a large file cost several times the
//! file's size (issue 18), while the builder only ever looks one event ahead. A
//! syntax error still wins over whatever the builder refuses: the builder drains
//! the stream ([`Events::finish`]) before reporting its own error, so the error a
//! file gets does not depend on which problem comes first.
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

/// saphyr's event stream as [`Ev`]s, one event of lookahead. After the last
/// event, or the first error, it yields nothing more; [`Events::finish`] says
/// whether the stream ended in an error.
pub(crate) struct Events<'s, 'a> {
    src: &'s Source<'a>,
    parser: Parser<'a, saphyr_parser::StrInput<'a>>,
    peeked: Option<Ev>,
    depth: usize,
    /// The stream's end was reached (or an error stopped it).
    done: bool,
    error: Option<FormatError>,
}

impl<'s, 'a> Events<'s, 'a> {
    pub(crate) fn new(src: &'s Source<'a>) -> Events<'s, 'a> {
        Events {
            src,
            parser: Parser::new_from_str(src.text),
            peeked: None,
            depth: 0,
            done: false,
            error: None,
        }
    }

    /// The next event, without consuming it.
    pub(crate) fn peek(&mut self) -> Option<&Ev> {
        if self.peeked.is_none() {
            self.peeked = self.read();
        }
        self.peeked.as_ref()
    }

    pub(crate) fn next(&mut self) -> Option<Ev> {
        match self.peeked.take() {
            Some(ev) => Some(ev),
            None => self.read(),
        }
    }

    /// Read the rest of the stream; its error, if it has one (a syntax error,
    /// a collection nested too deep, a parser failure).
    pub(crate) fn finish(&mut self) -> Option<FormatError> {
        self.peeked = None;
        while self.read().is_some() {}
        self.error.take()
    }

    fn read(&mut self) -> Option<Ev> {
        if self.done {
            return None;
        }
        let parser = &mut self.parser;
        let next = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| parser.next_event()));
        let fail = |this: &mut Self, e: FormatError| {
            this.done = true;
            this.error = Some(e);
            None
        };
        let (ev, span) = match next {
            Err(_) => {
                return fail(
                    self,
                    FormatError::Syntax {
                        line: 0,
                        column: 0,
                        message: "the YAML parser failed on this input; check the file is valid \
                                  YAML"
                            .to_string(),
                    },
                )
            }
            Ok(None) => {
                self.done = true;
                return None;
            }
            Ok(Some(Err(e))) => {
                let m = e.marker();
                let err = FormatError::Syntax {
                    line: m.line(),
                    column: m.col() + 1,
                    message: describe_error(e.info()),
                };
                return fail(self, err);
            }
            Ok(Some(Ok(next))) => next,
        };
        let kind = match ev {
            Event::StreamStart | Event::Nothing => return self.read(),
            Event::StreamEnd => {
                self.done = true;
                return None;
            }
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
                self.depth += 1;
                if self.depth > MAX_DEPTH {
                    let (line, column) = self.src.line_col(self.src.byte(span.start.index()));
                    return fail(self, too_deep(line, column));
                }
            }
            EvKind::SeqEnd | EvKind::MapEnd => self.depth = self.depth.saturating_sub(1),
            _ => {}
        }
        Some(Ev {
            kind,
            start: self.src.byte(span.start.index()),
            end: self.src.byte(span.end.index()),
            col: span.start.col(),
        })
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

fn tag_of(tag: Option<&saphyr_parser::Tag>) -> Option<(String, String)> {
    tag.map(|t| (t.handle.clone(), t.suffix.clone()))
}
