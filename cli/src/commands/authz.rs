//! `loupe authz check`: would this request be allowed by these
//! AuthorizationPolicies? Answered offline by `loupe_model::authz`, exactly
//! as the proxy decides. Exit 0 when it answered (ALLOW or DENY), 1 on bad
//! input, 2 on usage errors (clap).

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use loupe_model::analyze::Severity;
use loupe_model::authz::{Authorizer, DEFAULT_ROOT_NAMESPACE, Decision};
use loupe_model::{Kind, Request, Resource, parse_documents};

#[derive(clap::Subcommand)]
pub enum Command {
    /// Would this request be allowed by these AuthorizationPolicies?
    Check(CheckArgs),
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum Output {
    Text,
    Json,
}

#[derive(clap::Args)]
#[command(
    after_help = "REQUEST.json example (principal and namespace absent for plaintext):
  {\"source\":{\"principal\":\"cluster.local/ns/default/sa/frontend\",\"namespace\":\"default\",\"ip\":\"10.0.0.5\"},
   \"destination\":{\"namespace\":\"default\",\"labels\":{\"app\":\"reviews\"},\"port\":9080},
   \"request\":{\"method\":\"GET\",\"path\":\"/x\",\"host\":\"reviews.default.svc.cluster.local\",\"headers\":{\"x-user\":\"jason\"},
              \"auth\":{\"claims\":{\"iss\":\"https://accounts.google.com\",\"sub\":\"alice\",\"aud\":\"reviews\",\"groups\":[\"dev\"]}}}}
request.auth is the request's verified JWT (leave it out for a request without one): its claims
as JSON. The request principal (requestPrincipals, request.auth.principal) is iss/sub,
request.auth.audiences the aud claim, request.auth.presenter azp, and
request.auth.claims[a][b] the nested claim; string and list-of-strings claims match.
The signature is not checked here: the claims are taken as verified.
A request without any HTTP attribute (no method, path, host, headers or auth) is a plain TCP
connection: as in Istio, ALLOW rules that name HTTP-only fields never match it, and DENY
rules are applied without those fields.
Policies annotated istio.io/dry-run: \"true\" are not enforced (the text output says what they would do)."
)]
pub struct CheckArgs {
    /// Istio YAML with the AuthorizationPolicies (repeatable; `-` reads stdin).
    /// Other kinds in the files are ignored.
    #[arg(
        short = 'f',
        long = "filename",
        value_name = "POLICIES.yaml",
        required = true
    )]
    files: Vec<PathBuf>,
    /// The request, as JSON (`-` reads stdin).
    #[arg(long, value_name = "REQUEST.json")]
    request: PathBuf,
    #[arg(short, long, value_enum, default_value_t = Output::Text)]
    output: Output,
    /// The namespace whose policies apply mesh-wide (meshConfig.rootNamespace).
    #[arg(long, default_value = DEFAULT_ROOT_NAMESPACE)]
    root_namespace: String,
}

pub fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Check(args) => check(args),
    }
}

