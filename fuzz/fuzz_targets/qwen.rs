#![no_main]
//! Arbitrary bytes as a Qwen Code chat: through the incremental reader in
//! two pieces with the state persisted between them (see `jsonl`), and
//! line by line on the fast path and on the general path, which must
//! agree.

mod jsonl;

const FILE: &str = "-home-u-proj/chats/9a578cd0-ad2c-423c-8f19-95412a2d81af.jsonl";

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    jsonl::run("qwen", FILE, data);

    let lines: Vec<&[u8]> = data.split(|&b| b == b'\n').collect();
    let [fast, general] = kato::provider::qwen::read_both_ways(&lines);
    assert_eq!(fast, general);
});
