#![no_main]

mod jsonl;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    jsonl::run(
        "droid",
        "-home-u-proj/4c2e9a10-7b3d-4e5f-8a6b-1c2d3e4f5a6b.jsonl",
        data,
    );
});
