//! The manifest: for every step, the functions the learner writes.
//!
//! A hole is one function of the step's new piece (the library module its
//! chapter teaches), never the demo in `src/main.rs` or `src/bin`, and always
//! one whose body the step's own tests run, so `check` fails until it is
//! written.

/// One function whose body `start` replaces by `todo!(…)`.
#[derive(Debug, Clone, Copy)]
pub struct Hole {
    /// The file, relative to the step's directory.
    pub file: &'static str,
    /// `name` for a free function, `Type::method` for a method of an `impl`.
    pub function: &'static str,
    /// What the learner writes, in one sentence.
    pub task: &'static str,
    /// The chapter section that explains it, relative to `book/src`.
    pub section: &'static str,
}

/// One step of the book and its holes.
#[derive(Debug, Clone, Copy)]
pub struct Step {
    /// The two-digit number, `"07"`.
    pub number: &'static str,
    /// The directory under `steps/`, `"07-dispatch"`.
    pub dir: &'static str,
    /// The functions the learner writes.
    pub holes: &'static [Hole],
}

/// Every step, 01 to 12, each with at least one hole.
pub const STEPS: &[Step] = &[
    Step {
        number: "01",
        dir: "01-protobuf-demo",
        holes: &[Hole {
            file: "src/lib.rs",
            function: "round_trip",
            task: "encode `value` with prost and with serde_json, decode both back, \
                   return Mismatch if a parse differs from `value`",
            section: "steps/01-protobuf-demo.md#round-trip",
        }],
    },
    Step {
        number: "02",
        dir: "02-protobuf-service",
        holes: &[Hole {
            file: "src/rpc.rs",
            function: "ServiceDescriptor::find_method_by_name",
            task: "return the method of this service whose `name` is `name`, or None",
            section: "steps/02-protobuf-service.md#the-abstract-layer",
        }],
    },
    Step {
        number: "03",
        dir: "03-local-service",
        holes: &[Hole {
            file: "src/user_service.rs",
            function: "UserService::login",
            task: "the local business method: true when `name` and `pwd` are the user's",
            section: "steps/03-local-service.md#the-local-service",
        }],
    },
    Step {
        number: "04",
        dir: "04-config",
        holes: &[Hole {
            file: "src/config.rs",
            function: "MprpcConfig::parse",
            task: "parse the TOML text into an MprpcConfig, the error as a String",
            section: "steps/04-config.md#mprpcconfig",
        }],
    },
    Step {
        number: "05",
        dir: "05-provider-network",
        holes: &[Hole {
            file: "src/provider.rs",
            function: "RpcProvider::on_message",
            task: "log `on_message: {peer} sent {n} bytes: {hex}` with at most HEX_SHOWN \
                   bytes in hex, then `...` if there were more",
            section: "steps/05-provider-network.md#one-task-per-connection",
        }],
    },
    Step {
        number: "06",
        dir: "06-notify-service",
        holes: &[Hole {
            file: "src/provider.rs",
            function: "RpcProvider::notify_service",
            task: "add the service and its methods to the table under its name; \
                   refuse a name already published",
            section: "steps/06-notify-service.md#notify_service",
        }],
    },
    Step {
        number: "07",
        dir: "07-dispatch",
        holes: &[Hole {
            file: "src/wire.rs",
            function: "read_request",
            task: "read header_size, the RpcHeader, then the args, each length checked \
                   against `limits` before anything is allocated",
            section: "steps/07-dispatch.md#reading-a-frame",
        }],
    },
    Step {
        number: "08",
        dir: "08-channel",
        holes: &[Hole {
            file: "src/channel.rs",
            function: "MprpcChannel::call_bytes",
            task: "connect, write one request frame, read the whole response \
                   (at most max_response_size bytes) and return it",
            section: "steps/08-channel.md#the-channel",
        }],
    },
    Step {
        number: "09",
        dir: "09-controller",
        holes: &[
            Hole {
                file: "src/controller.rs",
                function: "MprpcController::set_failed",
                task: "mark the call failed and keep `reason` as the error text",
                section: "steps/09-controller.md#mprpccontroller",
            },
            Hole {
                file: "src/controller.rs",
                function: "MprpcController::failed",
                task: "whether set_failed was called since the last reset",
                section: "steps/09-controller.md#mprpccontroller",
            },
        ],
    },
    Step {
        number: "10",
        dir: "10-async-logger",
        holes: &[
            // Not the writer thread's functions (nor log_file_name, which it
            // calls): a writer that panics leaves a queued flush unanswered,
            // and the tests would wait for it forever.
            Hole {
                file: "src/logger.rs",
                function: "Logger::new",
                task: "create the bounded queue (CAPACITY records) and start the writer \
                       thread `mprpc-logger` with its receiving end; if the thread cannot \
                       start, report it and return a logger whose sends fail",
                section: "steps/10-async-logger.md#the-queue",
            },
            Hole {
                file: "src/logger.rs",
                function: "Logger::log_at",
                task: "queue a Record of `level`, `time` and `message` for the writer thread; \
                       a failed send means the writer is gone and is ignored",
                section: "steps/10-async-logger.md#the-queue",
            },
        ],
    },
    Step {
        number: "11",
        dir: "11-zookeeper-client",
        holes: &[Hole {
            file: "src/zk_client.rs",
            function: "ZkClient::create",
            task: "create the znode `path` with `data` in `mode` (open ACL); an existing \
                   persistent node is fine, an existing ephemeral one goes to \
                   claim_ephemeral, a missing parent is ZkError::NoParent",
            section: "steps/11-zookeeper-client.md#creating-a-znode",
        }],
    },
    Step {
        number: "12",
        dir: "12-zookeeper-integration",
        holes: &[
            Hole {
                file: "src/provider.rs",
                function: "RpcProvider::create_nodes",
                task: "create /Service (persistent) and /Service/Method (ephemeral, \
                       data `ip:port`) for every published method",
                section: "steps/12-zookeeper-integration.md#the-provider-registers",
            },
            Hole {
                file: "src/channel.rs",
                function: "MprpcChannel::lookup",
                task: "read /Service/Method from ZooKeeper and parse its data as the \
                       provider's address",
                section: "steps/12-zookeeper-integration.md#the-caller-looks-up",
            },
        ],
    },
];

/// The step numbered `number` (`"7"` and `"07"` both find step 07).
pub fn find(number: &str) -> Option<&'static Step> {
    let wanted: u32 = number.parse().ok()?;
    STEPS
        .iter()
        .find(|step| step.number.parse::<u32>().ok() == Some(wanted))
}
