//! Who may see what, and the one door media leaves through.
//!
//! - [`grant`]: self-contained, HMAC-signed, short grants bound to their holder.
//! - [`view`]: the live access view (revocations, kill switches, epochs, links) in
//!   memory, refreshed from the store; the database is never on the media path.
//! - [`keys`]: segment encryption keys and provenance tags, derived from one master key.
//! - [`door`]: the egress guard every media object and frame passes through.
//! - [`audit`]: the batched audit writer and view sessions.
//! - [`password`]: argon2id hashing.
//! - [`sealed`]: camera secrets Hearth must read back, encrypted at rest.
//!
//! This crate knows nothing of HTTP, of hubs or of the integrations: the server's
//! handlers and drivers use it, and the compiler keeps them from reaching around
//! it (only [`door::EgressGuard`] makes a [`door::Delivery`] or a
//! [`door::AdmittedFrame`]).

pub mod audit;
pub mod clock;
pub mod door;
pub mod grant;
pub mod keys;
pub mod limits;
pub mod metrics;
pub mod operator;
pub mod password;
pub mod relay;
pub mod sealed;
pub mod switches;
pub mod view;

pub use door::{
    AdmittedFrame, Delivery, Door, EgressGuard, MediaKind, MediaObject, Refusal, RelayGuard,
};
pub use grant::{Grant, GrantKey, Holder, PresentedTag, VerifiedGrant};
pub use keys::{MediaKeys, Stamper};
pub use view::AccessView;
