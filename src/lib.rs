//! kato: a passive, sandboxed observer of AI coding-agent sessions.
//!
//! Stages (see ARCHITECTURE.md): watch → parse ([`provider`], [`reader`]) →
//! orchestrate → write ([`render`]), each confined by [`sandbox`].
#![forbid(unsafe_code)]

pub mod audit;
pub mod cli;
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
pub mod provider;
pub mod reader;
pub mod recording;
pub mod redact;
pub mod render;
pub mod sandbox;
pub mod terminal;
pub mod writer;
