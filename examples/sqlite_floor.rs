//! Benchmark floor for databases: a plain `SELECT` of every `data` column
//! of an OpenCode database (`message`, then `part`) through the same crate
//! kato reads it with (rusqlite, bundled SQLite), touching each value and
//! doing nothing else. `ci/bench` compares kato's export of the database
//! against this. With `--parse`, each value is also parsed as a
//! `serde_json::Value` (what the JSON Lines floor does with each line): the
//! cost of reading the rows plus decoding the JSON they hold. With
//! `--skim`, each value is only checked to be JSON (`IgnoredAny`: every
//! byte scanned, nothing built): the least any reader that must find a
//! field in the JSON pays on top of the `SELECT`.
use rusqlite::{Connection, OpenFlags};

fn main() -> rusqlite::Result<()> {
    let path = std::env::args().nth(1).unwrap_or_default();
    let mode = std::env::args().nth(2);
    let (parse, skim) = (
        mode.as_deref() == Some("--parse"),
        mode.as_deref() == Some("--skim"),
    );
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let (mut rows, mut bytes) = (0u64, 0u64);
    for table in ["message", "part"] {
        let mut stmt = conn.prepare(&format!("SELECT data FROM {table}"))?;
        let mut q = stmt.query([])?;
        while let Some(r) = q.next()? {
            rows += 1;
            let data = r.get_ref(0)?.as_bytes().unwrap_or_default();
            bytes += data.len() as u64;
            if parse && serde_json::from_slice::<serde_json::Value>(data).is_err() {
                bytes -= 1;
            }
            if skim && serde_json::from_slice::<serde::de::IgnoredAny>(data).is_err() {
                bytes -= 1;
            }
        }
    }
    println!("{rows} {bytes}");
    Ok(())
}
