//! The command line: argument parsing, reading inputs, writing outputs atomically,
//! and turning library errors into one clear paragraph on stderr plus an exit code.
//! This is the only layer that knows about processes, exit codes and hints.

mod args;
mod bulk;
#[cfg(unix)]
mod child;
mod crypt;
mod docs;
#[cfg(unix)]
mod edit;
#[cfg(unix)]
mod exec;
mod io;
mod keygen;
mod keys_cmd;
mod policy;
#[cfg(feature = "publish")]
mod publish;
mod repo;
mod report;
mod set;

use clap::Parser;

/// The stack of the thread that does the work. Parsing, the tree walks and
/// dropping a document recurse once per nesting level, and the parsers accept up
/// to [`sops_file::formats::MAX_DEPTH`] levels (what sops accepts). Encrypting the
/// deepest such YAML (`tests/hostile.rs`) needs about 56 MiB of stack in a debug
/// build, a release build far less; the rest is margin for the other paths. Only
/// the pages used are touched, so the reservation costs address space, not memory.
pub const STACK_SIZE: usize = 512 << 20;

/// Run the program on a thread with a [`STACK_SIZE`] stack; returns the exit code.
/// The main thread's stack is whatever `ulimit -s` (or git's environment) gives.
pub fn main() -> i32 {
    let worker = std::thread::Builder::new()
        .name("git-sops".into())
        .stack_size(STACK_SIZE)
        .spawn(run);
    match worker {
        // A panic has already printed its message; 101 is Rust's panic exit code.
        Ok(handle) => handle.join().unwrap_or(101),
        // No thread to be had (resource limits): run here, with the stack there is.
        Err(_) => run(),
    }
}

fn run() -> i32 {
    let cli = match args::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if !e.use_stderr() {
                0
            } else if report::is_publish_invocation() {
                report::code::PUBLISH_ERROR
            } else {
                report::code::USAGE
            };
        }
    };
    let result = match cli.command {
        args::Command::Encrypt(a) => crypt::encrypt(&a),
        args::Command::Decrypt(a) => crypt::decrypt(&a),
        args::Command::Keygen => keygen::run(),
        args::Command::Updatekeys(a) => keys_cmd::updatekeys(&a),
        args::Command::Rotate(a) => keys_cmd::rotate(&a),
        #[cfg(unix)]
        args::Command::Edit(a) => edit::edit(&a),
        #[cfg(unix)]
        args::Command::ExecEnv(a) => exec::exec_env(&a),
        #[cfg(unix)]
        args::Command::ExecFile(a) => exec::exec_file(&a),
        #[cfg(not(unix))]
        args::Command::Edit(_) | args::Command::ExecEnv(_) | args::Command::ExecFile(_) => Err(
            report::Failure::usage("edit, exec-env and exec-file need a Unix system".into()),
        ),
        args::Command::Set(a) => set::set(&a),
        args::Command::Unset(a) => set::unset(&a),
        args::Command::Filestatus(a) => crypt::filestatus(&a),
        args::Command::Completion { shell } => docs::completion(shell),
        args::Command::Man => docs::man(),
        args::Command::Policy(a) => policy::run(&a),
        args::Command::Repo(c) => repo::run(c),
        #[cfg(feature = "publish")]
        args::Command::Publish { command } => publish::run(command),
    };
    match result {
        Ok(()) => 0,
        Err(failure) => {
            if !failure.message.is_empty() {
                eprintln!("{failure}");
            }
            failure.exit_code
        }
    }
}
