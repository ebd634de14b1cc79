//! The commands around the core ones: `kato search`, the filters of
//! `kato sessions`, `kato completions` and `kato man`. Kept beside
//! [`crate::cli`] so that file stays the dispatch table.

use std::io::{self, IsTerminal, Write};
use std::path::{Path, PathBuf};

use clap::{Args, CommandFactory};

use crate::cli::SessionRow;
use crate::config::Config;
use crate::error::{exit, Error, Result};
use crate::event::ProviderId;
use crate::search::{self, Hit, Matcher, Query, SearchKind};
use crate::terminal;

/// `--provider`: only these providers' sessions (repeatable, or
/// comma-separated). Disables the others for this invocation, so their
/// roots are neither read nor in the sandbox.
fn only_providers(cfg: &mut Config, names: &[ProviderId]) {
    if names.is_empty() {
        return;
    }
    for p in &mut cfg.providers {
        if !names.contains(&p.name) {
            p.enabled = false;
        }
    }
}

/// The filters of `kato sessions`.
#[derive(Debug, Clone, Args)]
pub struct SessionFilter {
    /// Only this provider's sessions (repeatable, or comma-separated).
    #[arg(long = "provider", value_name = "PROVIDER", value_delimiter = ',')]
    providers: Vec<ProviderId>,
    /// Only sessions active since then: a date (2026-01-08), a time
    /// (2026-01-08T15:00, UTC) or an age (7d, 12h).
    #[arg(long, value_name = "DATE")]
    since: Option<String>,
    /// Only sessions whose project directory is DIR or lies under it
    /// (default DIR: the current directory).
    #[arg(long, value_name = "DIR", num_args = 0..=1, default_missing_value = ".")]
    cwd: Option<PathBuf>,
    /// Show at most N sessions (the newest).
    #[arg(long, value_name = "N")]
    limit: Option<usize>,
}

/// [`SessionFilter`], resolved.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    since: Option<String>,
    cwd: Option<String>,
    limit: Option<usize>,
    providers: bool,
}

impl SessionFilter {
    /// Check the values and narrow `cfg` to the providers asked for.
    pub fn resolve(self, cfg: &mut Config) -> Result<Filter> {
        only_providers(cfg, &self.providers);
        let since = self
            .since
            .as_deref()
            .map(|s| search::parse_since(s, search::now_unix()))
            .transpose()?;
        let cwd = match self.cwd {
            Some(d) => Some(absolute(&d)?),
            None => None,
        };
        Ok(Filter {
            since,
            cwd,
            limit: self.limit,
            providers: !self.providers.is_empty(),
        })
    }
}

/// `dir` made absolute against the current directory, `.` and `..`
/// folded, symlinks kept (agents record the directory as the shell had it).
fn absolute(dir: &Path) -> Result<String> {
    let cwd = std::env::current_dir().map_err(|e| Error::io("finding the current directory", e))?;
    let mut out = PathBuf::new();
    for c in cwd.join(dir).components() {
        match c {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            other => out.push(other),
        }
    }
    Ok(out.display().to_string())
}

impl Filter {
    pub fn is_set(&self) -> bool {
        self.providers || self.since.is_some() || self.cwd.is_some() || self.limit.is_some()
    }

    /// Keep the rows that pass (`rows` is newest first).
    pub fn apply(&self, rows: &mut Vec<SessionRow>) {
        rows.retain(|r| {
            let since_ok = self
                .since
                .as_deref()
                .is_none_or(|since| r.last_activity.as_deref().is_some_and(|t| t >= since));
            let cwd_ok = self.cwd.as_deref().is_none_or(|dir| {
                r.cwd.as_deref().is_some_and(|c| {
                    let c = c.trim_end_matches('/');
                    let dir = dir.trim_end_matches('/');
                    c == dir
                        || c.strip_prefix(dir)
                            .is_some_and(|rest| rest.starts_with('/'))
                        || dir.is_empty()
                })
            });
            since_ok && cwd_ok
        });
        if let Some(n) = self.limit {
            rows.truncate(n);
        }
    }
}

/// `kato search`.
#[derive(Debug, Clone, Args)]
pub struct SearchArgs {
    /// Text to find (a pattern with --regex). Without upper-case letters
    /// it matches either case.
    pub pattern: String,
    /// Only this provider's sessions (repeatable, or comma-separated).
    #[arg(long = "provider", value_name = "PROVIDER", value_delimiter = ',')]
    providers: Vec<ProviderId>,
    /// What to search (repeatable, or comma-separated); default: user and
    /// assistant messages.
    #[arg(long = "kind", value_enum, value_name = "KIND", value_delimiter = ',')]
    kinds: Vec<SearchKind>,
    /// Only events since then: a date (2026-01-08), a time
    /// (2026-01-08T15:00, UTC) or an age (7d, 12h).
    #[arg(long, value_name = "DATE")]
    since: Option<String>,
    /// PATTERN is a regular expression (Rust `regex` syntax).
    #[arg(long)]
    regex: bool,
    /// Print a JSON array of the matches.
    #[arg(long)]
    pub json: bool,
    /// Show the newest N matches (0: all).
    #[arg(long, value_name = "N", default_value_t = 100)]
    limit: usize,
    /// Also search DIR for PROVIDER's sessions (default provider: aider,
    /// whose chat histories live in project folders). Repeatable.
    #[arg(long = "root", value_name = "[PROVIDER=]DIR")]
    pub roots: Vec<String>,
}

