//! Command-line interface: argument parsing and dispatch. Each command
//! confines the process before it reads any session byte.

use std::io::{self, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use serde::Serialize;

use crate::config::{self, Config, Env, LogFormat, SandboxMode};
use crate::daemon::{self, lifecycle};
use crate::discover;
use crate::error::{exit, Error, Result};
use crate::export::{self, ExportFormat, Skipped};
use crate::terminal;

#[derive(Debug, Parser)]
#[command(
    name = "kato",
    version,
    about = "A passive, sandboxed observer of AI coding-agent sessions",
    long_about = "kato reads the session logs of AI coding agents (Claude Code, Codex, Gemini \
                  CLI and more: `kato doctor` lists the providers and their roots), turns them \
                  into one canonical event stream, and writes Markdown or JSONL. It confines \
                  itself (Landlock, seccomp, no capabilities, no network, no exec) before it \
                  reads any session byte."
)]
pub struct Cli {
    /// Configuration file (default: $CONFIGURATION_DIRECTORY/config.toml,
    /// $XDG_CONFIG_HOME/kato/config.toml or ~/.kato/config.toml; built-in
    /// defaults when none exists).
    #[arg(long, global = true, env = "KATO_CONFIG", value_name = "PATH")]
    pub config: Option<PathBuf>,

    /// Override `[sandbox] mode` for this invocation.
    #[arg(long, global = true, value_name = "MODE")]
    pub sandbox: Option<SandboxArg>,

    /// Operational log format (overrides `[log] format`).
    #[arg(long, global = true, value_name = "FORMAT")]
    pub log_format: Option<LogFormatArg>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum SandboxArg {
    Enforce,
    BestEffort,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum LogFormatArg {
    Human,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon in the foreground until SIGTERM or SIGINT.
    Run {
        /// Started by `kato start`: log to kato.log in the logs directory.
        #[arg(long, hide = true)]
        detached: bool,
    },
    /// Start the daemon in the background; returns once it is ready.
    Start {
        /// Seconds to wait for the daemon to report ready.
        #[arg(long, default_value_t = 30, value_name = "SECS")]
        timeout: u64,
    },
    /// Stop the running daemon (SIGTERM) and wait until it has persisted its state.
    Stop {
        /// Seconds to wait for it to exit.
        #[arg(long, default_value_t = 30, value_name = "SECS")]
        timeout: u64,
    },
    /// Stop the daemon if it runs, then start it.
    Restart {
        /// Seconds to wait for each of stop and start.
        #[arg(long, default_value_t = 30, value_name = "SECS")]
        timeout: u64,
    },
    /// Show the daemon's state: exit 0 when it is running, 3 when not.
    Status {
        /// Print status.json (plus `running`) instead of the dashboard.
        #[arg(long)]
        json: bool,
    },
    /// List the sessions under the configured provider roots, newest first.
    Sessions {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        /// Also search DIR for PROVIDER's sessions (default provider:
        /// aider, whose chat histories live in project folders).
        /// Repeatable.
        #[arg(long = "root", value_name = "[PROVIDER=]DIR")]
        roots: Vec<String>,
        #[command(flatten)]
        filter: crate::cli_extra::SessionFilter,
    },
    /// Search every session's messages (tool calls, thinking with --kind),
    /// newest first; secrets are redacted in what is printed.
    Search(crate::cli_extra::SearchArgs),
    /// Print a shell completion script (`source <(kato completions bash)`).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff) to standard output (`kato man | man -l -`).
    Man,
    /// Export one session as Markdown, JSONL or HTML.
    Export(ExportArgs),
    /// Keep a directory holding one export per session current: only
    /// changed sessions are read and rewritten (atomically); files a person
    /// edited are left alone and reported.
    Sync(crate::sync::SyncArgs),
    /// Remove kato's own state for session files that no longer exist (or
    /// older than asked). Never an export, never an agent's file.
    Clean(crate::clean::CleanArgs),
    /// Show kato's own permission surface: kernel support, per-stage rights,
    /// capabilities, no_new_privs, seccomp, sandbox mode and policy hash.
    Doctor {
        /// Print JSON (shape documented in the README).
        #[arg(long)]
        json: bool,
    },
    /// Write or check the configuration file.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Inspect the security audit log.
    #[command(subcommand)]
    Audit(AuditCommand),
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Check the hash chain of the audit log and its anchor; report the first
    /// broken record, or how the log's tail differs from what was anchored.
    Verify {
        /// Log to check (default: `security-audit.jsonl` in the state directory;
        /// its anchor is the file beside it with `.anchor` added).
        path: Option<PathBuf>,
        /// A chain head kept elsewhere (`kato status`, the daemon's log or
        /// journal): the log must still hold the record with this hash.
        #[arg(long, value_name = "HASH")]
        anchor: Option<String>,
    },
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Session id, unique id prefix (at least 8 characters), or path to a session file.
    pub session: String,
    /// Output file; `-` (the default) writes to standard output.
    #[arg(short, long, value_name = "PATH|-")]
    pub output: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value = "markdown")]
    pub format: ExportFormat,
    /// Include assistant thinking.
    #[arg(long)]
    pub thinking: bool,
    /// Include tool calls and their results.
    #[arg(long)]
    pub tool_calls: bool,
    /// Include context the agent injected (instruction files, environment
    /// and IDE context), collapsed.
    #[arg(long)]
    pub context: bool,
    /// Parse and render, but write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Print a JSON summary of the export (to stdout when the export goes to
    /// a file or with --dry-run, else to stderr).
    #[arg(long)]
    pub json: bool,
    /// Also search DIR for PROVIDER's sessions (default provider: aider,
    /// whose chat histories live in project folders). Repeatable.
    #[arg(long = "root", value_name = "[PROVIDER=]DIR")]
    pub roots: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Write a commented configuration file.
    Init {
        /// Where to write it (default: the default configuration path).
        path: Option<PathBuf>,
        /// Replace an existing file.
        #[arg(long)]
        force: bool,
    },
    /// Check a configuration file and print the resolved settings.
    Validate {
        /// File to check (default: --config or the default path).
        path: Option<PathBuf>,
    },
}

