#![no_main]

mod jsonl;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    jsonl::run(
        "cursor",
        "home-u-proj/agent-transcripts/7d3c1a20-5b9e-4f6a-8c2d-0e1f2a3b4c5d/7d3c1a20-5b9e-4f6a-8c2d-0e1f2a3b4c5d.jsonl",
        data,
    );
});
