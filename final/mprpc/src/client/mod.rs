//! The client side: where a stub's call goes.
//!
//! [`MprpcChannel`] (`channel`) takes each call: it asks the registry for
//! providers and picks one (`channel/pool`, which also keeps the pool of
//! connections and ejects failing providers), then sends the call over the
//! pooled, multiplexed [`connection`](self::connection) to that provider
//! (`connection/io` runs its writer, reader and deadline tasks). Providers
//! of the C++ course are called in their own format (`course`).
//! [`BlockingChannel`] (`blocking`) wraps a channel for synchronous callers.
//! The public types are reachable at their old path, `mprpc::channel`.

mod blocking;
mod channel;
mod connection;
pub(crate) mod course;
mod health;

use crate::streaming::{BlockingStreaming, Streaming};
pub use blocking::BlockingChannel;
pub use channel::MprpcChannel;
use connection::{RawStream, StreamSender};
pub use health::HealthClient;
