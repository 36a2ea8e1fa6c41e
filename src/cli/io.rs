//! Reading the input and writing the result. Results go to standard output, or
//! replace a file atomically (a temp file in the same directory, then a rename),
//! so a failure never leaves a half-written or truncated file behind.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use super::args::IoArgs;
use super::report::Failure;
use sops_file::formats::Format;

/// The input of a command: its text, a display name and the formats in play.
pub(crate) struct Input {
    /// The input as text; empty for a binary file (see `bytes`).
    pub text: Zeroizing<String>,
    /// The input bytes of a binary file (plaintext or envelope); empty otherwise.
    pub bytes: Zeroizing<Vec<u8>>,
    /// For messages: the path, or `<stdin>`.
    pub name: String,
    /// The path that selects the format and the `.sops.yaml` rule.
    pub(crate) rule_path: String,
    pub format: Format,
    pub(crate) output_format: Format,
    pub path: Option<PathBuf>,
}

impl Input {
    /// The bytes read, whatever the format.
    pub(crate) fn content(&self) -> &[u8] {
        if self.format == Format::Binary {
            &self.bytes
        } else {
            self.text.as_bytes()
        }
    }
}

pub(crate) fn format_named(name: &str, flag: &str) -> Result<Format, Failure> {
    Format::from_name(name).ok_or_else(|| {
        Failure::usage(format!(
            "{flag} {name:?} is not supported; git-sops reads and writes yaml, json, dotenv, ini and binary"
        ))
    })
}

pub(crate) fn read_input(args: &IoArgs) -> Result<Input, Failure> {
    let path = args.file.as_ref().filter(|p| p.as_os_str() != "-").cloned();
    if args.in_place && path.is_none() {
        return Err(Failure::usage(
            "--in-place needs a file, not standard input".into(),
        ));
    }
    let name = path
        .as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "<stdin>".to_string());
    let rule_path = args
        .filename_override
        .clone()
        .or_else(|| path.as_ref().map(|p| p.display().to_string()))
        .unwrap_or_default();
    let format = match &args.input_type {
        Some(t) => format_named(t, "--input-type")?,
        None if rule_path.is_empty() => {
            return Err(Failure::usage(
                "cannot tell the format of standard input: pass --input-type yaml|json|dotenv|ini|binary or --filename-override NAME".to_string(),
            ))
        }
        // As sops: anything that is not .yaml/.yml/.json/.env/.ini is binary.
        None => Format::detect(&rule_path),
    };
    let output_format = match &args.output_type {
        Some(t) => format_named(t, "--output-type")?,
        None => format,
    };
    let mut bytes = Zeroizing::new(Vec::new());
    let read = match &path {
        Some(p) => std::fs::File::open(p).and_then(|mut f| f.read_to_end(&mut bytes)),
        None => std::io::stdin().read_to_end(&mut bytes),
    };
    read.map_err(|e| Failure::io(format!("{name}: cannot read it: {e}")))?;
    if format == Format::Binary {
        return Ok(Input {
            text: Zeroizing::new(String::new()),
            bytes,
            name,
            rule_path,
            format,
            output_format,
            path,
        });
    }
    let text = String::from_utf8(std::mem::take(&mut *bytes)).map_err(|e| {
        let at = e.utf8_error().valid_up_to();
        Failure::input(format!(
            "{name}: not UTF-8 text (invalid byte at offset {at}); YAML, JSON, dotenv and INI files must be UTF-8"
        ))
    })?;
    Ok(Input {
        text: Zeroizing::new(text),
        bytes: Zeroizing::new(Vec::new()),
        name,
        rule_path,
        format,
        output_format,
        path,
    })
}

/// Write the result where the arguments say: in place, `--output`, or stdout.
pub(crate) fn write_output(args: &IoArgs, input: &Input, data: &str) -> Result<(), Failure> {
    write_output_bytes(args, input, data.as_bytes())
}

/// [`write_output`] for raw bytes (a decrypted binary file).
pub(crate) fn write_output_bytes(args: &IoArgs, input: &Input, data: &[u8]) -> Result<(), Failure> {
    let target = if args.in_place {
        input.path.clone()
    } else {
        args.output.clone()
    };
    match target {
        Some(path) => write_atomically(&path, data).map_err(|e| {
            Failure::io(format!(
                "{}: cannot write it: {e}; nothing was changed",
                path.display()
            ))
        }),
        None => {
            let mut out = std::io::stdout().lock();
            out.write_all(data)
                .and_then(|_| out.flush())
                .map_err(|e| Failure::io(format!("cannot write to standard output: {e}")))
        }
    }
}

/// Replace `path` with `data`: write a temp file beside it (keeping the old file's
/// permissions), flush it to disk and rename it over the target.
pub(crate) fn write_atomically(path: &Path, data: &[u8]) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".git-sops-")
        .suffix(".tmp")
        .tempfile_in(dir)?;
    tmp.write_all(data)?;
    tmp.as_file().sync_all()?;
    if let Ok(meta) = std::fs::metadata(path) {
        tmp.as_file().set_permissions(meta.permissions())?;
    }
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// Ask `question` (y/n) on the terminal: `None` when standard input is not a
/// terminal (the caller refuses then: nothing is done without a yes), else the
/// answer; the end of the input is a no.
pub(crate) fn ask(question: &str) -> Result<Option<bool>, Failure> {
    use std::io::{BufRead, IsTerminal};
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        return Ok(None);
    }
    let mut line = String::new();
    loop {
        eprint!("{question} (y/n): ");
        let _ = std::io::stderr().flush();
        line.clear();
        let n = stdin
            .lock()
            .read_line(&mut line)
            .map_err(|e| Failure::io(format!("cannot read the answer: {e}")))?;
        if n == 0 {
            return Ok(Some(false));
        }
        match line.trim().to_ascii_lowercase().as_str() {
            "y" | "yes" => return Ok(Some(true)),
            "n" | "no" => return Ok(Some(false)),
            _ => {}
        }
    }
}
