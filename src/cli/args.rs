//! Command-line arguments, named as sops names them so scripts carry over.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "git-sops",
    version,
    about = "SOPS-encrypted secrets that feel like ordinary files inside git",
    long_about = "git-sops reads and writes SOPS 3.11 files (YAML, JSON, dotenv, INI, binary) with age and AWS KMS keys, \
                  keeping each file's comments, order and layout."
)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Encrypt a file (sops-compatible flags); prints the result unless -i or --output
    Encrypt(EncryptArgs),
    /// Decrypt a file; prints the plaintext unless -i or --output
    Decrypt(DecryptArgs),
    /// Create an age identity in sops' default key file and print its recipient
    Keygen,
    /// Re-wrap each file's data key for the keys its .sops.yaml rule names now (values untouched)
    Updatekeys(UpdateKeysArgs),
    /// Give each file a new data key and re-encrypt every value; optionally add or remove keys
    Rotate(RotateArgs),
    /// Edit an encrypted file in $SOPS_EDITOR/$EDITOR/$VISUAL; unchanged values keep their ciphertext
    Edit(EditArgs),
    /// Run a command with the decrypted top-level values as its environment variables
    #[command(name = "exec-env")]
    ExecEnv(ExecEnvArgs),
    /// Run a command with the decrypted file at the path `{}` (a FIFO unless --no-fifo)
    #[command(name = "exec-file")]
    ExecFile(ExecFileArgs),
    /// Set the value at PATH (e.g. '["db"]["password"]') to VALUE (JSON: '"text"', 1, {"a": true}); other values keep their ciphertext
    Set(SetArgs),
    /// Remove the value at PATH (e.g. '["db"]["password"]' or '["hosts"][0]'); other values keep their ciphertext
    Unset(UnsetArgs),
    /// Print {"encrypted":true} or {"encrypted":false}: is FILE a SOPS file (as `sops filestatus`)
    Filestatus(FilestatusArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell)
    Completion {
        /// The shell to complete for
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff); `git sops --help` shows it once installed as git-sops.1
    Man,
    /// Print the KMS key policy (or, with --iam, IAM policies) that `git_sops.policy` in .sops.yaml asks for; --check FILE compares an exported key policy
    Policy(PolicyArgs),
    #[command(flatten)]
    Repo(super::repo::RepoCommand),
    /// Deliver committed SOPS files into AWS Secrets Manager / SSM Parameter Store (plan, apply)
    #[cfg(feature = "publish")]
    Publish {
        #[command(subcommand)]
        command: super::publish::PublishCommand,
    },
}

