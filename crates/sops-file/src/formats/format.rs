//! Which format a file is: sops' detection by extension, the names used by
//! `--input-type`/`--output-type` and the `sops-type` attribute, and the store
//! that reads each.

use super::{dotenv, ini, json, yaml, Store};

/// The file formats SOPS knows. Detection by extension follows sops.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Yaml,
    Json,
    Dotenv,
    Ini,
    /// Any other file: its bytes are one encrypted value in a JSON envelope
    /// (`crate::binary`); it has no [`Store`] of its own.
    Binary,
}

impl Format {
    /// sops' rule for the command line: `.yaml`/`.yml` → YAML, `.json` → JSON,
    /// `.env` → dotenv, `.ini` → INI, anything else binary.
    pub fn detect(path: &str) -> Format {
        Format::from_path(path).unwrap_or(Format::Binary)
    }

    /// The structured formats by extension (see [`Format::detect`]); `None` for
    /// anything else (binary to sops; the guard uses this to decide which
    /// unprotected files are worth reading).
    pub fn from_path(path: &str) -> Option<Format> {
        let lower = path.to_ascii_lowercase();
        if lower.ends_with(".yaml") || lower.ends_with(".yml") {
            Some(Format::Yaml)
        } else if lower.ends_with(".json") {
            Some(Format::Json)
        } else if lower.ends_with(".env") {
            Some(Format::Dotenv)
        } else if lower.ends_with(".ini") {
            Some(Format::Ini)
        } else {
            None
        }
    }

    /// The names sops accepts for `--input-type` / `--output-type`.
    pub fn from_name(name: &str) -> Option<Format> {
        match name {
            "yaml" => Some(Format::Yaml),
            "json" => Some(Format::Json),
            "dotenv" => Some(Format::Dotenv),
            "ini" => Some(Format::Ini),
            "binary" => Some(Format::Binary),
            _ => None,
        }
    }

    /// Whether sops 3.11 can read a file of this format that starts with a UTF-8
    /// BOM: go-yaml skips it, Go's `encoding/json` rejects it; dotenv and INI
    /// take it as part of the first line.
    pub fn sops_accepts_bom(self) -> bool {
        self != Format::Json
    }

    pub fn name(self) -> &'static str {
        match self {
            Format::Yaml => "yaml",
            Format::Json => "json",
            Format::Dotenv => "dotenv",
            Format::Ini => "ini",
            Format::Binary => "binary",
        }
    }

    /// The store implementing this format. A binary file's plaintext is raw bytes
    /// (see `crate::binary`); its encrypted envelope is JSON, so that is the
    /// store given for it.
    pub fn store(self) -> &'static dyn Store {
        match self {
            Format::Binary => &json::JsonStore,
            Format::Yaml => &yaml::YamlStore,
            Format::Json => &json::JsonStore,
            Format::Dotenv => &dotenv::DotenvStore,
            Format::Ini => &ini::IniStore,
        }
    }
}
