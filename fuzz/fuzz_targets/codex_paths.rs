#![no_main]

// The Codex parser's fast path (one pass for enveloped response items) and
// its general path read any input to the same events and errors; so do a
// parser told to leave hidden texts undecoded and one reading them all;
// so do one that keeps tool outputs as JSON literals and one decoding them.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let lines: Vec<&[u8]> = data.split(|&b| b == b'\n').collect();
    let [fast, general] = kato::provider::codex::read_both_ways(&lines);
    assert_eq!(fast, general);
    let [hidden, full] = kato::provider::codex::read_hidden_both_ways(&lines);
    assert_eq!(hidden, full);
    let [json, decoded] = kato::provider::codex::read_json_both_ways(&lines);
    assert_eq!(json, decoded);
});
