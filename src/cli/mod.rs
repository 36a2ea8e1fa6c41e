//! The command line: argument parsing, reading inputs, writing outputs atomically,
//! and turning library errors into one clear paragraph on stderr plus an exit code.
//! This is the only layer that knows about processes, exit codes and hints.

mod args;
mod crypt;
mod io;
mod keygen;
mod keys_cmd;
mod repo;
mod report;

use clap::Parser;

pub use report::Failure;

/// Run the program; returns the exit code.
pub fn main() -> i32 {
    let cli = match args::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { 2 } else { 0 };
        }
    };
    let result = match cli.command {
        args::Command::Encrypt(a) => crypt::encrypt(&a),
        args::Command::Decrypt(a) => crypt::decrypt(&a),
        args::Command::Keygen => keygen::run(),
        args::Command::Updatekeys(a) => keys_cmd::updatekeys(&a),
        args::Command::Rotate(a) => keys_cmd::rotate(&a),
        args::Command::Repo(c) => repo::run(c),
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
