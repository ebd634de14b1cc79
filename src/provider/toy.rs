//! A toy provider, defined here and nowhere else, run through the code that
//! enumerates providers: discovery, `kato sessions`, export's lookups and
//! rendering, the config and its template, the sandbox's roots. Nothing
//! outside this file knows it except its `ProviderId::Toy` variant (see
//! [`crate::event::ProviderId`] for why a test provider needs one).
//!
//! The format: `<name>.toy` files; a first line `#toy <session id>`, then
//! `user: …` / `assistant: …` lines.

use std::path::{Path, PathBuf};

use super::{
    offset_id, stem, ConfigSection, FileCtx, Malformed, Provider, RecordParser, Registry, Sniff,
    SourceKind,
};
use crate::config::{Config, Env};
use crate::event::{Event, Payload, ProviderId, Source};

struct Toy;

impl Provider for Toy {
    fn id(&self) -> ProviderId {
        ProviderId::Toy
    }

    fn default_roots(&self, home: &Path) -> Vec<PathBuf> {
        vec![home.join(".toy/logs")]
    }

    fn source_kind(&self) -> SourceKind {
        SourceKind::Jsonl
    }

    fn classify(&self, rel: &Path) -> Option<FileCtx> {
        (rel.extension()? == "toy").then(|| FileCtx {
            provider: ProviderId::Toy,
            file_tag: stem(rel),
            session_hint: stem(rel),
            subagent: None,
        })
    }

    fn sniff(&self, head: &[u8]) -> Sniff {
        if head.starts_with(b"#toy ") {
            Sniff::Strong
        } else {
            Sniff::No
        }
    }

    fn config_section(&self) -> ConfigSection {
        ConfigSection {
            description: "Toy agent: one line per message.",
            env_override: Some("TOY_HOME"),
        }
    }

    fn parser(&self, ctx: &FileCtx) -> Box<dyn RecordParser> {
        Box::new(ToyParser {
            tag: ctx.file_tag.clone(),
            session: ctx.session_hint.clone(),
        })
    }
}

struct ToyParser {
    tag: String,
    session: String,
}

impl RecordParser for ToyParser {
    crate::provider::record_as_text!();

    fn record_text(
        &mut self,
        offset: u64,
        line: &str,
        out: &mut dyn FnMut(Event),
    ) -> Result<(), Malformed> {
        if let Some(id) = line.strip_prefix("#toy ") {
            self.session = id.to_owned();
            return Ok(());
        }
        let (record, payload) = if let Some(text) = line.strip_prefix("user: ") {
            let text = text.to_owned();
            let payload = Payload::UserMessage {
                text,
                attachments: 0,
            };
            ("user", payload)
        } else if let Some(text) = line.strip_prefix("assistant: ") {
            let text = text.to_owned();
            ("assistant", Payload::AssistantMessage { text })
        } else {
            return Err(Malformed::WrongShape(format!("not a toy line: {line}")));
        };
        let source = Source {
            record: record.into(),
            offset,
            file: None,
        };
        let id = offset_id(&self.tag, offset, 0);
        out(Event::new(
            ProviderId::Toy,
            self.session.clone(),
            id,
            source,
            payload,
        ));
        Ok(())
    }

    fn state(&self) -> serde_json::Value {
        serde_json::json!({ "session": self.session })
    }

    fn restore(&mut self, state: &serde_json::Value) -> Result<(), Malformed> {
        let session = state["session"].as_str();
        self.session = session
            .ok_or_else(|| Malformed::WrongShape("state".into()))?
            .into();
        Ok(())
    }
}

static PROVIDERS: [&dyn Provider; 2] = [&super::claude::Claude, &Toy];

fn registry() -> Registry {
    Registry::new(&PROVIDERS)
}

const TOY_SESSION: &str = "#toy toy-session-0001\nuser: hello toy\nassistant: hello human\n";

