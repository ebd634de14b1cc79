//! Benchmark floor: parse every line of a JSONL file with plain
//! `serde_json::Value` and do nothing else. `ci/bench` compares kato's
//! export throughput against this.
use std::io::{BufRead, BufReader};

fn main() -> std::io::Result<()> {
    let path = std::env::args().nth(1).unwrap_or_default();
    let mut r = BufReader::with_capacity(256 << 10, std::fs::File::open(path)?);
    let mut line = Vec::new();
    let (mut ok, mut bad) = (0u64, 0u64);
    loop {
        line.clear();
        if r.read_until(b'\n', &mut line)? == 0 {
            break;
        }
        match serde_json::from_slice::<serde_json::Value>(&line) {
            Ok(_) => ok += 1,
            Err(_) => bad += 1,
        }
    }
    println!("{ok} {bad}");
    Ok(())
}
