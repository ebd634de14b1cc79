//! The confinement sequence of `kato export`, reduced to copying a file:
//! harden the process, confine the thread to the export domain, and only
//! then open the session file. `ci/strace-export` checks that order in a
//! system-call trace; this program lets the checker be exercised on its own.
//!
//! ```text
//! cargo run --example confined_export -- export SOURCE -o OUTPUT [--violate WHAT]
//! ```
//!
//! `--violate` breaks the sequence on purpose so the checker can be shown
//! to notice: `open-early` (read the source before confining), `socket`
//! (open a UDP socket first), `exec` (run /bin/true first), `extra-file`
//! (create a second file beside the output), `no-landlock` (skip the
//! domain).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use kato::policy;
use kato::sandbox::{harden_process, profiles, SandboxMode};

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("confined_export: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (source, output, violate) = match args.as_slice() {
        [cmd, src, o, out] if cmd == "export" && o == "-o" => (src, out, ""),
        [cmd, src, o, out, v, what] if cmd == "export" && o == "-o" && v == "--violate" => {
            (src, out, what.as_str())
        }
        _ => return Err("usage: confined_export export SOURCE -o OUTPUT [--violate WHAT]".into()),
    };
    let source = PathBuf::from(source);
    let output = PathBuf::from(output);

    match violate {
        "" | "no-landlock" => {}
        "open-early" => {
            std::fs::read(&source).map_err(|e| e.to_string())?;
        }
        "socket" => {
            std::net::UdpSocket::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
        }
        "exec" => {
            std::process::Command::new("/bin/true")
                .status()
                .map_err(|e| e.to_string())?;
        }
        "extra-file" => {
            let extra = output.with_extension("extra");
            std::fs::write(extra, "").map_err(|e| e.to_string())?;
        }
        other => return Err(format!("unknown violation `{other}`")),
    }

    harden_process(SandboxMode::Enforce).map_err(|e| e.to_string())?;
    // As `kato export` does: the output is created through the path
    // policy's open (beneath its directory, no symlink) before narrowing.
    let output = policy::output_path(&output).map_err(|e| e.to_string())?;
    let (mut out, _) = policy::open_output(&output).map_err(|e| e.to_string())?;
    if violate != "no-landlock" {
        profiles::export(std::slice::from_ref(&source), None, Some(&output))
            .apply(SandboxMode::Enforce)
            .map_err(|e| e.to_string())?;
    }
    let text = std::fs::read(&source).map_err(|e| format!("{}: {e}", source.display()))?;
    out.write_all(&text)
        .map_err(|e| format!("{}: {e}", output.display()))?;
    Ok(())
}
