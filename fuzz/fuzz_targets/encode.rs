//! Every event a parser makes must encode as a JSONL line exactly as
//! `serde_json` writes it (the export's encoder is written by hand).

use kato::event::{Event, JsonlRecord, SCHEMA_VERSION};

/// The hand-written JSONL encoding of `ev` is `serde_json`'s.
pub fn encodes_alike(ev: &Event) {
    let mut line = Vec::new();
    kato::render::jsonl::encode(ev, &mut line);
    let reference = serde_json::to_vec(&JsonlRecord {
        schema_version: SCHEMA_VERSION,
        event: ev,
    })
    .expect("an event serializes");
    assert_eq!(line, reference);
}