impl SearchArgs {
    /// Check the arguments and narrow `cfg` to the providers asked for.
    pub fn query(&self, cfg: &mut Config) -> Result<Query> {
        only_providers(cfg, &self.providers);
        let since = self
            .since
            .as_deref()
            .map(|s| search::parse_since(s, search::now_unix()))
            .transpose()?;
        let mut kinds = if self.kinds.is_empty() {
            SearchKind::DEFAULT.to_vec()
        } else {
            self.kinds.clone()
        };
        kinds.dedup();
        Ok(Query {
            matcher: Matcher::new(&self.pattern, self.regex)?,
            kinds,
            since,
            providers: self.providers.clone(),
            limit: self.limit,
        })
    }
}

/// Run a search and print it: exit 0 with matches, 1 without.
pub fn search(cfg: &Config, query: &Query, json: bool) -> Result<i32> {
    let started = std::time::Instant::now();
    let outcome = search::run(cfg, query)?;
    for p in &outcome.problems {
        terminal::eprintln(&format!("kato: {p}"));
    }
    let werr = |e| Error::io("writing to stdout", e);
    if json {
        terminal::json(&mut terminal::stdout(), &outcome.hits).map_err(werr)?;
    } else {
        let colour = io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
        let mut out = io::BufWriter::new(io::stdout().lock());
        for h in &outcome.hits {
            print_hit(&mut out, h, colour).map_err(werr)?;
        }
        out.flush().map_err(werr)?;
    }
    if io::stderr().is_terminal() {
        let secs = started.elapsed().as_secs_f64();
        terminal::eprintln(&format!(
            "kato: {} match(es) shown; {} session(s), {:.1} MB searched in {secs:.2} s ({:.0} MB/s)",
            outcome.hits.len(),
            outcome.sessions,
            outcome.bytes as f64 / 1e6,
            outcome.bytes as f64 / 1e6 / secs.max(1e-3)
        ));
    }
    if outcome.hits.is_empty() && !json {
        terminal::eprintln(
            "kato: no match; tool calls and thinking are searched only with --kind tool / --kind thinking",
        );
    }
    Ok(if outcome.hits.is_empty() {
        exit::FAILURE
    } else {
        exit::OK
    })
}

/// `TIME  PROVIDER  SESSION  KIND` then the snippet, indented; the match in
/// bold red on a terminal. Every piece of content is sanitised.
fn print_hit(out: &mut dyn Write, h: &Hit, colour: bool) -> io::Result<()> {
    let time = h
        .timestamp
        .as_deref()
        .map(crate::render::markdown::compact_time)
        .unwrap_or_else(|| "-".into());
    let kind = match h.kind {
        SearchKind::User => "user",
        SearchKind::Assistant => "assistant",
        SearchKind::Tool => "tool",
        SearchKind::Thinking => "thinking",
    };
    let (before, matched, after) = h.parts();
    let (on, off) = if colour {
        ("\x1b[1;31m", "\x1b[0m")
    } else {
        ("", "")
    };
    writeln!(
        out,
        "{}  {}  {}  {kind}\n    {}{on}{}{off}{}",
        terminal::sanitize(&time),
        h.provider,
        terminal::sanitize(&h.session_id),
        terminal::sanitize(before),
        terminal::sanitize(matched),
        terminal::sanitize(after),
    )
}

/// `kato completions SHELL`.
pub fn completions(shell: clap_complete::Shell) -> Result<i32> {
    let mut cmd = crate::cli::Cli::command();
    let mut buf = Vec::new();
    clap_complete::generate(shell, &mut cmd, "kato", &mut buf);
    io::stdout()
        .lock()
        .write_all(&buf)
        .map_err(|e| Error::io("writing to stdout", e))?;
    Ok(exit::OK)
}

/// `kato man`: the man page of kato and every subcommand, one roff document.
pub fn man() -> Result<i32> {
    let cmd = crate::cli::Cli::command();
    let mut buf = Vec::new();
    let werr = |e| Error::io("rendering the man page", e);
    clap_mangen::Man::new(cmd.clone())
        .render(&mut buf)
        .map_err(werr)?;
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        let name = format!("kato-{}", sub.get_name());
        buf.extend_from_slice(b"\n");
        clap_mangen::Man::new(sub.clone())
            .title(name)
            .render(&mut buf)
            .map_err(werr)?;
    }
    io::stdout()
        .lock()
        .write_all(&buf)
        .map_err(|e| Error::io("writing to stdout", e))?;
    Ok(exit::OK)
}
