#![no_main]

// The Claude parser's fast path (one pass for `user`/`assistant` lines)
// and its general path read any input to the same events and errors.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let lines: Vec<&[u8]> = data.split(|&b| b == b'\n').collect();
    let [fast, general] = kato::provider::claude::read_both_ways(&lines);
    assert_eq!(fast, general);
});