/// Parse arguments and run; returns the process exit code.
pub fn run() -> Result<i32> {
    let cli = Cli::parse();
    let env = Env::from_process();
    let fwd = forwarded(&cli);
    match cli.command {
        Command::Config(ConfigCommand::Init { path, force }) => config_init(
            path.or(cli.config)
                .unwrap_or_else(|| env.default_config_path()),
            force,
        ),
        Command::Config(ConfigCommand::Validate { path }) => config_validate(
            &path
                .or(cli.config)
                .unwrap_or_else(|| env.default_config_path()),
            &env,
        ),
        Command::Audit(AuditCommand::Verify { path, anchor }) => {
            let path = match path {
                Some(p) => p,
                None => load(&cli.config, cli.sandbox, &env)?
                    .state_dir
                    .join(crate::audit::FILE_NAME),
            };
            audit_verify(&path, anchor.as_deref())
        }
        Command::Sessions {
            json,
            roots,
            filter,
        } => {
            let mut cfg = load(&cli.config, cli.sandbox, &env)?;
            add_roots(&mut cfg, &roots, &env)?;
            let filter = filter.resolve(&mut cfg)?;
            confine_read_only(&cfg)?;
            sessions(&cfg, json, &filter)
        }
        Command::Search(args) => {
            let mut cfg = load(&cli.config, cli.sandbox, &env)?;
            add_roots(&mut cfg, &args.roots, &env)?;
            let query = args.query(&mut cfg)?;
            confine_read_only(&cfg)?;
            crate::cli_extra::search(&cfg, &query, args.json)
        }
        Command::Completions { shell } => crate::cli_extra::completions(shell),
        Command::Man => crate::cli_extra::man(),
        Command::Doctor { json } => {
            let cfg = load(&cli.config, cli.sandbox, &env)?;
            doctor(&cfg, json)
        }
        Command::Export(args) => {
            let mut cfg = load(&cli.config, cli.sandbox, &env)?;
            add_roots(&mut cfg, &args.roots, &env)?;
            export_cmd(&cfg, args)
        }
        Command::Sync(args) => {
            let mut cfg = load(&cli.config, cli.sandbox, &env)?;
            add_roots(&mut cfg, &args.roots, &env)?;
            crate::sync::command(&cfg, args)
        }
        Command::Clean(args) => {
            let cfg = load(&cli.config, cli.sandbox, &env)?;
            crate::clean::command(&cfg, args)
        }
        Command::Run { detached } => {
            let cfg = load(&cli.config, cli.sandbox, &env)?;
            daemon::run(
                cfg,
                daemon::RunOptions {
                    detached,
                    log_format: cli.log_format.map(log_format),
                },
            )
        }
        Command::Start { timeout } => {
            let cfg = load(&cli.config, cli.sandbox, &env)?;
            lifecycle::start(&cfg, &fwd, Duration::from_secs(timeout))
        }
        Command::Stop { timeout } => {
            let cfg = load(&cli.config, cli.sandbox, &env)?;
            lifecycle::stop(&cfg, Duration::from_secs(timeout))
        }
        Command::Restart { timeout } => {
            let cfg = load(&cli.config, cli.sandbox, &env)?;
            lifecycle::stop(&cfg, Duration::from_secs(timeout))?;
            lifecycle::start(&cfg, &fwd, Duration::from_secs(timeout))
        }
        Command::Status { json } => {
            let cfg = load(&cli.config, cli.sandbox, &env)?;
            daemon::status::command(&cfg.runtime_dir, &cfg.state_dir, json)
        }
    }
}

