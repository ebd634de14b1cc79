//! kato: a passive, sandboxed observer of AI coding-agent sessions.
//!
//! Stages (see ARCHITECTURE.md): watch → parse ([`provider`], [`reader`]) →
//! orchestrate → write ([`render`]), each confined by [`sandbox`].
#![forbid(unsafe_code)]

pub mod audit;
pub mod clean;
pub mod cli;
mod cli_extra;
pub mod commands;
pub mod config;
pub mod daemon;
pub mod database;
pub mod discover;
pub mod error;
pub mod event;
pub mod export;
pub mod json_str;
pub mod policy;
pub mod progress;
pub mod provider;
pub mod reader;
pub mod recording;
pub mod redact;
pub mod render;
pub mod sandbox;
pub mod search;
pub mod sync;
pub mod terminal;
pub mod writer;
