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
#[serde(rename_all = "kebab-case")]
pub enum Variant {
    /// The tutorial's finished framework, crate `mprpc` in `final/`.
    Final,
    /// `final` over TLS (rustls; certificates made at start with rcgen).
    FinalTls,
    /// `final` with metrics on (`[admin] address` set, nobody scraping).
    FinalMetrics,
    /// tonic 0.14 (gRPC over HTTP/2), one shared `Channel`.
    Tonic,
    /// tarpc 0.38 over TCP with bincode, one shared client.
    Tarpc,
    /// The course's design: one new TCP connection per call.
    Step,
    /// Raw tokio + prost: the floor, the least code that multiplexes calls,
    /// written the fastest way measured
    /// ([`crate::floor::Design::CombiningYield`]).
    Floor,
    /// The floor whose writing caller writes at once, without yielding.
    FloorCombine,
    /// The floor with a writer task woken once per batch of a shared buffer.
    FloorShared,
    /// The floor with a writer task fed through a channel, one `BytesMut`
    /// per frame (the benchmark's first floor).
    FloorQueue,
    /// The floor with one locked `write` per call, no coalescing.
    FloorLock,
}

impl Variant {
    /// The variants a plain `bench` run measures, in report order: the
    /// floor's alternative designs included, so that the run that fixes the
    /// floor also shows why it is written the way it is.
    pub const DEFAULT: [Variant; 11] = [
        Variant::Final,
        Variant::FinalTls,
        Variant::FinalMetrics,
        Variant::Tonic,
        Variant::Tarpc,
        Variant::Step,
        Variant::Floor,
        Variant::FloorCombine,
        Variant::FloorShared,
        Variant::FloorQueue,
        Variant::FloorLock,
    ];

    /// Whether the chart shows this variant (the floor's alternatives and
    /// `final` with TLS or metrics on are in the table only, to keep the
    /// chart readable).
    pub fn charted(self) -> bool {
        let extra = matches!(self, Variant::FinalTls | Variant::FinalMetrics);
        !extra && (self.floor_design().is_none() || self == Variant::Floor)
    }

    /// The floor's client design, for the floor variants.
    pub fn floor_design(self) -> Option<crate::floor::Design> {
        use crate::floor::Design;
        match self {
            Variant::Floor => Some(Design::CombiningYield),
            Variant::FloorCombine => Some(Design::Combining),
            Variant::FloorShared => Some(Design::SharedBuffer),
            Variant::FloorQueue => Some(Design::Queue),
            Variant::FloorLock => Some(Design::Lock),
            _ => None,
        }
    }

    /// Name used on the command line, in JSON and in tables.
    pub fn name(self) -> &'static str {
        match self {
            Variant::Final => "final",
            Variant::FinalTls => "final-tls",
            Variant::FinalMetrics => "final-metrics",
            Variant::Tonic => "tonic",
            Variant::Tarpc => "tarpc",
            Variant::Step => "step",
            Variant::Floor => "floor",
            Variant::FloorCombine => "floor-combine",
            Variant::FloorShared => "floor-shared",
            Variant::FloorQueue => "floor-queue",
            Variant::FloorLock => "floor-lock",
        }
    }

    /// One line saying what the variant is, for the report.
    pub fn description(self) -> &'static str {
        match self {
            Variant::Final => "mprpc (final/): persistent multiplexed connection, async stub",
            Variant::FinalTls => {
                "final over TLS 1.3 (rustls, ring; CA-verified provider certificate made with rcgen)"
            }
            Variant::FinalMetrics => {
                "final with metrics on ([admin] address set; counters per call, nobody scraping)"
            }
            Variant::Tonic => "tonic 0.14, gRPC over HTTP/2, one shared Channel",
            Variant::Tarpc => "tarpc 0.38, TCP + bincode (tokio-serde), one shared client",
            Variant::Step => crate::step_variant::DESCRIPTION,
            Variant::Floor => {
                "tokio + prost by hand: u32 length + u64 id frames, one connection; callers append to one buffer, the first one finding no write in progress yields once and then writes the batch"
            }
            Variant::FloorCombine => {
                "the floor, but the caller that becomes the writer writes at once, without yielding first"
            }
            Variant::FloorShared => {
                "the floor, but a writer task woken once per batch writes the shared buffer"
            }
            Variant::FloorQueue => {
                "the floor, but each frame is its own BytesMut sent through a channel to a coalescing writer task"
            }
            Variant::FloorLock => "the floor, but every call writes its own frame under a lock",
        }
    }
}

impl fmt::Display for Variant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `pad`, not `write_str`, so `{:<13}` in progress lines aligns.
        f.pad(self.name())
    }
}