fn config(root: &Path) -> Config {
    let text = format!(
        "[providers.toy]\nroots = [\"{}\"]\n[providers.claude]\nenabled = false\n",
        root.display()
    );
    let env = Env {
        // Beside the root: a home inside it would hold the default export
        // directory, which may not lie inside a provider root.
        home: Some(root.with_file_name("home")),
        ..Env::default()
    };
    Config::from_toml_with(registry(), &text, None, &env).unwrap()
}

#[test]
fn a_toy_provider_needs_no_change_elsewhere() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("toy");
    std::fs::create_dir_all(root.join("project")).unwrap();
    std::fs::write(root.join("project/a.toy"), TOY_SESSION).unwrap();
    std::fs::write(root.join("project/notes.txt"), "not a session\n").unwrap();
    let cfg = config(&root);

    // Config: its section is read, the global registry's names are not known.
    assert_eq!(
        cfg.provider(ProviderId::Toy).unwrap().roots,
        std::slice::from_ref(&root)
    );
    assert!(!cfg.provider(ProviderId::Claude).unwrap().enabled);
    let e = Config::from_toml_with(registry(), "[providers.codex]\n", None, &Env::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("known providers: claude, toy"), "{e}");
    assert!(crate::sandbox::profiles::provider_roots(&cfg).contains(&root));

    // Discovery finds its file and nothing else.
    let (found, problems) = crate::discover::walk_config(&cfg);
    assert!(problems.is_empty(), "{problems:?}");
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].provider.id(), ProviderId::Toy);

    // `kato sessions` lists it, named by its records.
    let rows = crate::cli::session_rows(&cfg).unwrap();
    let rows = serde_json::to_value(&rows).unwrap();
    assert_eq!(rows[0]["id"], "toy-session-0001", "{rows}");
    assert_eq!(rows[0]["provider"], "toy", "{rows}");
    assert_eq!(rows[0]["events"], 2, "{rows}");
    assert_eq!(rows[0]["title"], "hello toy", "{rows}");

    // Export resolves it by id and by a path outside the roots (sniffed),
    // and renders it.
    let session = crate::export::resolve(&cfg, "toy-session-0001").unwrap();
    assert_eq!(session.provider, ProviderId::Toy);
    let elsewhere = dir.path().join("b.toy");
    std::fs::write(&elsewhere, TOY_SESSION).unwrap();
    let by_path = crate::export::resolve(&cfg, elsewhere.to_str().unwrap()).unwrap();
    assert_eq!(by_path.provider, ProviderId::Toy);
    assert_eq!(by_path.session_id, "toy-session-0001");
    let limits = crate::export::limits(&cfg);
    let redactor = std::sync::Arc::new(crate::redact::Redactor::new(&cfg.redaction).unwrap());
    let meta = crate::export::collect_meta(&session, limits, &redactor).unwrap();
    let options = crate::config::MarkdownOptions::default();
    let mut r = crate::render::markdown::MarkdownRenderer::new(Vec::new(), &options);
    r.header(&meta).unwrap();
    let mut skipped = crate::export::Skipped::default();
    crate::export::stream_session(&session, limits, &mut skipped, &mut |ev| {
        r.event(&ev).unwrap();
    })
    .unwrap();
    let text = String::from_utf8(r.finish().unwrap()).unwrap();
    assert!(text.contains("provider: \"toy\""), "{text}");
    assert!(text.contains("hello human"), "{text}");
    assert_eq!(skipped.total, 0);
}

#[test]
fn the_template_has_a_section_per_provider_of_the_registry() {
    let text = crate::config::template(registry());
    let toy = "# [providers.toy]\n# Toy agent: one line per message.\n\
               # (the agent's $TOY_HOME moves these roots)\n\
               # enabled = true\n# roots = [\"~/.toy/logs\"]\n";
    assert!(text.contains(toy), "{text}");
    assert!(text.contains("# [providers.claude]\n"), "{text}");
    assert!(!text.contains("# [providers.codex]\n"), "{text}");
    Config::from_toml_with(registry(), &text, None, &Env::default()).unwrap();
}
