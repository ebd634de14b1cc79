//! Benchmark floor for databases: a plain `SELECT` of every `data` column
//! of an OpenCode database (`message`, then `part`) through the same crate
//! kato reads it with (rusqlite, bundled SQLite), touching each value and
//! doing nothing else. `ci/bench` compares kato's export of the database
//! against this.
use rusqlite::{Connection, OpenFlags};

fn main() -> rusqlite::Result<()> {
    let path = std::env::args().nth(1).unwrap_or_default();
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let (mut rows, mut bytes) = (0u64, 0u64);
    for table in ["message", "part"] {
        let mut stmt = conn.prepare(&format!("SELECT data FROM {table}"))?;
        let mut q = stmt.query([])?;
        while let Some(r) = q.next()? {
            rows += 1;
            bytes += r.get_ref(0)?.as_bytes().map_or(0, |b| b.len() as u64);
        }
    }
    println!("{rows} {bytes}");
    Ok(())
}