#[derive(Args, Debug)]
pub(crate) struct PolicyArgs {
    /// Print an IAM policy document per principal (by name) instead of the key policy
    #[arg(long, conflicts_with = "check")]
    pub iam: bool,
    /// Only the principals whose files are encrypted under this key (ARN, alias ARN or
    /// `alias/NAME`): the per-service-key variant, one key policy per key
    #[arg(long, value_name = "KEY")]
    pub key: Option<String>,
    /// Compare a key policy exported from AWS (`aws kms get-key-policy` output, or the
    /// policy document) with the generated one: list missing and broader grants, exit 1 if any
    #[arg(long, value_name = "FILE")]
    pub check: Option<PathBuf>,
    /// The .sops.yaml to read (default: SOPS_CONFIG, else the nearest from the current directory)
    #[arg(long, value_name = "PATH")]
    pub config: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub(crate) struct IoArgs {
    /// The file to read; `-` or nothing reads standard input
    pub file: Option<PathBuf>,
    /// Input format (default: from the file extension)
    #[arg(long, value_name = "yaml|json|dotenv|ini|binary")]
    pub input_type: Option<String>,
    /// Output format (default: the input format)
    #[arg(long, value_name = "yaml|json|dotenv|ini|binary")]
    pub(crate) output_type: Option<String>,
    /// Use this name to pick the format and the .sops.yaml rule (e.g. for stdin)
    #[arg(long, value_name = "NAME")]
    pub(crate) filename_override: Option<String>,
    /// Replace the file with the result (atomically)
    #[arg(short = 'i', long, conflicts_with = "output")]
    pub(crate) in_place: bool,
    /// Write the result to this file (atomically) instead of standard output
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub(crate) struct EncryptArgs {
    #[command(flatten)]
    pub io: IoArgs,
    #[command(flatten)]
    pub keys: NewFileArgs,
}

/// How a new file is encrypted: its keys and selector (`encrypt`, and `edit`
/// of a file that does not exist yet).
#[derive(Args, Debug)]
pub(crate) struct NewFileArgs {
    /// age recipients (repeatable or comma-separated); replaces .sops.yaml's keys
    #[arg(long, value_name = "RECIPIENT", env = "SOPS_AGE_RECIPIENTS")]
    pub age: Vec<String>,
    /// AWS KMS key ARNs (repeatable or comma-separated; ARN+ROLE_ARN assumes that role); replaces .sops.yaml's keys
    #[arg(long, value_name = "ARN", env = "SOPS_KMS_ARN")]
    pub kms: Vec<String>,
    /// KMS encryption context for the KMS keys: key:value,key2:value2
    #[arg(long, value_name = "K:V,...")]
    pub(crate) encryption_context: Option<String>,
    /// AWS shared-config profile for the --kms keys
    #[arg(long, value_name = "PROFILE")]
    pub aws_profile: Option<String>,
    /// Use this .sops.yaml instead of searching from the current directory
    #[arg(long, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Leave values under keys ending with this suffix unencrypted
    #[arg(long, value_name = "SUFFIX", group = "selector")]
    pub unencrypted_suffix: Option<String>,
    /// Encrypt only values under keys ending with this suffix
    #[arg(long, value_name = "SUFFIX", group = "selector")]
    pub encrypted_suffix: Option<String>,
    /// Leave values under keys matching this regex unencrypted
    #[arg(long, value_name = "REGEX", group = "selector")]
    pub unencrypted_regex: Option<String>,
    /// Encrypt only values under keys matching this regex
    #[arg(long, value_name = "REGEX", group = "selector")]
    pub encrypted_regex: Option<String>,
    /// Leave values after a comment matching this regex unencrypted
    #[arg(long, value_name = "REGEX", group = "selector")]
    pub unencrypted_comment_regex: Option<String>,
    /// Encrypt only values after a comment matching this regex
    #[arg(long, value_name = "REGEX", group = "selector")]
    pub encrypted_comment_regex: Option<String>,
    /// Compute the MAC over encrypted values only
    #[arg(long)]
    pub mac_only_encrypted: bool,
    /// Number of key groups needed to decrypt (with several key groups)
    #[arg(long, value_name = "N")]
    pub(crate) shamir_secret_sharing_threshold: Option<usize>,
}

#[derive(Args, Debug)]
pub(crate) struct DecryptArgs {
    #[command(flatten)]
    pub io: IoArgs,
    /// Do not verify the MAC (for files changed outside sops that you trust)
    #[arg(long)]
    pub(crate) ignore_mac: bool,
    /// Print only this value or subtree, e.g. '["db"]["password"]' or '["hosts"][0]'
    #[arg(long, value_name = "PATH", allow_hyphen_values = true)]
    pub(crate) extract: Option<String>,
}

#[derive(Args, Debug)]
pub(crate) struct FilestatusArgs {
    /// The file to check (a path; standard input is not read)
    pub file: Option<PathBuf>,
    /// Input format (default: from the file extension)
    #[arg(long, value_name = "yaml|json|dotenv|ini|binary")]
    pub input_type: Option<String>,
}

#[derive(Args, Debug)]
pub(crate) struct UpdateKeysArgs {
    /// The encrypted files to update (in place)
    #[arg(required_unless_present = "all", value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Every protected file of the repository (filter=sops), and every tracked SOPS file a .sops.yaml rule covers
    #[arg(long, conflicts_with = "files")]
    pub(crate) all: bool,
    /// Show, per file and key group, what would change; write nothing
    #[arg(long)]
    pub(crate) dry_run: bool,
    /// Do not ask for confirmation
    #[arg(short = 'y', long)]
    pub yes: bool,
    /// Use this .sops.yaml instead of searching from the current directory
    #[arg(long, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Input format (default: from the file extension)
    #[arg(long, value_name = "yaml|json|dotenv|ini|binary")]
    pub input_type: Option<String>,
    /// Number of key groups needed to decrypt (with several key groups)
    #[arg(long, value_name = "N")]
    pub(crate) shamir_secret_sharing_threshold: Option<usize>,
}

#[derive(Args, Debug)]
pub(crate) struct RotateArgs {
    /// The encrypted files to rotate
    #[arg(required_unless_present = "all", value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Every protected file of the repository (filter=sops), and every tracked SOPS file a .sops.yaml rule covers
    #[arg(long, conflicts_with = "files")]
    pub(crate) all: bool,
    /// Show, per file, what would be rotated and which keys would change; write nothing
    #[arg(long, conflicts_with = "output")]
    pub(crate) dry_run: bool,
    /// Replace each file with the result (atomically); needed for more than one file
    #[arg(short = 'i', long, conflicts_with = "output")]
    pub(crate) in_place: bool,
    /// Write the result to this file (atomically) instead of standard output
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Input format (default: from the file extension)
    #[arg(long, value_name = "yaml|json|dotenv|ini|binary")]
    pub input_type: Option<String>,
    /// Add these AWS KMS key ARNs (comma-separated; ARN+ROLE_ARN) to the first key group
    #[arg(long, value_name = "ARN")]
    pub(crate) add_kms: Vec<String>,
    /// Remove these AWS KMS keys (comma-separated; with the same --encryption-context / --aws-profile they were added with)
    #[arg(long, value_name = "ARN")]
    pub(crate) rm_kms: Vec<String>,
    /// Add these age recipients (comma-separated) to the first key group
    #[arg(long, value_name = "RECIPIENT")]
    pub(crate) add_age: Vec<String>,
    /// Remove these age recipients (comma-separated) from every key group
    #[arg(long, value_name = "RECIPIENT")]
    pub(crate) rm_age: Vec<String>,
    /// KMS encryption context for --add-kms / --rm-kms: key:value,key2:value2
    #[arg(long, value_name = "K:V,...")]
    pub(crate) encryption_context: Option<String>,
    /// AWS shared-config profile for --add-kms / --rm-kms
    #[arg(long, value_name = "PROFILE")]
    pub aws_profile: Option<String>,
}

/// Flags both exec commands take, as sops names them.
#[derive(Args, Debug)]
pub(crate) struct ExecArgs {
    /// Run the command as this user (git-sops must be allowed to switch to it)
    #[arg(long, value_name = "USER")]
    pub(crate) user: Option<String>,
    /// Start the command and return at once (deprecated in sops)
    #[arg(long)]
    pub(crate) background: bool,
    /// Input format (default: from the file extension)
    #[arg(long, value_name = "yaml|json|dotenv|ini|binary")]
    pub(crate) input_type: Option<String>,
}

#[derive(Args, Debug)]
pub(crate) struct ExecEnvArgs {
    /// The encrypted file; with several, a later file's value wins for a name they share
    #[arg(required = true, num_args = 1.., value_name = "FILE")]
    pub(crate) files: Vec<PathBuf>,
    /// The command, run by /bin/sh -c (sops' form: one string)
    #[arg(required = true, value_name = "COMMAND")]
    pub(crate) command: String,
    /// Give the command only the decrypted values, no inherited environment
    #[arg(long)]
    pub(crate) pristine: bool,
    /// Replace git-sops with the command (exec) instead of running it as a child
    #[arg(long, conflicts_with = "background")]
    pub(crate) same_process: bool,
    #[command(flatten)]
    pub(crate) exec: ExecArgs,
}

#[derive(Args, Debug)]
pub(crate) struct ExecFileArgs {
    /// The encrypted file
    #[arg(value_name = "FILE")]
    pub(crate) file: PathBuf,
    /// The command, run by /bin/sh -c; `{}` in it is replaced by the plaintext's path
    #[arg(value_name = "COMMAND")]
    pub(crate) command: String,
    /// Write the plaintext to a 0600 file in a private directory instead of a FIFO
    #[arg(long)]
    pub(crate) no_fifo: bool,
    /// The name of the plaintext file or FIFO (default: tmp-file)
    #[arg(long, value_name = "NAME")]
    pub(crate) filename: Option<String>,
    /// Format of the plaintext given to the command (default: the input format)
    #[arg(long, value_name = "yaml|json|dotenv|ini|binary")]
    pub(crate) output_type: Option<String>,
    #[command(flatten)]
    pub(crate) exec: ExecArgs,
}

#[derive(Args, Debug)]
pub(crate) struct EditArgs {
    /// The encrypted file; one that does not exist yet starts from sops' example and gets keys from .sops.yaml or the flags
    #[arg(value_name = "FILE")]
    pub(crate) file: PathBuf,
    /// Input format (default: from the file extension)
    #[arg(long, value_name = "yaml|json|dotenv|ini|binary")]
    pub(crate) input_type: Option<String>,
    /// Output format; only the file's own format (edit rewrites the file in place)
    #[arg(long, value_name = "yaml|json|dotenv|ini|binary")]
    pub(crate) output_type: Option<String>,
    /// Show the sops metadata in the editor as well; recipients changed there get the data key
    #[arg(short = 's', long)]
    pub(crate) show_master_keys: bool,
    /// Do not verify the MAC (for files changed outside sops that you trust)
    #[arg(long)]
    pub(crate) ignore_mac: bool,
    #[command(flatten)]
    pub(crate) keys: NewFileArgs,
}

#[derive(Args, Debug)]
pub(crate) struct SetArgs {
    /// FILE PATH VALUE (FILE PATH with --value-stdin); VALUE is JSON
    #[arg(value_name = "FILE PATH VALUE", num_args = 0.., allow_hyphen_values = true)]
    pub(crate) args: Vec<std::ffi::OsString>,
    /// VALUE is a file to read the JSON value from (keeps secrets out of process listings)
    #[arg(long)]
    pub(crate) value_file: bool,
    /// Read the JSON value from standard input (no VALUE argument)
    #[arg(long)]
    pub(crate) value_stdin: bool,
    /// Do nothing (write nothing) if PATH already has that value
    #[arg(long)]
    pub(crate) idempotent: bool,
    #[command(flatten)]
    pub(crate) common: TreeEditArgs,
}

#[derive(Args, Debug)]
pub(crate) struct UnsetArgs {
    /// FILE PATH
    #[arg(value_name = "FILE PATH", num_args = 0.., allow_hyphen_values = true)]
    pub(crate) args: Vec<std::ffi::OsString>,
    /// Succeed without writing anything if PATH is not there
    #[arg(long)]
    pub(crate) idempotent: bool,
    #[command(flatten)]
    pub(crate) common: TreeEditArgs,
}

/// Flags `set` and `unset` share, as sops names them.
#[derive(Args, Debug)]
pub(crate) struct TreeEditArgs {
    /// Input format (default: from the file extension)
    #[arg(long, value_name = "yaml|json|dotenv|ini")]
    pub(crate) input_type: Option<String>,
    /// Write the file back in this format (sops' behaviour: the file changes format, in sops' layout)
    #[arg(long, value_name = "yaml|json|dotenv|ini")]
    pub(crate) output_type: Option<String>,
    /// Do not verify the MAC when decrypting
    #[arg(long)]
    pub(crate) ignore_mac: bool,
    /// Accepted for sops compatibility; the file keeps its key groups and threshold (sops ignores it here too)
    #[arg(long, value_name = "N")]
    pub(crate) shamir_secret_sharing_threshold: Option<usize>,
}
