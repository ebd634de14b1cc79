#![no_main]

mod jsonl;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    jsonl::run(
        "codex",
        "2026/04/15/rollout-2026-04-15T03-00-45-0b6f0b1e-4c52-4c8e-9d3a-2f1e5c7a9b10.jsonl",
        data,
    );
});