/// `kato config validate`: load the file and print what it resolves to.
fn config_validate(path: &Path, env: &Env) -> Result<i32> {
    let cfg = Config::load(Some(path), env)?;
    let mut out = terminal::stdout();
    writeln!(
        out,
        "{}: valid",
        cfg.source
            .as_deref()
            .map(|p| p.display().to_string())
            .unwrap_or_default()
    )
    .and_then(|()| terminal::json(&mut out, &cfg))
    .map_err(|e| Error::io("writing to stdout", e))?;
    Ok(exit::OK)
}

fn log_format(f: LogFormatArg) -> LogFormat {
    match f {
        LogFormatArg::Human => LogFormat::Human,
        LogFormatArg::Json => LogFormat::Json,
    }
}

/// What `kato start` hands on to the daemon it spawns.
fn forwarded(cli: &Cli) -> lifecycle::Forwarded {
    lifecycle::Forwarded {
        config: cli.config.clone(),
        sandbox: cli.sandbox.map(|s| match s {
            SandboxArg::Enforce => "enforce",
            SandboxArg::BestEffort => "best-effort",
        }),
        log_format: cli.log_format.map(|f| match f {
            LogFormatArg::Human => "human",
            LogFormatArg::Json => "json",
        }),
    }
}

/// `kato audit verify`: the chain, the anchor beside the log, and `--anchor`.
fn audit_verify(path: &Path, external: Option<&str>) -> Result<i32> {
    use crate::audit::verify::{self, AnchorVerdict};
    let external = match external {
        Some(a) => Some(verify::parse_external(a).ok_or_else(|| {
            Error::Usage(format!(
                "--anchor {a}: expected the 64 hex digits of a record's hash (`kato status` prints the head)"
            ))
        })?),
        None => None,
    };
    // A daemon holding the log's directory may append while this reads.
    let live = path
        .parent()
        .and_then(|dir| lifecycle::holder(dir).ok())
        .flatten()
        .is_some();
    let v = verify::check(path, external.as_deref(), live)
        .map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
    for n in &v.notes {
        terminal::println(&format!(
            "note: line {}: {}: {}",
            n.line,
            n.event.as_str(),
            n.reason
        ))
        .map_err(|e| Error::io("writing to stdout", e))?;
    }
    let chain = match &v.chain {
        Ok(c) => c,
        Err(broken) => {
            terminal::eprintln(&format!(
                "kato: {}: {broken}; records before line {} are intact",
                path.display(),
                broken.line
            ));
            return Ok(exit::FAILURE);
        }
    };
    let mut problems = Vec::new();
    let anchored = match &v.anchor {
        AnchorVerdict::Matches => "anchored".to_owned(),
        AnchorVerdict::OneAhead => format!(
            "anchored up to record {}; the last record was written just before kato stopped and is not anchored",
            chain.records - 1
        ),
        AnchorVerdict::Growing(n) => format!(
            "anchored up to record {}; the running daemon wrote {n} record(s) since",
            chain.records - n
        ),
        AnchorVerdict::Missing(p) if chain.records == 0 => format!("no anchor yet ({})", p.display()),
        AnchorVerdict::Missing(p) => {
            let msg = format!(
                "no anchor ({} is missing): a removed tail would not show; pass --anchor HASH",
                p.display()
            );
            if external.is_none() {
                problems.push(msg.clone());
            }
            msg
        }
        AnchorVerdict::Mismatch { anchor, reason } => {
            problems.push(format!("does not match its anchor ({anchor}): {reason}"));
            "NOT anchored".to_owned()
        }
        AnchorVerdict::Unusable(e) => {
            problems.push(e.clone());
            "NOT anchored".to_owned()
        }
    };
    let mut line = format!(
        "{}: {} record(s), chain intact, {anchored} (head {})",
        path.display(),
        chain.records,
        chain.head
    );
    if let Some((hash, at)) = &v.external {
        match at {
            Some(n) => line.push_str(&format!(
                "; --anchor {hash} is record {n}, {} record(s) follow it",
                chain.records - n
            )),
            None => problems.push(format!(
                "no record has the hash {hash} given by --anchor: the log was cut before it, or its chain was recomputed"
            )),
        }
    }
    if problems.is_empty() {
        terminal::println(&line).map_err(|e| Error::io("writing to stdout", e))?;
        return Ok(exit::OK);
    }
    for p in problems {
        terminal::eprintln(&format!("kato: {}: {p}", path.display()));
    }
    Ok(exit::FAILURE)
}

