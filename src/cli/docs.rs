//! `git sops completion SHELL` and `git sops man`: the shell completion scripts
//! and the man page, generated at run time from the same clap definitions that
//! parse the command line (`args.rs`), so they always match the installed
//! binary and need no build script or files shipped beside it. Hidden commands
//! (the drivers git calls) are left out of both by clap.

use std::io::Write;

use clap::{Command, CommandFactory};

use super::args::Cli;
use super::report::Failure;

/// The name users run; completions are registered for it (`git-sops ...`;
/// git's own completion hands `git sops ...` to a `_git_sops` function, which
/// the bash script defines too).
const BIN: &str = "git-sops";

/// The command line users see: clap's definition without the hidden commands
/// (the drivers git calls), which clap_complete's bash script would otherwise
/// offer.
fn visible() -> Command {
    let full = Cli::command();
    let subcommands: Vec<Command> = full
        .get_subcommands()
        .filter(|c| !c.is_hide_set())
        .cloned()
        .collect();
    let mut cmd = Command::new(BIN)
        .version(env!("CARGO_PKG_VERSION"))
        .subcommands(subcommands);
    if let Some(about) = full.get_about() {
        cmd = cmd.about(about.clone());
    }
    if let Some(long) = full.get_long_about() {
        cmd = cmd.long_about(long.clone());
    }
    cmd
}

pub(crate) fn completion(shell: clap_complete::Shell) -> Result<(), Failure> {
    let mut cmd = visible();
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut cmd, BIN, &mut script);
    if shell == clap_complete::Shell::Bash {
        // clap_complete 4.6 names the states of a hyphenated command
        // inconsistently (`git__sops` where it sets the state, `git__subcmd__sops`
        // where it matches it), so no subcommand's options would complete.
        let text = String::from_utf8_lossy(&script).replace("git__subcmd__sops", "git__sops");
        script = text.into_bytes();
        script.extend_from_slice(BASH_GIT_SUBCOMMAND.as_bytes());
    }
    print(&script)
}

/// git's bash completion calls `_git_sops` for `git sops <TAB>`: complete as
/// for `git-sops`, with the words shifted so `sops` is the command name.
const BASH_GIT_SUBCOMMAND: &str = r#"
# `git sops <TAB>`: git's completion calls _git_sops; complete as git-sops does.
_git_sops() {
    local i
    for ((i = 0; i < ${#words[@]}; i++)); do
        [[ ${words[i]} == sops ]] && break
    done
    local COMP_WORDS=(git-sops "${words[@]:i+1}")
    local COMP_CWORD=$((cword - i))
    local COMP_LINE="${COMP_WORDS[*]}"
    local COMP_POINT=${#COMP_LINE}
    _git__sops git-sops "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
}
"#;

/// One page, `git-sops(1)`, for the whole command: what clap_mangen writes for
/// the top level, then a section per command with its synopsis, description
/// and options (clap_mangen would refer to a page per command, `git-sops-
/// decrypt(1)`, which git does not look for: `git sops --help` opens
/// `git-sops(1)`).
pub(crate) fn man() -> Result<(), Failure> {
    let top = visible();
    let mut page = Vec::new();
    let render = |page: &mut Vec<u8>| -> std::io::Result<()> {
        let man = clap_mangen::Man::new(top.clone());
        man.render_title(page)?;
        man.render_name_section(page)?;
        man.render_synopsis_section(page)?;
        man.render_description_section(page)?;
        man.render_options_section(page)?;
        for sub in top.get_subcommands() {
            let name = sub.get_name();
            let sub = sub.clone().bin_name(format!("git sops {name}"));
            let man = clap_mangen::Man::new(sub.clone());
            let mut section = Vec::new();
            man.render_synopsis_section(&mut section)?;
            if let Some(about) = sub.get_long_about().or(sub.get_about()) {
                writeln!(section, ".PP")?;
                writeln!(section, "{}", roff_text(&about.to_string()))?;
            }
            let mut options = Vec::new();
            man.render_options_section(&mut options)?;
            let options = String::from_utf8_lossy(&options);
            // The command's options belong under its own heading.
            section.extend_from_slice(options.replacen(".SH OPTIONS\n", "", 1).as_bytes());
            let text = String::from_utf8_lossy(&section).replacen(
                ".SH SYNOPSIS",
                &format!(".SH \"GIT SOPS {}\"", name.to_uppercase()),
                1,
            );
            page.extend_from_slice(text.as_bytes());
        }
        man.render_version_section(page)
    };
    render(&mut page).map_err(|e| Failure::io(format!("cannot render the man page: {e}")))?;
    print(&page)
}

/// Text for a roff paragraph: backslashes and hyphens escaped, no line
/// starting with a control character.
fn roff_text(text: &str) -> String {
    text.lines()
        .map(|l| {
            let l = l.replace('\\', "\\e").replace('-', "\\-");
            if l.starts_with(['.', '\'']) {
                format!("\\&{l}")
            } else {
                l
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn print(bytes: &[u8]) -> Result<(), Failure> {
    let mut out = std::io::stdout().lock();
    out.write_all(bytes)
        .and_then(|_| out.flush())
        .map_err(|e| Failure::io(format!("cannot write to standard output: {e}")))
}
