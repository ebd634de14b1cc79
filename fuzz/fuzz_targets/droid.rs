#![no_main]
//! Arbitrary bytes as a Factory Droid session: through the incremental reader
//! in two pieces with the state persisted between them (see `jsonl`), and
//! line by line in one pass where a line allows it and the general way
//! alone, which must agree.

mod jsonl;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    jsonl::run(
        "droid",
        "-home-u-proj/4c2e9a10-7b3d-4e5f-8a6b-1c2d3e4f5a6b.jsonl",
        data,
    );

    let lines: Vec<&[u8]> = data.split(|&b| b == b'\n').collect();
    let [fast, general] = kato::provider::droid::read_both_ways(&lines);
    assert_eq!(fast, general);
});