fn check(args: CheckArgs) -> anyhow::Result<ExitCode> {
    let mut resources = Vec::new();
    for file in &args.files {
        resources.extend(load_policies(file)?);
    }
    let request = load_request(&args.request)?;
    for d in loupe_model::analyze(&resources) {
        if d.severity == Severity::Error && d.resource.starts_with("AuthorizationPolicy/") {
            eprintln!(
                "warning: Istio would reject {} ({} {}); answered as Loupe reads it",
                d.resource, d.path, d.message
            );
        }
    }
    let authorizer = Authorizer::new(&resources, &args.root_namespace);
    let decision = authorizer.authorize(&request);
    match args.output {
        Output::Json => println!("{}", serde_json::to_string(&decision)?),
        Output::Text => {
            println!("request:  {}", describe(&request));
            println!("decision: {}", decision.decision.as_str());
            println!(
                "policy:   {}",
                decision
                    .policy
                    .as_deref()
                    .unwrap_or("(none: default decision)")
            );
            println!("reason:   {}", decision.reason);
            if decision.decision == Decision::Deny && decision.policy.is_none() {
                println!(
                    "hint:     to allow it, add a rule that matches this request to one of those ALLOW policies"
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn read_input(path: &Path, what: &str) -> anyhow::Result<String> {
    if path == Path::new("-") {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .with_context(|| format!("cannot read the {what} from stdin"))?;
        return Ok(text);
    }
    std::fs::read_to_string(path).with_context(|| {
        format!(
            "cannot read the {what} file {}: check the path",
            path.display()
        )
    })
}

/// The resources of one file; schema and syntax errors stop the command
/// (a policy that does not parse would silently change the answer).
fn load_policies(path: &Path) -> anyhow::Result<Vec<Resource>> {
    let source = path.display().to_string();
    let text = read_input(path, "policies")?;
    let parsed = parse_documents(&source, &text);
    let mut errors = Vec::new();
    for d in &parsed.diagnostics {
        match d.severity {
            Severity::Error => errors.push(format!("  {} {}: {}", d.resource, d.path, d.message)),
            Severity::Warning => {
                eprintln!(
                    "warning: {source}: {} {}: {}",
                    d.resource, d.path, d.message
                )
            }
        }
    }
    if !errors.is_empty() {
        bail!(
            "{source} has {} error(s); fix them (`loupe analyze {source}` shows all findings):\n{}",
            errors.len(),
            errors.join("\n")
        );
    }
    if !parsed
        .resources
        .iter()
        .any(|r| r.kind() == Kind::AuthorizationPolicy)
    {
        eprintln!("note: {source} contains no AuthorizationPolicy");
    }
    Ok(parsed.resources)
}

const REQUEST_FIELDS: [(&str, &[&str]); 5] = [
    ("", &["source", "destination", "request"]),
    ("source", &["principal", "namespace", "ip", "labels"]),
    ("destination", &["namespace", "labels", "port", "ip"]),
    (
        "request",
        &["method", "path", "host", "scheme", "headers", "auth"],
    ),
    ("request.auth", &["claims"]),
];

fn load_request(path: &Path) -> anyhow::Result<Request> {
    let name = path.display();
    let text = read_input(path, "request")?;
    let value: serde_json::Value = serde_json::from_str(&text).with_context(|| {
        format!("{name} is not valid JSON; see `loupe authz check --help` for an example request")
    })?;
    // A misspelt field is absent to the decision: say so. Not an error, so a
    // request file shared with `loupe route` (or annotated) still works.
    for (section, known) in REQUEST_FIELDS {
        let object = if section.is_empty() {
            Some(&value)
        } else {
            value.pointer(&format!("/{}", section.replace('.', "/")))
        };
        let map = object.and_then(|o| o.as_object());
        for key in map.into_iter().flat_map(|m| m.keys()) {
            if known.contains(&key.as_str()) {
                continue;
            }
            let field = if section.is_empty() {
                key.clone()
            } else {
                format!("{section}.{key}")
            };
            eprintln!(
                "warning: {name}: unknown field `{field}` is ignored; known fields here: {}",
                known.join(", ")
            );
        }
    }
    serde_json::from_value(value).with_context(|| {
        format!(
            "{name} is not a request: {}; see `loupe authz check --help` for the expected shape",
            "a field has the wrong type (e.g. port must be a number, labels and headers objects of \
             strings, request.auth.claims an object)"
        )
    })
}

fn describe(request: &Request) -> String {
    let r = &request.request;
    let from = request
        .source
        .principal
        .as_deref()
        .map(str::to_string)
        .unwrap_or_else(|| match &request.source.ip {
            Some(ip) => format!("{ip} (plaintext)"),
            None => "plaintext".to_string(),
        });
    let labels: Vec<String> = request
        .destination
        .labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    let tcp = r.method.is_none()
        && r.path.is_none()
        && r.host.is_none()
        && r.headers.is_empty()
        && r.auth.is_none();
    let what = if tcp {
        "TCP connection".to_string()
    } else {
        format!(
            "{} {}{}",
            r.method.as_deref().unwrap_or("-"),
            r.host.as_deref().unwrap_or(""),
            r.path.as_deref().unwrap_or("/")
        )
    };
    let jwt = match r.auth.as_ref().map(|jwt| jwt.principal()) {
        None => String::new(),
        Some(Some(principal)) => format!(" with JWT {principal}"),
        Some(None) => " with a JWT (no iss/sub)".to_string(),
    };
    format!(
        "{what} from {}{jwt} to namespace {} [{}]{}",
        from,
        request
            .destination
            .namespace
            .as_deref()
            .unwrap_or("default"),
        labels.join(","),
        request
            .destination
            .port
            .map(|p| format!(" port {p}"))
            .unwrap_or_default()
    )
}
