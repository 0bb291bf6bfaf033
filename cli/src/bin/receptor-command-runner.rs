//! `receptor-command-runner`: the supervisor of one `work-command` unit, started by a node for
//! each unit when it finds this program beside its own `receptor` binary (see
//! `receptor_cli::work::runner`). It takes the arguments `receptor --command-runner` takes and
//! behaves the same, but links only the supervisor, so that starting it is cheap.

use std::process::ExitCode;

fn main() -> ExitCode {
    // Not `env::args`, which panics on an argument that is not UTF-8. The node writes the
    // unit directory with `Path::display`, lossy already.
    let args: Vec<String> = std::env::args_os()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    receptor_cli::work::runner::main(&args)
}
