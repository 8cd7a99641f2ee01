//! Hearth's server: the `hearth` binary's library. Its folders follow the data:
//!
//! - [`ingest`]: one driver per way in (RTMP push, RTSP pull), feeding
//! - [`hub`]: one hub per camera (GOP cache, segments, playlists, still cache), read by
//! - [`door`]: one driver per way out (HLS, snapshot, RTSP), each writing only
//!   through the egress guard of `hearth-access` (grants, access view, keys, audit);
//! - [`api`]: the HTTP JSON API, admin API and web app;
//! - [`integrations`]: the OAuth provider, account links, Google Home and Alexa;
//! - [`cli`]: admin commands and the demo.
//!
//! Beside them: [`state`] (what handlers and drivers share), [`router`] and
//! [`serve`] (putting the listeners together), [`auth`] (HTTP authentication),
//! [`pulls`] (the pulled cameras' tasks and statuses, as the API sees them),
//! [`error`] (the one error type and its HTTP mapping), [`config`], [`metrics`],
//! [`net`] (accept loops) and [`fault`] (test-only fault injection).

pub mod agent;
pub mod api;
pub mod auth;
pub mod cli;
pub mod cluster;
pub mod config;
pub mod door;
pub mod error;
pub mod fault;
pub mod hub;
pub mod ingest;
pub mod integrations;
pub mod metrics;
pub mod net;
pub mod openapi;
pub mod pulls;
pub mod router;
pub mod routes;
pub mod serve;
pub mod state;
pub mod tls;
pub mod web;
