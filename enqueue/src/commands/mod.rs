//! The commands, free of clap: each takes plain values (a queue, an output, ids, options).

pub mod documents;
pub mod files;
pub mod index;
pub mod jobs;
pub mod mail;
pub mod retagger;
pub mod search;
pub mod settings;
pub mod status;
pub mod submit;
pub mod transfer;