fn load(path: &Option<PathBuf>, sandbox: Option<SandboxArg>, env: &Env) -> Result<Config> {
    let mut cfg = Config::load(path.as_deref(), env)?;
    if let Some(m) = sandbox {
        cfg.sandbox_mode = match m {
            SandboxArg::Enforce => SandboxMode::Enforce,
            SandboxArg::BestEffort => SandboxMode::BestEffort,
        };
    }
    Ok(cfg)
}

/// `--root` of `sessions` and `export` ([`Config::add_cli_roots`]).
fn add_roots(cfg: &mut Config, roots: &[String], env: &Env) -> Result<()> {
    if roots.is_empty() {
        return Ok(());
    }
    let cwd = std::env::current_dir().map_err(|e| Error::io("finding the current directory", e))?;
    cfg.add_cli_roots(roots, env, &cwd)
}

/// Harden the process and confine it to reading the provider roots and the
/// config file, before any session byte is read (`kato sessions`, `kato
/// search`).
fn confine_read_only(cfg: &Config) -> Result<()> {
    use crate::sandbox;
    let hardened = sandbox::harden_process(cfg.sandbox_mode)?;
    export::report_degraded("startup", &hardened.missing);
    let applied = read_only_domain(cfg).apply(cfg.sandbox_mode)?;
    export::report_degraded("sessions", &applied.missing);
    Ok(())
}

/// What `kato sessions` and `kato search` read: the enabled providers'
/// roots (narrowed where a provider says so,
/// [`crate::sandbox::profiles::providers_reach`]),
/// the project registries beside them and the config file.
pub fn read_only_domain(cfg: &Config) -> crate::sandbox::Domain {
    use crate::sandbox::profiles;
    profiles::union(&[
        profiles::providers_reach(cfg),
        profiles::provider(&markers_beside(cfg)),
        profiles::startup(cfg.source.as_deref()),
    ])
}

/// The project registries `kato sessions` reads beside the enabled
/// providers' roots ([`crate::provider::Provider::markers_beside`]): each
/// one that is a regular file now (a rule needs an existing path; a link
/// is never followed into a rule).
pub(crate) fn markers_beside(cfg: &Config) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = cfg
        .providers
        .iter()
        .filter(|p| p.enabled)
        .filter_map(|p| cfg.registry.get(p.name).map(|prov| (prov, &p.roots)))
        .flat_map(|(prov, roots)| roots.iter().flat_map(|r| prov.markers_beside(r)))
        .filter(|f| std::fs::symlink_metadata(f).is_ok_and(|m| m.is_file()))
        .collect();
    files.sort();
    files.dedup();
    files
}

fn doctor(cfg: &Config, json: bool) -> Result<i32> {
    use crate::sandbox::{self, profiles};
    // Report on a process confined exactly as the daemon would be: harden,
    // then the process-wide domain. Failures are part of the report.
    if sandbox::harden_process(cfg.sandbox_mode).is_ok() {
        let _ = profiles::supervisor(cfg, false)
            .0
            .apply(sandbox::SandboxMode::BestEffort);
    }
    let report = sandbox::doctor::report(cfg, cfg.sandbox_mode);
    let mut out = terminal::stdout();
    let r = if json {
        terminal::json(&mut out, &report)
    } else {
        write!(out, "{report}")
    };
    r.map_err(|e| Error::io("writing to stdout", e))?;
    let ok = report.verdict.status != crate::sandbox::doctor::VerdictStatus::Failing;
    Ok(if ok { exit::OK } else { exit::FAILURE })
}

