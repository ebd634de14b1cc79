//! Shared body of the JSON Lines targets: arbitrary bytes through the
//! incremental line reader and one provider's parser must never panic, and
//! every event they make must encode as a JSONL line exactly as
//! `serde_json` writes it.

use std::path::Path;

use kato::provider::{by_name, ctx_for_path};
use kato::reader::{feed_lines, feed_lines_ahead, Limits, Tail};

#[path = "encode.rs"]
mod encode;
use encode::encodes_alike;

/// A way to feed lines: in place or read ahead.
type Feed = fn(
    &mut (dyn std::io::Read + Send),
    u64,
    Tail,
    Limits,
    &mut dyn kato::provider::RecordParser,
    &mut dyn FnMut(kato::event::Event),
    &mut Vec<kato::reader::Diagnostic>,
) -> std::io::Result<u64>;

/// Small, so that over-long lines are exercised too.
pub const LINE_CAP: usize = 16 << 10;

pub fn run(provider: &str, file: &str, data: &[u8]) {
    let provider = by_name(provider).expect("registered provider");
    let ctx = ctx_for_path(provider, Path::new(file));
    let limits = Limits {
        line_cap: LINE_CAP,
        ..Limits::default()
    };

    // Read in two increments, split at a point chosen by the input, with
    // the parser state persisted and restored in between.
    let split = data
        .first()
        .map_or(0, |b| usize::from(*b) * data.len() / 256);
    let (head, _) = data.split_at(split.min(data.len()));
    let mut parser = provider.parser(&ctx);
    let mut diagnostics = Vec::new();
    let end = feed_lines(
        &mut &head[..],
        0,
        Tail::Hold,
        limits,
        parser.as_mut(),
        &mut |ev| encodes_alike(&ev),
        &mut diagnostics,
    )
    .expect("reading a slice cannot fail");
    assert!(end <= head.len() as u64);
    parser.flush(&mut |ev| encodes_alike(&ev));
    let state = parser.state();

    let mut parser = provider.parser(&ctx);
    if parser.restore(&state).is_err() {
        parser = provider.parser(&ctx);
    }
    let rest = data.get(end as usize..).unwrap_or_default();
    let end2 = feed_lines(
        &mut &rest[..],
        end,
        Tail::Final,
        limits,
        parser.as_mut(),
        &mut |ev| encodes_alike(&ev),
        &mut diagnostics,
    )
    .expect("reading a slice cannot fail");
    assert_eq!(end2, data.len() as u64);
    parser.flush(&mut |ev| encodes_alike(&ev));
    let _ = parser.state();

    // Read whole, in place and ahead (line ends found and the bytes
    // checked as UTF-8 on another thread): the same events, the same
    // diagnostics.
    let whole = |ahead: bool| {
        let mut parser = provider.parser(&ctx);
        let mut events = Vec::new();
        let mut diagnostics = Vec::new();
        let mut out = |ev: kato::event::Event| {
            events.push(serde_json::to_string(&ev).expect("an event encodes"))
        };
        let feed: Feed = if ahead {
            feed_lines_ahead
        } else {
            |i, s, t, l, p, o, d| feed_lines(i, s, t, l, p, o, d)
        };
        let end = feed(
            &mut &data[..],
            0,
            Tail::Final,
            limits,
            parser.as_mut(),
            &mut out,
            &mut diagnostics,
        )
        .expect("reading a slice cannot fail");
        parser.flush(&mut out);
        (events, diagnostics, end)
    };
    assert_eq!(whole(true), whole(false));
}
