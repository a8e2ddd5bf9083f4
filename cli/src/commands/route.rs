//! `loupe route [--output text|json] -f CONFIG.yaml --request REQUEST.json
//! [--gateway NS/NAME]`: where Istio would send the request, and why.
//! Exit 0 with an answer, 1 when the config does not parse, 2 on usage errors.

use std::path::PathBuf;
use std::process::ExitCode;

use loupe_model::Request;
use loupe_model::analyze::Severity;
use loupe_model::route::{RouteDecision, Router};

use super::analyze::{Output, emit, read_config};

#[derive(clap::Args)]
pub struct Args {
    /// Output format.
    #[arg(long, short = 'o', value_enum, default_value_t = Output::Text)]
    output: Output,
    /// Istio YAML files with the VirtualServices (repeatable).
    #[arg(short = 'f', long = "filename", required = true, value_name = "CONFIG")]
    files: Vec<PathBuf>,
    /// The request, as JSON: {"source":{...},"destination":{...},"request":{...}}.
    #[arg(long, value_name = "REQUEST.json")]
    request: PathBuf,
    /// Route as traffic through this Gateway (NAMESPACE/NAME) instead of a sidecar.
    #[arg(long, value_name = "NAMESPACE/NAME")]
    gateway: Option<String>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let (resources, diagnostics) = match read_config(&args.files) {
        Ok(read) => read,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(ExitCode::from(2));
        }
    };
    let mut failed = false;
    for d in &diagnostics {
        let (label, is_error) = match d.severity {
            Severity::Error => ("error", true),
            Severity::Warning => ("warning", false),
        };
        failed |= is_error;
        eprintln!("{label}: {} {}: {}", d.resource, d.path, d.message);
    }
    if failed {
        eprintln!(
            "error: the configuration does not parse; fix it (see `loupe analyze`) and retry"
        );
        return Ok(ExitCode::from(1));
    }
    let request = match read_request(&args.request) {
        Ok(request) => request,
        Err(message) => {
            eprintln!("error: {message}");
            return Ok(ExitCode::from(2));
        }
    };
    let router = Router::new(&resources);
    let decision = router.route(&request, args.gateway.as_deref());
    let report = match args.output {
        Output::Json => serde_json::to_string_pretty(&decision)? + "\n",
        Output::Text => text_report(&decision),
    };
    emit(&report)?;
    Ok(ExitCode::SUCCESS)
}

/// Reads REQUEST.json; header names are stored lower-case, as HTTP/2 sends them.
fn read_request(path: &PathBuf) -> Result<Request, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let mut request: Request = serde_json::from_str(&text).map_err(|e| {
        format!(
            "{} is not a request: {e}; expected {{\"source\":{{...}},\"destination\":{{...}},\"request\":{{\"method\",\"path\",\"host\",\"headers\"}}}}",
            path.display()
        )
    })?;
    request.request.headers = std::mem::take(&mut request.request.headers)
        .into_iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v))
        .collect();
    Ok(request)
}

fn text_report(d: &RouteDecision) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let _ = writeln!(out, "{}", d.reason);
    if d.routes.is_empty() {
        let _ = writeln!(out, "routes: none");
    }
    for r in &d.routes {
        let subset = r
            .subset
            .as_deref()
            .map(|s| format!(" subset {s}"))
            .unwrap_or_default();
        let port = r.port.map(|p| format!(":{p}")).unwrap_or_default();
        let _ = writeln!(
            out,
            "  -> {}{port}{subset}  {}%",
            r.host,
            format_weight(r.weight)
        );
    }
    if let Some(t) = d.timeout_ms {
        let _ = writeln!(out, "timeout: {t} ms");
    }
    if let Some(r) = &d.retries {
        let per_try = r
            .per_try_timeout_ms
            .map(|t| format!(", {t} ms per try"))
            .unwrap_or_default();
        let on = r
            .retry_on
            .as_deref()
            .map(|o| format!(", on {o}"))
            .unwrap_or_default();
        let _ = writeln!(out, "retries: {} attempt(s){per_try}{on}", r.attempts);
    }
    for (label, value) in [
        ("fault", &d.fault),
        ("rewrite", &d.rewrite),
        ("redirect", &d.redirect),
        ("mirror", &d.mirror),
        ("direct response", &d.direct_response),
    ] {
        if let Some(v) = value {
            let _ = writeln!(out, "{label}: {v}");
        }
    }
    out
}

fn format_weight(w: f64) -> String {
    if w.fract() == 0.0 {
        format!("{w:.0}")
    } else {
        format!("{w:.2}")
    }
}