fn config_init(path: PathBuf, force: bool) -> Result<i32> {
    if path.exists() && !force {
        return Err(Error::Usage(format!(
            "{} already exists; pass --force to replace it, or `kato config validate` to check it",
            path.display()
        )));
    }
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|e| Error::io(format!("creating {}", parent.display()), e))?;
    }
    std::fs::write(&path, config::template(crate::provider::registry()))
        .map_err(|e| Error::io(format!("writing {}", path.display()), e))?;
    terminal::println(&format!("wrote {}", path.display()))
        .map_err(|e| Error::io("writing to stdout", e))?;
    Ok(exit::OK)
}

/// One row of `kato sessions`.
#[derive(Debug, Serialize)]
pub struct SessionRow {
    pub(crate) id: String,
    pub(crate) provider: crate::event::ProviderId,
    path: Option<PathBuf>,
    files: usize,
    title: String,
    /// The project directory, as the agent recorded it.
    pub(crate) cwd: Option<String>,
    first_activity: Option<String>,
    pub(crate) last_activity: Option<String>,
    events: u64,
    skipped: u64,
}

fn sessions(cfg: &Config, json: bool, filter: &crate::cli_extra::Filter) -> Result<i32> {
    let mut rows = session_rows(cfg)?;
    filter.apply(&mut rows);
    let mut out = terminal::stdout();
    let r = if json {
        terminal::json(&mut out, &rows)
    } else if rows.is_empty() && filter.is_set() {
        writeln!(
            out,
            "no sessions match the filters; run `kato sessions` without them to list every session"
        )
    } else if rows.is_empty() {
        writeln!(
            out,
            "no sessions found under the configured roots ({}); see `kato config validate`",
            cfg.providers
                .iter()
                .filter(|p| p.enabled)
                .flat_map(|p| p.roots.iter().map(|r| r.display().to_string()))
                .collect::<Vec<_>>()
                .join(", ")
        )
    } else {
        print_table(&mut out, &rows)
    };
    r.map_err(|e| Error::io("writing to stdout", e))?;
    Ok(exit::OK)
}

/// The rows of `kato sessions`, newest first: every session under the
/// roots of the config's providers.
pub fn session_rows(cfg: &Config) -> Result<Vec<SessionRow>> {
    let limits = export::limits(cfg);
    let redactor =
        std::sync::Arc::new(crate::redact::Redactor::new(&cfg.redaction).map_err(|e| {
            Error::Config {
                path: cfg.source.clone().unwrap_or_default(),
                message: e.to_string(),
            }
        })?);
    let (found, problems) = discover::walk_config(cfg);
    for p in &problems {
        terminal::eprintln(&format!(
            "kato: cannot read {}: {}",
            p.path.display(),
            p.error
        ));
    }
    let mut rows = Vec::new();
    for s in discover::group(found, limits) {
        let mut skipped = Skipped::default();
        // The collector redacts the title and participants it derives.
        let mut meta = crate::render::MetaCollector::new(redactor.clone());
        let mut events = 0u64;
        let mut recorded_cwd = None;
        let r = export::stream_session(&s, limits, &mut skipped, &mut |ev| {
            events += 1;
            meta.observe(&ev);
            if let Some(dir) = recorded_cwd_of(&ev) {
                recorded_cwd = Some(dir);
            }
        });
        if let Err(e) = r {
            terminal::eprintln(&format!("kato: {e}"));
            continue;
        }
        let meta = meta.finish();
        rows.push(SessionRow {
            id: s.session_id.clone(),
            provider: s.provider,
            path: s.main_path().map(PathBuf::from),
            files: s.files.len(),
            title: meta.title,
            cwd: s
                .main_file()
                .and_then(discover::project_dir)
                .or(recorded_cwd)
                // Redacted like the title: a directory name can hold a secret.
                .map(|c| redactor.redact_str(&c).text.into_owned()),
            first_activity: meta.created,
            last_activity: meta.updated,
            events,
            skipped: skipped.total,
        });
    }
    rows.sort_by(|a, b| b.last_activity.cmp(&a.last_activity).then(a.id.cmp(&b.id)));
    Ok(rows)
}

