//! The `hearth` command's work that is not serving: admin commands on the data
//! directory (users, cameras, kill switches, audit, integrations) and the demo.

pub mod admin;
pub mod demo;
