//! Configuration (SPEC §12): TOML, unknown keys rejected, every key defaulted.
//!
//! Loading does the only ambient lookups (environment, home directory);
//! everything downstream receives a resolved [`Config`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::event::ProviderId;
use crate::policy::overlap::{self, Protected};
use crate::provider::{self, Registry};
use crate::reader::DEFAULT_LINE_CAP;

/// The raw file shape. `deny_unknown_fields` everywhere: a typo is an error.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct File {
    pub providers: BTreeMap<String, ProviderFile>,
    pub exports: ExportsFile,
    pub state: StateFile,
    pub sandbox: SandboxFile,
    pub markdown: MarkdownOptions,
    pub log: LogFile,
    pub limits: LimitsFile,
    pub redaction: crate::redact::RedactionOptions,
    pub daemon: DaemonFile,
    pub sync: SyncFile,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProviderFile {
    pub enabled: Option<bool>,
    pub roots: Option<Vec<String>>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ExportsFile {
    pub allowed_roots: Option<Vec<String>>,
    pub default_dir: Option<String>,
    /// Mode of exports and recordings kato creates, in octal (`"0644"`).
    pub file_mode: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct StateFile {
    pub dir: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SandboxMode {
    /// Fail closed when any confinement cannot be fully applied.
    #[default]
    Enforce,
    /// Run degraded, and say so.
    BestEffort,
}

impl SandboxMode {
    pub fn as_str(self) -> &'static str {
        match self {
            SandboxMode::Enforce => "enforce",
            SandboxMode::BestEffort => "best-effort",
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SandboxFile {
    pub mode: SandboxMode,
}

/// Markdown rendering options (SPEC §5).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct MarkdownOptions {
    /// YAML frontmatter at the top of new files.
    pub frontmatter: bool,
    /// Render assistant thinking.
    pub thinking: bool,
    /// Render tool calls and their results.
    pub tool_calls: bool,
    /// Render context the agent injected into the conversation (instruction
    /// files, environment and IDE context, model-only inputs), collapsed.
    /// Off by default: it is not what either party wrote, and it can run to
    /// hundreds of lines before the first human word. JSONL keeps it always.
    pub injected_context: bool,
    /// Longest tool output rendered, in bytes; the rest is cut with a note.
    pub tool_output_max_bytes: usize,
}

impl Default for MarkdownOptions {
    fn default() -> Self {
        MarkdownOptions {
            frontmatter: true,
            thinking: false,
            tool_calls: false,
            injected_context: false,
            tool_output_max_bytes: 4096,
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Human,
    Json,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogFile {
    pub level: Option<String>,
    pub format: LogFormat,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsFile {
    /// Longest accepted line of a session file, in bytes.
    pub line_cap: Option<usize>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct DaemonFile {
    /// Seconds between safety-net rescans of the provider roots.
    pub rescan_secs: Option<u64>,
}

/// `[sync]`: the daemon's autosync, off unless `dir` is set.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SyncFile {
    pub dir: Option<String>,
    /// One directory under `dir` (`{hostname}`: this machine's name).
    pub prefix: Option<String>,
    pub layout: Option<crate::sync::Layout>,
    pub format: Option<String>,
    /// Provider names; default: every enabled provider.
    pub providers: Option<Vec<String>>,
}

/// Default mode of exports and recordings: readable by everyone who can
/// reach them, writable by the owner only.
pub const DEFAULT_FILE_MODE: u32 = 0o644;

/// `[exports] file_mode`: an octal string, the owner may read and write,
/// nobody may execute, the world may not write.
pub fn parse_file_mode(raw: &str) -> std::result::Result<u32, String> {
    let digits = raw.strip_prefix("0o").unwrap_or(raw);
    let mode = u32::from_str_radix(digits, 8)
        .ok()
        .filter(|m| *m <= 0o777 && !digits.is_empty())
        .ok_or_else(|| {
            format!("`exports.file_mode` = `{raw}` is not an octal mode like \"0644\" or \"0600\"")
        })?;
    if mode & 0o600 != 0o600 {
        return Err(format!(
            "`exports.file_mode` = `{raw}`: the owner must be able to read and write (0600 at least)"
        ));
    }
    if mode & 0o111 != 0 {
        return Err(format!(
            "`exports.file_mode` = `{raw}`: exports are not programs; no execute bits"
        ));
    }
    if mode & 0o002 != 0 {
        return Err(format!(
            "`exports.file_mode` = `{raw}`: world-writable exports could be changed by anyone; use 0644 or 0664"
        ));
    }
    Ok(mode)
}

/// Default seconds between the daemon's safety-net rescans.
pub const DEFAULT_RESCAN_SECS: u64 = 300;

/// One provider's resolved settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProviderConfig {
    pub name: ProviderId,
    pub enabled: bool,
    pub roots: Vec<PathBuf>,
    /// Whether the roots are the provider's defaults (none configured).
    #[serde(skip)]
    pub defaulted: bool,
}

/// The resolved configuration every command works from.
#[derive(Debug, Clone, Serialize)]
pub struct Config {
    /// The file it came from, if any.
    pub source: Option<PathBuf>,
    /// Where kato looks for its config when none is named (protected like
    /// `source`: a file written there would be read at the next start).
    pub default_config: PathBuf,
    /// The providers this configuration was resolved against: what every
    /// command that enumerates or looks up providers uses.
    #[serde(skip)]
    pub registry: Registry,
    /// One entry per provider of `registry`, in its order.
    pub providers: Vec<ProviderConfig>,
    pub allowed_roots: Vec<PathBuf>,
    pub default_dir: PathBuf,
    pub state_dir: PathBuf,
    /// Where the daemon keeps `status.json` (volatile).
    pub runtime_dir: PathBuf,
    /// Where a detached daemon writes `kato.log`.
    pub logs_dir: PathBuf,
    /// Seconds between the daemon's safety-net rescans.
    pub rescan_secs: u64,
    pub sandbox_mode: SandboxMode,
    pub markdown: MarkdownOptions,
    pub log_level: String,
    pub log_format: LogFormat,
    pub line_cap: usize,
    /// Secret redaction (validated: its patterns compile).
    pub redaction: crate::redact::RedactionOptions,
    /// Mode of exports, recordings and synced files (`[exports] file_mode`).
    pub file_mode: u32,
    /// The daemon's autosync (`[sync]`); `None`: off.
    pub sync: Option<crate::sync::auto::Settings>,
}

/// What the environment says; gathered once so resolution is testable.
#[derive(Debug, Clone, Default)]
pub struct Env {
    pub home: Option<PathBuf>,
    pub xdg_config_home: Option<PathBuf>,
    pub xdg_state_home: Option<PathBuf>,
    pub xdg_runtime_dir: Option<PathBuf>,
    pub configuration_directory: Option<PathBuf>,
    pub state_directory: Option<PathBuf>,
    pub runtime_directory: Option<PathBuf>,
    pub logs_directory: Option<PathBuf>,
    /// The agents' own variables that move their files
    /// ([`provider::ConfigSection::env_override`]), by name, when set to
    /// an absolute path.
    pub agent_vars: BTreeMap<String, PathBuf>,
}

impl Env {
    pub fn from_process() -> Env {
        let path = |k: &str| {
            std::env::var_os(k)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        // systemd passes colon-separated lists; the first entry is ours.
        let first = |k: &str| {
            path(k).map(|p| {
                let s = p.to_string_lossy().into_owned();
                PathBuf::from(s.split(':').next().unwrap_or_default())
            })
        };
        Env {
            home: path("HOME"),
            xdg_config_home: path("XDG_CONFIG_HOME"),
            xdg_state_home: path("XDG_STATE_HOME"),
            xdg_runtime_dir: path("XDG_RUNTIME_DIR"),
            configuration_directory: first("CONFIGURATION_DIRECTORY"),
            state_directory: first("STATE_DIRECTORY"),
            runtime_directory: first("RUNTIME_DIRECTORY"),
            logs_directory: first("LOGS_DIRECTORY"),
            agent_vars: provider::registry()
                .iter()
                .filter_map(|p| p.config_section().env_override)
                .filter_map(|k| Some((k.to_owned(), path(k).filter(|p| p.is_absolute())?)))
                .collect(),
        }
    }

    fn home(&self) -> PathBuf {
        self.home.clone().unwrap_or_else(|| PathBuf::from("/"))
    }

    /// Where the config file is looked for when none is named.
    pub fn default_config_path(&self) -> PathBuf {
        if let Some(d) = &self.configuration_directory {
            return d.join("config.toml");
        }
        if let Some(d) = &self.xdg_config_home {
            return d.join("kato/config.toml");
        }
        self.home().join(".kato/config.toml")
    }

    fn default_state_dir(&self) -> PathBuf {
        if let Some(d) = &self.state_directory {
            return d.clone();
        }
        if let Some(d) = &self.xdg_state_home {
            return d.join("kato");
        }
        self.home().join(".kato/state")
    }

    /// `$RUNTIME_DIRECTORY`, else `$XDG_RUNTIME_DIR/kato`, else `~/.kato/run`.
    pub fn default_runtime_dir(&self) -> PathBuf {
        if let Some(d) = &self.runtime_directory {
            return d.clone();
        }
        if let Some(d) = &self.xdg_runtime_dir {
            return d.join("kato");
        }
        self.home().join(".kato/run")
    }

    /// `$LOGS_DIRECTORY`, else `$XDG_STATE_HOME/kato/logs`, else `~/.kato/logs`.
    pub fn default_logs_dir(&self) -> PathBuf {
        if let Some(d) = &self.logs_directory {
            return d.clone();
        }
        if let Some(d) = &self.xdg_state_home {
            return d.join("kato/logs");
        }
        self.home().join(".kato/logs")
    }

    /// Expand a leading `~` and require an absolute result.
    fn expand(&self, key: &str, raw: &str, origin: &Path) -> Result<PathBuf> {
        let p = if raw == "~" {
            self.home()
        } else if let Some(rest) = raw.strip_prefix("~/") {
            self.home().join(rest)
        } else {
            PathBuf::from(raw)
        };
        if !p.is_absolute() {
            return Err(Error::Config {
                path: origin.to_path_buf(),
                message: format!("`{key}`: `{raw}` is not an absolute path (use `/…` or `~/…`)"),
            });
        }
        if raw.contains('\0') {
            return Err(Error::Config {
                path: origin.to_path_buf(),
                message: format!("`{key}`: path contains a NUL byte"),
            });
        }
        Ok(p)
    }
}

impl Config {
    /// Load from `explicit` (must exist) or the default location (may be
    /// missing: then built-in defaults apply).
    pub fn load(explicit: Option<&Path>, env: &Env) -> Result<Config> {
        let (path, required) = match explicit {
            Some(p) => (p.to_path_buf(), true),
            None => (env.default_config_path(), false),
        };
        match std::fs::read_to_string(&path) {
            Ok(text) => Config::from_toml(&text, Some(&path), env),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => {
                Config::resolve(provider::registry(), File::default(), None, env)
            }
            Err(e) => Err(Error::Config {
                path,
                message: format!(
                    "cannot read it: {e}; check the path or pass another with --config"
                ),
            }),
        }
    }

    /// Resolve `text` against the registered providers.
    pub fn from_toml(text: &str, path: Option<&Path>, env: &Env) -> Result<Config> {
        Config::from_toml_with(provider::registry(), text, path, env)
    }

    /// Resolve `text` against the providers of `registry`.
    pub fn from_toml_with(
        registry: Registry,
        text: &str,
        path: Option<&Path>,
        env: &Env,
    ) -> Result<Config> {
        let origin = path.unwrap_or(Path::new("<built-in>"));
        let file: File = toml::from_str(text).map_err(|e| Error::Config {
            path: origin.to_path_buf(),
            message: e.to_string().trim_end().to_owned(),
        })?;
        Config::resolve(registry, file, path, env)
    }

    fn resolve(registry: Registry, file: File, path: Option<&Path>, env: &Env) -> Result<Config> {
        let origin = path.unwrap_or(Path::new("<built-in>")).to_path_buf();
        let cfg_err = |message: String| Error::Config {
            path: origin.clone(),
            message,
        };
        let home = env.home();
        let providers = Config::resolve_providers(registry, &file, env, &home, &origin)?;
        let default_dir = match &file.exports.default_dir {
            Some(d) => env.expand("exports.default_dir", d, &origin)?,
            None => home.join("kato-exports"),
        };
        let allowed_roots = match &file.exports.allowed_roots {
            Some(list) => list
                .iter()
                .map(|r| env.expand("exports.allowed_roots", r, &origin))
                .collect::<Result<Vec<_>>>()?,
            None => vec![default_dir.clone()],
        };
        let state_dir = match &file.state.dir {
            Some(d) => env.expand("state.dir", d, &origin)?,
            None => env.default_state_dir(),
        };
        let rescan_secs = file.daemon.rescan_secs.unwrap_or(DEFAULT_RESCAN_SECS);
        if rescan_secs < 5 {
            return Err(cfg_err(format!(
                "`daemon.rescan_secs` = {rescan_secs} is too small (minimum 5 seconds)"
            )));
        }
        let line_cap = file.limits.line_cap.unwrap_or(DEFAULT_LINE_CAP);
        if line_cap < 1024 {
            return Err(cfg_err(format!(
                "`limits.line_cap` = {line_cap} is too small (minimum 1024 bytes)"
            )));
        }
        let log_level = file.log.level.clone().unwrap_or_else(|| "info".to_owned());
        if !matches!(
            log_level.as_str(),
            "error" | "warn" | "info" | "debug" | "trace"
        ) {
            return Err(cfg_err(format!(
                "`log.level` = `{log_level}`; use one of error, warn, info, debug, trace"
            )));
        }
        crate::redact::Redactor::check(&file.redaction).map_err(|e| cfg_err(e.to_string()))?;
        let file_mode = match &file.exports.file_mode {
            Some(m) => parse_file_mode(m).map_err(&cfg_err)?,
            None => DEFAULT_FILE_MODE,
        };
        let sync = Config::resolve_sync(registry, &file.sync, env, &origin).map_err(&cfg_err)?;
        let mut cfg = Config {
            source: path.map(Path::to_path_buf),
            default_config: env.default_config_path(),
            registry,
            providers,
            allowed_roots,
            default_dir,
            state_dir,
            runtime_dir: env.default_runtime_dir(),
            logs_dir: env.default_logs_dir(),
            rescan_secs,
            sandbox_mode: file.sandbox.mode,
            markdown: file.markdown,
            log_level,
            log_format: file.log.format,
            line_cap,
            redaction: file.redaction,
            file_mode,
            sync,
        };
        cfg.drop_default_roots_in_own_dirs();
        cfg.check_overlaps().map_err(cfg_err)?;
        Ok(cfg)
    }

    /// What kato reads or keeps its own state in, which nothing may write
    /// into: every registered provider's roots (enabled or not), the config
    /// file (the one read and the default location), the state, runtime
    /// and logs directories.
    pub fn protected(&self) -> Vec<Protected> {
        let mut out = self.protected_provider_roots();
        if let Some(src) = &self.source {
            out.push(Protected::new("the config file", src));
        }
        if self.source.as_ref() != Some(&self.default_config) {
            out.push(Protected::new(
                "the default config file",
                &self.default_config,
            ));
        }
        out.push(Protected::new("the state directory", &self.state_dir));
        out.push(Protected::new("the runtime directory", &self.runtime_dir));
        out.push(Protected::new("the logs directory", &self.logs_dir));
        out
    }

    fn protected_provider_roots(&self) -> Vec<Protected> {
        self.providers
            .iter()
            .flat_map(|p| {
                p.roots
                    .iter()
                    .map(|r| Protected::new(format!("the {} provider root", p.name), r))
            })
            .collect()
    }

    /// A default root inside kato's own state, runtime or logs directory
    /// is no agent's folder (a container whose HOME is the state
    /// directory): it is dropped, not read. A configured one stays, and
    /// [`Config::check_overlaps`] refuses it.
    fn drop_default_roots_in_own_dirs(&mut self) {
        let own = [
            self.state_dir.clone(),
            self.runtime_dir.clone(),
            self.logs_dir.clone(),
        ];
        for p in self.providers.iter_mut().filter(|p| p.defaulted) {
            p.roots.retain(|r| !own.iter().any(|d| r.starts_with(d)));
        }
    }

    /// Export roots must not overlap anything [`Config::protected`] lists,
    /// and kato's own directories must not overlap a provider root: either
    /// would make kato write into what it reads. Paths are compared as
    /// [`crate::policy::overlap`] describes.
    fn check_overlaps(&self) -> std::result::Result<(), String> {
        let protected = self.protected();
        let mut writes: Vec<(&str, &Path)> = self
            .allowed_roots
            .iter()
            .map(|r| ("`exports.allowed_roots` entry", r.as_path()))
            .collect();
        writes.push(("`exports.default_dir`", &self.default_dir));
        if let Some(s) = &self.sync {
            writes.push(("`sync.dir`", &s.dir));
        }
        for (key, path) in writes {
            if let Some(p) = overlap::first_overlap(&protected, path) {
                return Err(format!(
                    "{key} {}: kato would write into what it reads or keeps its state in; \
                     choose export directories apart from the provider roots, the config file \
                     and kato's own directories",
                    p.describe(path)
                ));
            }
        }
        let roots = self.protected_provider_roots();
        let own = [
            ("the state directory", &self.state_dir),
            ("the runtime directory", &self.runtime_dir),
            ("the logs directory", &self.logs_dir),
        ];
        for (what, path) in own {
            if let Some(p) = overlap::first_overlap(&roots, path) {
                return Err(format!(
                    "{what} {}: kato would write into what it reads; move one of them",
                    p.describe(path)
                ));
            }
        }
        Ok(())
    }

    /// `[sync]`: `None` unless a directory is set.
    fn resolve_sync(
        registry: Registry,
        file: &SyncFile,
        env: &Env,
        origin: &Path,
    ) -> std::result::Result<Option<crate::sync::auto::Settings>, String> {
        let Some(dir) = &file.dir else {
            return Ok(None);
        };
        let dir = env.expand("sync.dir", dir, origin).map_err(|e| match e {
            Error::Config { message, .. } => message,
            other => other.to_string(),
        })?;
        let format = match &file.format {
            Some(f) => <crate::export::ExportFormat as clap::ValueEnum>::from_str(f, true)
                .map_err(|_| format!("`sync.format` = `{f}`; use markdown, jsonl or html"))?,
            None => crate::export::ExportFormat::Markdown,
        };
        let providers = file
            .providers
            .iter()
            .flatten()
            .map(|n| {
                registry.by_name(n).map(|p| p.id()).ok_or_else(|| {
                    format!(
                        "`sync.providers`: unknown provider `{n}`; known providers: {}",
                        registry.names()
                    )
                })
            })
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let prefix = file
            .prefix
            .as_deref()
            .map(crate::sync::prefix_component)
            .transpose()
            .map_err(|e| format!("`sync.prefix`: {e}"))?;
        Ok(Some(crate::sync::auto::Settings {
            dir,
            prefix,
            layout: file.layout.unwrap_or_default(),
            format,
            providers,
        }))
    }

    /// Every registered provider's settings; a section naming no
    /// registered provider is an error.
    fn resolve_providers(
        registry: Registry,
        file: &File,
        env: &Env,
        home: &Path,
        origin: &Path,
    ) -> Result<Vec<ProviderConfig>> {
        for name in file.providers.keys() {
            if registry.by_name(name).is_none() {
                return Err(Error::Config {
                    path: origin.to_path_buf(),
                    message: format!(
                        "unknown provider `providers.{name}`; known providers: {}",
                        registry.names()
                    ),
                });
            }
        }
        let mut providers = Vec::new();
        for p in registry.iter() {
            let name = p.id().as_str();
            let f = file.providers.get(name).cloned().unwrap_or_default();
            let defaulted = f.roots.is_none();
            let roots = match f.roots {
                Some(list) => list
                    .iter()
                    .map(|r| env.expand(&format!("providers.{name}.roots"), r, origin))
                    .collect::<Result<Vec<_>>>()?,
                None => match p
                    .config_section()
                    .env_override
                    .and_then(|k| env.agent_vars.get(k))
                {
                    Some(value) => p.env_roots(value),
                    None => p.default_roots(home),
                },
            };
            providers.push(ProviderConfig {
                name: p.id(),
                enabled: f.enabled.unwrap_or(true),
                roots,
                defaulted,
            });
        }
        Ok(providers)
    }

    /// Add roots named on the command line (`--root [PROVIDER=]DIR` of
    /// `kato sessions` and `kato export`) for this invocation: each is
    /// added to its provider's roots, and that provider enabled. PROVIDER
    /// defaults to `aider`, the agent that keeps its history in project
    /// folders and has no default root. DIR must be an existing directory;
    /// a relative one is taken from `cwd`; symbolic links in it are
    /// resolved. The roots are then checked as
    /// configured ones are (nothing kato writes may lie inside them).
    pub fn add_cli_roots(&mut self, specs: &[String], env: &Env, cwd: &Path) -> Result<()> {
        for spec in specs {
            let usage = |why: String| Error::Usage(format!("--root {spec}: {why}"));
            let (name, dir) = match spec.split_once('=') {
                Some((name, dir)) if self.registry.by_name(name).is_some() => (name, dir),
                _ => (ProviderId::Aider.as_str(), spec.as_str()),
            };
            if dir.is_empty() {
                return Err(usage("no directory named".to_owned()));
            }
            let path = match env.expand("--root", dir, Path::new("<command line>")) {
                Ok(p) => p,
                Err(_) => cwd.join(dir),
            };
            if !path.is_dir() {
                return Err(usage(format!("{} is not a directory", path.display())));
            }
            // Resolved once, as a root that is a symbolic link is.
            let path = std::fs::canonicalize(&path)
                .map_err(|e| usage(format!("{}: {e}", path.display())))?;
            let Some(pc) = self.providers.iter_mut().find(|p| p.name.as_str() == name) else {
                return Err(usage(format!("`{name}` is not a provider here")));
            };
            pc.enabled = true;
            if !pc.roots.contains(&path) {
                pc.roots.push(path);
            }
        }
        self.check_overlaps().map_err(Error::Usage)
    }

    /// Settings of one provider.
    pub fn provider(&self, id: ProviderId) -> Option<&ProviderConfig> {
        self.providers.iter().find(|p| p.name == id)
    }
}

/// The commented file written by `kato config init`: one section per
/// provider of `registry` (from [`provider::Provider::config_section`]),
/// then the rest.
pub fn template(registry: Registry) -> String {
    let mut out = String::from(TEMPLATE_HEAD);
    for (i, p) in registry.iter().enumerate() {
        if i > 0 {
            out.push_str("#\n");
        }
        let section = p.config_section();
        let name = p.id().as_str();
        let roots: Vec<String> = p
            .default_roots(Path::new("~"))
            .iter()
            .map(|r| format!("{:?}", r.display().to_string()))
            .collect();
        out.push_str(&format!(
            "# [providers.{name}]\n# {}\n",
            section.description
        ));
        if let Some(var) = section.env_override {
            out.push_str(&format!("# (the agent's ${var} moves these roots)\n"));
        }
        out.push_str(&format!(
            "# enabled = true\n# roots = [{}]\n",
            roots.join(", ")
        ));
    }
    out.push('\n');
    out.push_str(TEMPLATE_TAIL);
    out
}

const TEMPLATE_HEAD: &str = r#"# kato configuration. Every key is optional; the values shown are the defaults.
# Unknown keys are errors. Paths must be absolute or start with `~/`.

"#;

const TEMPLATE_TAIL: &str = r#"[exports]
# Paths typed in chat (`::capture /path`) must lie under one of these.
# Neither these nor default_dir may contain or lie inside a provider root,
# this file, or the state, runtime and logs directories: kato never writes
# into what it reads (checked at load, with symlinks resolved).
# allowed_roots = ["~/kato-exports"]
# Where `::record` / `::capture` without a path write.
# default_dir = "~/kato-exports"
# Mode of the exports, recordings and synced files kato creates (octal;
# no execute bits, not world-writable). kato's own state stays 0600.
# file_mode = "0644"

# [state]
# dir = "~/.kato/state"            # or $STATE_DIRECTORY / $XDG_STATE_HOME/kato

[sandbox]
# "enforce" fails closed when the kernel cannot confine kato;
# "best-effort" runs degraded and says so.
mode = "enforce"

[markdown]
# frontmatter = true
# thinking = false
# tool_calls = false
# injected_context = false         # instruction files, environment/IDE context
# tool_output_max_bytes = 4096

# [log]
# level = "info"                   # error | warn | info | debug | trace
# format = "human"                 # human | json

# [limits]
# line_cap = 67108864              # longest session-file line read, in bytes

# [redaction]
# Secrets (API keys, tokens, private keys, passwords in URLs and
# assignments) are replaced by `[REDACTED:<KIND>]` in every output.
# enabled = true
# Extra regular expressions, e.g. ['corp-[0-9a-f]{32}']; with a capture
# group only group 1 is replaced.
# extra_patterns = []
# Literal strings never redacted (e.g. a documented fake key).
# allow = []

# [daemon]
# rescan_secs = 300                # safety-net rescan of the roots (inotify does the rest)

# [sync]
# Autosync: the daemon keeps one export per session current under `dir`
# (as `kato sync -o DIR` does). Off unless `dir` is set; `dir` must lie
# apart from the provider roots, this file and kato's own directories.
# dir = "~/kato-sync"
# layout = "by-project"            # by-project | by-date | flat
# format = "markdown"              # markdown | jsonl
# providers = []                   # default: every enabled provider
# prefix = "{hostname}"            # one directory under dir per machine
"#;

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> Env {
        Env {
            home: Some("/home/u".into()),
            ..Env::default()
        }
    }

    #[test]
    fn defaults_without_a_file() {
        let c = Config::from_toml("", None, &env()).unwrap();
        assert_eq!(
            c.provider(ProviderId::Claude).unwrap().roots,
            [PathBuf::from("/home/u/.claude/projects")]
        );
        assert_eq!(c.sandbox_mode, SandboxMode::Enforce);
        assert_eq!(c.allowed_roots, [PathBuf::from("/home/u/kato-exports")]);
        assert_eq!(c.state_dir, PathBuf::from("/home/u/.kato/state"));
        assert_eq!(c.line_cap, DEFAULT_LINE_CAP);
    }

    #[test]
    fn template_is_valid_and_lists_every_provider() {
        let text = template(provider::registry());
        Config::from_toml(&text, None, &env()).unwrap();
        for p in provider::registry().iter() {
            let section = format!(
                "# [providers.{}]\n# {}\n",
                p.id(),
                p.config_section().description
            );
            assert!(text.contains(&section), "{text}");
        }
        assert!(
            text.contains("# roots = [\"~/.codex/sessions\", \"~/.codex/archived_sessions\"]\n"),
            "{text}"
        );
    }

    #[test]
    fn unknown_keys_are_named() {
        let e = Config::from_toml("[exports]\nallowed_rots = []\n", None, &env())
            .unwrap_err()
            .to_string();
        assert!(e.contains("allowed_rots"), "{e}");
        let e = Config::from_toml("[providers.nosuch]\nenabled = true\n", None, &env())
            .unwrap_err()
            .to_string();
        assert!(e.contains("providers.nosuch"), "{e}");
        let e = Config::from_toml("[sandbox]\nmode = \"off\"\n", None, &env())
            .unwrap_err()
            .to_string();
        assert!(e.contains("off"), "{e}");
    }

    #[test]
    fn relative_paths_are_rejected() {
        let e = Config::from_toml("[exports]\ndefault_dir = \"notes\"\n", None, &env())
            .unwrap_err()
            .to_string();
        assert!(e.contains("not an absolute path"), "{e}");
    }

    #[test]
    fn redaction_is_on_by_default_and_patterns_are_validated() {
        let c = Config::from_toml("", None, &env()).unwrap();
        assert!(c.redaction.enabled);
        let c = Config::from_toml(
            "[redaction]\nenabled = false\nextra_patterns = ['corp-[0-9]{6}']\nallow = ['x']\n",
            None,
            &env(),
        )
        .unwrap();
        assert!(!c.redaction.enabled);
        assert_eq!(c.redaction.extra_patterns, ["corp-[0-9]{6}"]);
        let e = Config::from_toml(
            "[redaction]\nextra_patterns = ['ok', 'bad(']\n",
            None,
            &env(),
        )
        .unwrap_err();
        assert_eq!(e.exit_code(), crate::error::exit::USAGE);
        let e = e.to_string();
        assert!(e.contains("redaction.extra_patterns[1]"), "{e}");
        assert!(e.contains("`bad(`"), "{e}");
        let e = Config::from_toml("[redaction]\nmask = true\n", None, &env())
            .unwrap_err()
            .to_string();
        assert!(e.contains("mask"), "{e}");
    }

    #[test]
    fn export_roots_overlapping_what_kato_reads_are_refused_naming_both() {
        let tmp = tempfile::tempdir().unwrap();
        let base = std::fs::canonicalize(tmp.path()).unwrap();
        let home = base.join("home");
        std::fs::create_dir_all(home.join(".claude/projects")).unwrap();
        std::fs::create_dir_all(base.join("notes")).unwrap();
        std::os::unix::fs::symlink(home.join(".claude"), base.join("notes/claude")).unwrap();
        let env = Env {
            home: Some(home.clone()),
            ..Env::default()
        };
        let h = home.display();
        let b = base.display();
        let cases = [
            // A parent of everything.
            (
                format!("[exports]\nallowed_roots = [\"{h}\"]\n"),
                "contains the claude provider root",
            ),
            // Inside a provider root (one that does not exist yet, too).
            (
                format!("[exports]\nallowed_roots = [\"{h}/.claude/projects/x\"]\n"),
                "lies inside the claude provider root",
            ),
            (
                format!("[exports]\nallowed_roots = [\"{h}/.gemini\"]\n"),
                "contains the gemini provider root",
            ),
            // Through a link.
            (
                format!("[exports]\nallowed_roots = [\"{b}/notes/claude\"]\n"),
                "contains the claude provider root",
            ),
            // The default directory, the config file, kato's own directories.
            (
                format!(
                    "[exports]\nallowed_roots = [\"{b}/notes\"]\ndefault_dir = \"{h}/.codex\"\n"
                ),
                "`exports.default_dir`",
            ),
            (
                format!("[exports]\nallowed_roots = [\"{h}/.kato\"]\n"),
                "the default config file",
            ),
            (
                format!(
                    "[exports]\nallowed_roots = [\"{b}/notes\"]\n[state]\ndir = \"{b}/notes/st\"\n"
                ),
                "the state directory",
            ),
            // kato's own state inside a provider root.
            (
                format!("[state]\ndir = \"{h}/.claude/projects/kato\"\n"),
                "the state directory `",
            ),
        ];
        for (toml, want) in cases {
            let e = Config::from_toml(&toml, None, &env).unwrap_err();
            assert_eq!(e.exit_code(), crate::error::exit::USAGE);
            let e = e.to_string();
            assert!(e.contains(want), "{toml}\n{e}");
        }
        let e = Config::from_toml(
            &format!("[exports]\nallowed_roots = [\"{h}\"]\n"),
            None,
            &env,
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains(&format!("`{h}` contains"))
                && e.contains(&format!("`{h}/.claude/projects`")),
            "{e}"
        );
        // The config file that was read is protected by its own path.
        let cfg_path = base.join("notes/kato.toml");
        let e = Config::from_toml(
            &format!("[exports]\nallowed_roots = [\"{b}/notes\"]\n"),
            Some(&cfg_path),
            &env,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("contains the config file"), "{e}");
        // Apart from all of them: valid.
        let c = Config::from_toml(
            &format!("[exports]\nallowed_roots = [\"{b}/notes\"]\n"),
            None,
            &env,
        )
        .unwrap();
        assert!(c
            .protected()
            .iter()
            .any(|p| p.what == "the gemini provider root"));
    }

    #[test]
    fn systemd_directories_win() {
        let env = Env {
            home: Some("/home/u".into()),
            state_directory: Some("/var/lib/kato".into()),
            configuration_directory: Some("/etc/kato".into()),
            xdg_state_home: Some("/x".into()),
            ..Env::default()
        };
        let c = Config::from_toml("", None, &env).unwrap();
        assert_eq!(c.state_dir, PathBuf::from("/var/lib/kato"));
        assert_eq!(c.logs_dir, PathBuf::from("/x/kato/logs"));
        assert_eq!(c.runtime_dir, PathBuf::from("/home/u/.kato/run"));
        let env = Env {
            runtime_directory: Some("/run/kato".into()),
            logs_directory: Some("/var/log/kato".into()),
            xdg_runtime_dir: Some("/run/user/1".into()),
            ..env
        };
        let c = Config::from_toml("", None, &env).unwrap();
        assert_eq!(c.runtime_dir, PathBuf::from("/run/kato"));
        assert_eq!(c.logs_dir, PathBuf::from("/var/log/kato"));
        let env = Env {
            runtime_directory: None,
            ..env
        };
        assert_eq!(env.default_runtime_dir(), PathBuf::from("/run/user/1/kato"));
        assert_eq!(
            env.default_config_path(),
            PathBuf::from("/etc/kato/config.toml")
        );
    }

    /// The container image's HOME is its state directory: every agent's
    /// default root lay inside it, and a config naming only the mounted
    /// agents failed ("the state directory contains the copilot provider
    /// root"). A default root inside kato's own directories is no agent's
    /// folder and is dropped; a root the config names there is still an
    /// error.
    #[test]
    fn default_roots_inside_the_state_directory_are_dropped_not_an_error() {
        let env = Env {
            home: Some("/var/lib/kato".into()),
            state_directory: Some("/var/lib/kato".into()),
            runtime_directory: Some("/run/kato".into()),
            logs_directory: Some("/var/log/kato".into()),
            ..Env::default()
        };
        let exports = "[exports]\nallowed_roots = [\"/home/alice/notes\"]\ndefault_dir = \"/home/alice/notes\"\n";
        let toml =
            format!("[providers.claude]\nroots = [\"/home/alice/.claude/projects\"]\n{exports}");
        let c = Config::from_toml(&toml, None, &env).unwrap();
        let claude = c.provider(ProviderId::Claude).unwrap();
        assert_eq!(
            claude.roots,
            [PathBuf::from("/home/alice/.claude/projects")]
        );
        for p in &c.providers {
            assert!(
                p.roots.iter().all(|r| !r.starts_with("/var/lib/kato")),
                "{:?}: {:?}",
                p.name,
                p.roots
            );
        }
        let toml = format!(
            "[providers.copilot]\nroots = [\"/var/lib/kato/.copilot/session-state\"]\n{exports}"
        );
        let e = Config::from_toml(&toml, None, &env)
            .unwrap_err()
            .to_string();
        assert!(e.contains("the copilot provider root"), "{e}");
    }
}