/// The working directory a session's records name, for agents that keep
/// no project marker beside the file: the `cwd` of a `provider.info`
/// `session_meta` event (sent when it changes) or `cwd` event (Cline's
/// environment details), not a subagent's. The last one a session holds is
/// its cwd; one with a control character is not shown.
pub(crate) fn recorded_cwd_of(ev: &crate::event::Event) -> Option<String> {
    /// `{"cwd": "<dir>", …}`, or (a `cwd` event) the directory alone.
    #[derive(serde::Deserialize)]
    #[serde(untagged)]
    enum Cwd {
        Object { cwd: Option<String> },
        Dir(String),
    }
    let crate::event::Payload::ProviderInfo { topic, data } = &ev.payload else {
        return None;
    };
    if (topic != "session_meta" && topic != "cwd") || ev.subagent.is_some() {
        return None;
    }
    let dir = match serde_json::from_str::<Cwd>(data.get()).ok()? {
        Cwd::Object { cwd } => cwd?,
        Cwd::Dir(dir) if topic == "cwd" => dir,
        Cwd::Dir(_) => return None,
    };
    (!dir.trim().is_empty() && !dir.chars().any(char::is_control)).then_some(dir)
}

/// Widest CWD column; longer directories keep their end.
const CWD_WIDTH: usize = 32;

fn print_table(out: &mut dyn Write, rows: &[SessionRow]) -> io::Result<()> {
    writeln!(
        out,
        "{:<36}  {:<7}  {:>7}  {:<20}  {:<CWD_WIDTH$}  TITLE",
        "ID", "AGENT", "EVENTS", "LAST ACTIVITY", "CWD"
    )?;
    for r in rows {
        writeln!(
            out,
            "{:<36}  {:<7}  {:>7}  {:<20}  {:<CWD_WIDTH$}  {}",
            r.id,
            r.provider.as_str(),
            r.events,
            r.last_activity
                .as_deref()
                .map(crate::render::markdown::compact_time)
                .unwrap_or_else(|| "-".into()),
            r.cwd.as_deref().map_or_else(|| "-".into(), cut_left),
            r.title
        )?;
    }
    Ok(())
}

/// The last [`CWD_WIDTH`] characters, an ellipsis first when cut.
fn cut_left(s: &str) -> String {
    let n = s.chars().count();
    if n <= CWD_WIDTH {
        return s.to_owned();
    }
    let tail: String = s.chars().skip(n - (CWD_WIDTH - 1)).collect();
    format!("…{tail}")
}

fn export_cmd(cfg: &Config, args: ExportArgs) -> Result<i32> {
    let output = match args.output.as_deref() {
        None | Some("-") => None,
        Some(p) => Some(PathBuf::from(p)),
    };
    let to_stdout = output.is_none() && !args.dry_run;
    let mut markdown = cfg.markdown.clone();
    markdown.thinking |= args.thinking;
    markdown.tool_calls |= args.tool_calls;
    markdown.injected_context |= args.context;
    let req = export::Request {
        format: args.format,
        markdown,
        output,
        dry_run: args.dry_run,
    };
    let summary = export::run(cfg, &args.session, &req)?;
    if summary.skipped.total > 0 {
        terminal::eprintln(&format!(
            "kato: skipped {} malformed record(s) (first at {}:{}); the rest was exported",
            summary.skipped.total,
            summary
                .skipped
                .first
                .first()
                .map(|s| s.file.display().to_string())
                .unwrap_or_default(),
            summary
                .skipped
                .first
                .first()
                .map(|s| s.offset)
                .unwrap_or_default(),
        ));
    }
    if args.json {
        let text = serde_json::to_string_pretty(&summary)
            .map_err(|e| Error::io("encoding the summary", io::Error::from(e)))?;
        if to_stdout {
            terminal::eprintln(&text);
        } else {
            terminal::println(&text).map_err(|e| Error::io("writing to stdout", e))?;
        }
    } else if !to_stdout && io::stderr().is_terminal() {
        terminal::eprintln(&format!(
            "kato: {} {} event(s), {} bytes → {}",
            if args.dry_run { "would write" } else { "wrote" },
            summary.events,
            summary.bytes,
            summary.output
        ));
    }
    Ok(exit::OK)
}
