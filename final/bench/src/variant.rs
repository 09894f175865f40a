//! The variants under test and their names on the command line and in reports.

use std::fmt;

/// One implementation of `UserServiceRpc.Login` (server and client side).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    clap::ValueEnum,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Variant {
    /// The tutorial's finished framework, crate `mprpc` in `final/`.
    Final,
    /// tonic 0.14 (gRPC over HTTP/2), one shared `Channel`.
    Tonic,
    /// tarpc 0.38 over TCP with bincode, one shared client.
    Tarpc,
    /// The course's design: one new TCP connection per call.
    Step,
    /// Raw tokio + prost: the floor, the least code that multiplexes calls.
    Floor,
}

impl Variant {
    /// Every variant, in report order.
    pub const ALL: [Variant; 5] = [
        Variant::Final,
        Variant::Tonic,
        Variant::Tarpc,
        Variant::Step,
        Variant::Floor,
    ];

    /// Name used on the command line, in JSON and in tables.
    pub fn name(self) -> &'static str {
        match self {
            Variant::Final => "final",
            Variant::Tonic => "tonic",
            Variant::Tarpc => "tarpc",
            Variant::Step => "step",
            Variant::Floor => "floor",
        }
    }

    /// One line saying what the variant is, for the report.
    pub fn description(self) -> &'static str {
        match self {
            Variant::Final => "mprpc (final/): persistent multiplexed connection, async stub",
            Variant::Tonic => "tonic 0.14, gRPC over HTTP/2, one shared Channel",
            Variant::Tarpc => "tarpc 0.38, TCP + bincode (tokio-serde), one shared client",
            Variant::Step => crate::step_variant::DESCRIPTION,
            Variant::Floor => "tokio + prost by hand: u32 length + u64 id frames, one connection",
        }
    }
}

impl fmt::Display for Variant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `pad`, not `write_str`, so `{:<13}` in progress lines aligns.
        f.pad(self.name())
    }
}
