//! The integration tests: one binary (`cargo test --test it`), one harness.
//!
//! `harness` holds what more than one module needs: the daemon under test
//! in temporary directories, session-line builders, and the one lookup of
//! the real agent corpus (`../shared/fixtures/real` or `$KATO_FIXTURES`).

mod harness;

mod aider;
mod amp;
mod architecture;
mod audit;
mod chaos;
mod claude_fixtures;
mod cli;
mod cline;
mod copilot;
mod crash;
mod crush;
mod cursor;
mod daemon;
mod deploy_roots;
mod derived_secrets;
mod droid;
mod export_spill;
mod full_disk;
mod gemini_fixtures;
mod gemini_jsonl;
mod goose;
mod incremental;
mod kimi;
mod opencode;
mod overlap;
mod provenance;
mod qwen;
mod real_aider;
mod real_amp;
mod real_claude;
mod real_cline;
mod real_codex;
mod real_copilot;
mod real_crush;
mod real_cursor;
mod real_droid;
mod real_gemini;
mod real_gemini_jsonl;
mod real_kimi;
mod real_opencode;
mod real_qwen;
mod recording;
mod redact;
mod render_limits;
mod replay;
mod sandbox_boundaries;
mod search_html;
mod snapshot_order;
mod strace_export_script;
mod sync;
mod terminal;
