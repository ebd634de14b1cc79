#![no_main]
//! Arbitrary bytes as a Cursor transcript: through the incremental reader
//! in two pieces with the state persisted between them (see `jsonl`), and
//! line by line in one pass where a line allows it and the general way
//! alone, which must agree.

mod jsonl;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    jsonl::run(
        "cursor",
        "home-u-proj/agent-transcripts/7d3c1a20-5b9e-4f6a-8c2d-0e1f2a3b4c5d/7d3c1a20-5b9e-4f6a-8c2d-0e1f2a3b4c5d.jsonl",
        data,
    );

    let lines: Vec<&[u8]> = data.split(|&b| b == b'\n').collect();
    let [fast, general] = kato::provider::cursor::read_both_ways(&lines);
    assert_eq!(fast, general);
});
