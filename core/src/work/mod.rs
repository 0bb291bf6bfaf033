//! Units of work (control-and-work.md §2), the parts that need no I/O.
//!
//! The runtime keeps units in `<datadir>/<nodeid>/<unitid>/` and runs their workers; this
//! module supplies what must match Go receptor byte for byte or rule for rule:
//!
//! * [`StatusRecord`]: the `status` file (`{"State":..,"Detail":..,"StdoutSize":..,"WorkType":..,
//!   "ExtraData":..}` in Go's field order), read the way Go's `json.Unmarshal` reads it *over* the
//!   record in memory, and turned into the `work status` / `work list` reply with secrets removed;
//! * the state numbers and [`is_complete`];
//! * [`generate_unit_id`]: 8 characters from `[0-9a-zA-Z]`, drawn from a caller's RNG;
//! * [`shlex_split`]: `github.com/google/shlex` splitting of a command's parameters;
//! * [`combine_params`] / [`command_params`]: how `work-command` joins configured and runtime
//!   parameters;
//! * [`remote`]: the `ExtraData` of a `remote` unit and the control lines sent to the node
//!   that runs it;
//! * [`remote_unit`]: a remote unit's whole life on the submitting node (submit, follow,
//!   results, cancel, release, retries and give-ups) as a sans-IO machine the runtime drives;
//! * [`jwt`]: signing and verifying work with RS512 JSON web tokens, and [`signing`]: when a
//!   unit makes a fresh token and when tokens expire;
//! * [`submit_target`] and [`new_remote_data`]: where a `work submit` runs, and the checks
//!   of one for another node;
//! * [`ResultsFollow`]: when a `work results` stream ends;
//! * [`SessionPool`]: idle control sessions to other nodes, parked for reuse;
//! * [`Engine`]: the local unit lifecycle (the unit table, start, cancel, release, restart
//!   after a node restart) as a sans-IO machine whose [`Effect`]s the runtime carries
//!   out, with each work type's rules behind [`WorkType`]; an [`Operation`] carries one
//!   command's effects through, so a driver only does each effect and reports its [`Outcome`];
//! * [`ProcessExit`]: Go's `ProcessState.String()` (`exit status 3`, `signal: killed`), which
//!   becomes a finished command unit's `Detail`.
//!
//! ```
//! use receptor_core::work::{ExtraData, StatusRecord, STATE_RUNNING};
//!
//! let mut rec = StatusRecord::new("echo", Some(ExtraData::command(0, "-n hi")));
//! rec.merge_json(br#"{"State":1,"Detail":"Running: PID 42","StdoutSize":3}"#).unwrap();
//! assert_eq!(rec.state, STATE_RUNNING);
//! assert_eq!(
//!     rec.to_json(),
//!     "{\"State\":1,\"Detail\":\"Running: PID 42\",\"StdoutSize\":3,\"WorkType\":\"echo\",\
//!      \"ExtraData\":{\"Pid\":0,\"Params\":\"-n hi\"}}\n"
//! );
//! ```

mod engine;
mod id;
pub mod jwt;
mod new_remote;
mod operation;
mod params;
mod procstate;
mod read_size;
pub mod remote;
pub mod remote_unit;
mod results;
mod session_pool;
mod shlex;
pub mod signing;
mod status;
mod submit;
mod worker;

pub use crate::control::state_name;
pub use engine::{Effect, Engine, REMOVE_RETRY, REMOVE_TRIES, StdoutSize, WorkError};
pub use id::{UNIT_ID_LEN, generate_unit_id, is_safe_unit_id};
pub use new_remote::{NewRemote, NewRemoteError, new_remote_data};
pub use operation::{Operation, Outcome, UnexpectedOutcome};
pub use params::{ParamsError, combine_params, command_params};
pub use procstate::{ProcessExit, signal_name};
pub use read_size::{FIRST_READ, REMOTE_READ_MAX, RESULTS_READ_MAX, ReadSize};
pub use remote::RemoteExtraData;
pub use results::{
    ResultsEnd, ResultsFollow, ResultsNext, STDOUT_CHECK_EVERY, STDOUT_MISSING_CHECKS, all_sent,
};
pub use session_pool::{POOL_IDLE, POOL_PER_NODE, SessionPool};
pub use shlex::{ShlexError, shlex_split};
pub use status::{
    CommandExtraData, ExtraData, INPUT_ERROR_DETAIL, STATE_CANCELED, STATE_FAILED, STATE_PENDING,
    STATE_RUNNING, STATE_SUCCEEDED, StatusDecodeError, StatusRecord, input_error_detail,
    is_complete,
};
pub use submit::{SubmitError, SubmitTo, submit_target};
pub use worker::{CancelOutcome, Restart, WorkType};
