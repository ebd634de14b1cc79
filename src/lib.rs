//! kato: a passive, sandboxed observer of AI coding-agent sessions.
//!
//! Stages (see ARCHITECTURE.md): watch → parse ([`provider`], [`reader`]) →
//! orchestrate → write ([`render`]), each confined by [`sandbox`].
#![forbid(unsafe_code)]

pub mod config;
pub mod error;
pub mod event;
pub mod provider;
pub mod reader;
pub mod redact;
