//! What pidone's black-box tests share: the real binary run as a true PID 1 (the init of a fresh
//! PID namespace, `unshare --pid --fork --mount-proc`) or as a plain child of the test, waited on
//! with deadlines instead of sleeps, asked through its control socket, and cleaned up with every
//! process of its run when a test ends, even when it fails.
//!
//! Each `tests/*.rs` file is its own test binary and says `#[macro_use] mod support;` and
//! `use support::*;`; each uses a part of what is here.
#![allow(dead_code, unused_imports, unused_macros)]

#[macro_use]
pub mod mode;
pub mod daemon;
pub mod dir;
pub mod http;
pub mod pidone;
pub mod process;
pub mod scripts;

pub use daemon::{Daemon, Out, client_as, start_on};
pub use dir::{Dir, MS, assert_before, assert_gap, ms};
pub use http::{
    check_of, exchange, get, get_request, int, mentions_timeout, parse_answer, send_get, service_of,
};
pub use mode::{Mode, helper, pidone, python};
pub use pidone::{Pidone, TAG_VAR, run};
pub use process::{
    DEADLINE, Outcome, cmdline, context_switches, follow_lines, lines, now_ns, pids_with_env,
    pipe_pending, prefixed, run_plain, run_plain_env, send_signal, split_prefixed, stat, tail,
    wait_quietly, wait_until, wchan, words,
};
pub use scripts::{crasher, free_port, longrun, pid_recorder, ready_service, trapping};
