//! Hearth's server: HTTP API and web app, RTMP ingest, per-camera stream hubs, the
//! still-image cache and the egress door every media byte leaves through.
//!
//! Layout: `ingest` (RTMP driver) feeds `hub` (per-camera media, sans-IO segmenting
//! done by `hearth-media`); `http` serves the API and media, where media handlers can
//! only answer through `egress`, whose guard exists only for a verified `grant`;
//! `rtsp` (RTSP egress for smart displays) sends frames only as the guard admits
//! them.

pub mod access;
pub mod admin;
pub mod admin_api;
pub mod alexa;
pub mod audit;
pub mod auth;
pub mod bench_switch;
pub mod clock;
pub mod config;
pub mod demo;
pub mod egress;
pub mod error;
pub mod fault;
pub mod google;
pub mod grant;
pub mod homegraph;
pub mod http;
pub mod hub;
pub mod ingest;
pub mod keys;
pub mod links;
pub mod metrics;
pub mod oauth;
pub mod rtsp;
pub mod serve;
pub mod state;
pub mod still;
