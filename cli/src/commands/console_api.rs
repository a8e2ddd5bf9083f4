//! The console's HTTP API from the shell, as kubectl talks to the API
//! server: `loupe apply`, `get`, `history` and `audit` send their requests
//! to the console (`--console-url`/`LOUPE_CONSOLE_URL`, else the running
//! demo's), authenticated by an API token (`--token`/`LOUPE_TOKEN`, else
//! the demo's), so the console's roles and audit log apply to the CLI too.

use anyhow::Context;
use loupe_api::encode;
use loupe_api::error::ErrorBody;
use loupe_model::Diagnostic;
use reqwest::Method;
use serde::de::DeserializeOwned;

/// Where the console is and who to be there.
#[derive(clap::Args, Debug, Default)]
pub struct ConsoleArgs {
    /// The console's URL (default: the running `loupe demo`'s, from its demo.json).
    #[arg(long, env = "LOUPE_CONSOLE_URL")]
    pub console_url: Option<String>,
    /// An API token (`loupe user token NAME`; default: the running demo's).
    #[arg(long, env = "LOUPE_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
}

/// A call the console answered with an error.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Refused {
    pub status: u16,
    pub message: String,
    /// On 422: what is wrong with the config, and where.
    pub diagnostics: Vec<Diagnostic>,
}

pub struct ConsoleApi {
    base: String,
    token: Option<String>,
    http: reqwest::Client,
}

impl ConsoleApi {
    /// The console of the flags, else of the running demo's state file.
    pub fn new(args: &ConsoleArgs) -> anyhow::Result<ConsoleApi> {
        let state_path = crate::demo::DemoState::path(&crate::demo::loupe_home());
        let state: Option<serde_json::Value> = std::fs::read_to_string(&state_path)
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok());
        let from_state = |field: &str| {
            state
                .as_ref()
                .and_then(|s| s.get(field)?.as_str().map(str::to_string))
        };
        let given = |v: &Option<String>| v.clone().filter(|v| !v.trim().is_empty());
        let base = given(&args.console_url)
            .or_else(|| from_state("console_url"))
            .with_context(|| {
                format!(
                    "no console given: pass --console-url, set LOUPE_CONSOLE_URL, or start `loupe demo` \
                     (no {} found); or pass --database-url to work on the store directly",
                    state_path.display()
                )
            })?;
        // The demo's token only for the demo's console.
        let token = given(&args.token).or_else(|| {
            (given(&args.console_url).is_none()
                || given(&args.console_url) == from_state("console_url"))
            .then(|| from_state("token"))
            .flatten()
        });
        Ok(ConsoleApi {
            base: base.trim_end_matches('/').to_string(),
            token,
            http: reqwest::Client::new(),
        })
    }

    /// `GET path` → its JSON.
    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> anyhow::Result<Result<T, Refused>> {
        self.call(Method::GET, path, &[], None).await
    }

    /// Sends a request (with a YAML body, if any) and reads the JSON answer.
    pub async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        yaml: Option<String>,
    ) -> anyhow::Result<Result<T, Refused>> {
        let mut url = format!("{}{path}", self.base);
        for (i, (k, v)) in query.iter().enumerate() {
            url.push(if i == 0 && !path.contains('?') {
                '?'
            } else {
                '&'
            });
            url.push_str(&format!("{k}={}", encode(v)));
        }
        let mut request = self.http.request(method, &url);
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        if let Some(yaml) = yaml {
            request = request
                .header("content-type", "application/yaml")
                .body(yaml);
        }
        let response = request.send().await.with_context(|| {
            format!("cannot reach the console at {} (is it running?)", self.base)
        })?;
        let status = response.status();
        let text = response
            .text()
            .await
            .with_context(|| format!("reading the console's answer to {url}"))?;
        if status.is_success() {
            return serde_json::from_str(&text).map(Ok).with_context(|| {
                format!("the console's answer to {url} is not what loupe expects")
            });
        }
        let body: Option<ErrorBody> = serde_json::from_str(&text).ok();
        let (mut message, diagnostics) = match body {
            Some(b) => (b.error, b.diagnostics),
            None => (format!("{status}: {}", text.trim()), Vec::new()),
        };
        if status == reqwest::StatusCode::UNAUTHORIZED && self.token.is_none() {
            message.push_str(" (no API token: pass --token or set LOUPE_TOKEN)");
        }
        Ok(Err(Refused {
            status: status.as_u16(),
            message,
            diagnostics,
        }))
    }
}
