//! `loupe analyze [--output text|json] FILE...`: parses every file, analyzes
//! all resources together (cross-file references resolve), prints the
//! diagnostics. Exit 1 if any is an error, 0 otherwise, 2 on usage errors.

use std::path::PathBuf;
use std::process::ExitCode;

use loupe_model::analyze::{Diagnostic, Severity, has_errors};
use loupe_model::{Resource, analyze, parse_documents};

#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Output {
    #[default]
    Text,
    Json,
}

#[derive(clap::Args)]
pub struct Args {
    /// Output format.
    #[arg(long, short = 'o', value_enum, default_value_t = Output::Text)]
    output: Output,
    /// Istio YAML (or JSON) files or directories of them; multi-document files are fine.
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
}

/// A file that cannot be read: a usage error (exit 2), not a finding.
#[derive(Debug)]
pub(crate) struct Unreadable {
    pub path: PathBuf,
    pub error: std::io::Error,
}

impl std::fmt::Display for Unreadable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "cannot read {}: {}", self.path.display(), self.error)
    }
}

/// Reads and parses `files`: the resources of all of them, and the parse
/// diagnostics (syntax and schema errors, unknown fields) in file order.
pub(crate) fn read_config(
    files: &[PathBuf],
) -> Result<(Vec<Resource>, Vec<Diagnostic>), Unreadable> {
    let mut resources = Vec::new();
    let mut diagnostics = Vec::new();
    for path in &expand_directories(files)? {
        let text = std::fs::read(path).map_err(|error| Unreadable {
            path: path.clone(),
            error,
        })?;
        let name = path.display().to_string();
        match String::from_utf8(text) {
            Ok(text) => {
                let parsed = parse_documents(&name, &text);
                resources.extend(parsed.resources);
                diagnostics.extend(parsed.diagnostics);
            }
            Err(e) => diagnostics.push(Diagnostic {
                severity: Severity::Error,
                resource: name,
                path: String::new(),
                message: format!(
                    "the file is not UTF-8 text (invalid byte at offset {}); save it as UTF-8",
                    e.utf8_error().valid_up_to()
                ),
            }),
        }
    }
    Ok((resources, diagnostics))
}

/// A directory stands for its `*.yaml`, `*.yml` and `*.json` files (as
/// `kubectl apply -f DIR` reads it), in name order.
fn expand_directories(files: &[PathBuf]) -> Result<Vec<PathBuf>, Unreadable> {
    let mut out = Vec::new();
    for path in files {
        if !path.is_dir() {
            out.push(path.clone());
            continue;
        }
        let unreadable = |error| Unreadable {
            path: path.clone(),
            error,
        };
        let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
            .map_err(unreadable)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.is_file()
                    && p.extension()
                        .and_then(|e| e.to_str())
                        .is_some_and(|e| matches!(e, "yaml" | "yml" | "json"))
            })
            .collect();
        entries.sort();
        out.extend(entries);
    }
    Ok(out)
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let (resources, mut diagnostics) = match read_config(&args.files) {
        Ok(read) => read,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(ExitCode::from(2));
        }
    };
    diagnostics.extend(analyze(&resources));
    let report = match args.output {
        Output::Json => serde_json::to_string_pretty(&diagnostics)? + "\n",
        Output::Text => text_report(&diagnostics, resources.len(), args.files.len()),
    };
    emit(&report)?;
    Ok(if has_errors(&diagnostics) {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// Writes `report` to stdout. A reader that goes away early (`| head`) is
/// not an error: the exit code still tells the result.
pub(crate) fn emit(report: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(report.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

fn text_report(diagnostics: &[Diagnostic], resources: usize, files: usize) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    for d in diagnostics {
        let severity = match d.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        if d.path.is_empty() {
            let _ = writeln!(out, "{severity}: {}: {}", d.resource, d.message);
        } else {
            let _ = writeln!(
                out,
                "{severity}: {} at {}: {}",
                d.resource, d.path, d.message
            );
        }
    }
    let errors = diagnostics
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .count();
    let warnings = diagnostics.len() - errors;
    let _ = writeln!(
        out,
        "{resources} resource(s) in {files} file(s): {errors} error(s), {warnings} warning(s)"
    );
    out
}
