//! `loupe install` and `loupe dashboard` as a user runs them: the `loupe`
//! binary, a kubeconfig file naming the cluster, and curl through the
//! dashboard's port-forward. The cluster is the stand-in API server of
//! `loupe-kube-stand-in` (no Kubernetes API server runs on this machine).

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use loupe_kube_stand_in::ApiServer;
use serde_json::json;

/// A kubeconfig whose current context is the stand-in.
fn kubeconfig(api: &ApiServer) -> tempfile::NamedTempFile {
    let file = tempfile::NamedTempFile::new().expect("a temp file");
    let text = format!(
        "apiVersion: v1\nkind: Config\n\
         clusters:\n- name: stand-in\n  cluster:\n    server: http://{}\n\
         users:\n- name: operator\n  user: {{}}\n\
         contexts:\n- name: stand-in\n  context:\n    cluster: stand-in\n    user: operator\n\
         current-context: stand-in\n",
        api.addr
    );
    std::fs::write(file.path(), text).expect("write the kubeconfig");
    file
}

fn loupe(config: &tempfile::NamedTempFile) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_loupe"));
    command.env("KUBECONFIG", config.path());
    command
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn install_applies_the_demo_profile_to_the_kubeconfig_cluster() {
    let api = ApiServer::start().await;
    let config = kubeconfig(&api);
    let out = tokio::task::spawn_blocking(move || {
        loupe(&config)
            .args(["install", "--set", "profile=demo", "--wait-timeout", "0s"])
            .output()
            .expect("loupe runs")
    })
    .await
    .expect("join");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("applied Deployment istio-system/loupe-control"),
        "{stdout}"
    );
    assert!(
        stdout.contains("✔ Loupe installed (profile demo)"),
        "{stdout}"
    );
    assert!(
        api.get("apis/apps/v1/deployments", "istio-system", "loupe-control")
            .is_some()
    );
    assert!(
        api.get(
            "apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations",
            "",
            "loupe-sidecar-injector"
        )
        .is_some()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn install_beside_istio_exits_1_naming_istiod_and_the_way_out() {
    let api = ApiServer::start().await;
    api.put(
        "apis/apps/v1/deployments",
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "istiod", "namespace": "istio-system"}, "spec": {}}),
    );
    let config = kubeconfig(&api);
    let out = tokio::task::spawn_blocking(move || {
        loupe(&config)
            .args(["install"])
            .output()
            .expect("loupe runs")
    })
    .await
    .expect("join");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("Deployment istio-system/istiod")
            && stderr.contains("istioctl uninstall")
            && stderr.contains("--force"),
        "{stderr}"
    );
    assert!(
        !api.requests().iter().any(|r| r.starts_with("PATCH ")),
        "nothing applied"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_serves_the_console_pod_to_curl() {
    let api = ApiServer::start().await;
    let console = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let console_addr = console.local_addr().expect("addr");
    tokio::spawn(async move {
        let app =
            axum::Router::new().route("/", axum::routing::get(|| async { "<title>Loupe</title>" }));
        let _ = axum::serve(console, app).await;
    });
    api.put(
        "api/v1/pods",
        json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "loupe-console-5f6b", "namespace": "istio-system",
                "labels": {"app": "loupe-console"}},
            "status": {"phase": "Running"}}),
    );
    api.forward("istio-system", "loupe-console-5f6b", 20001, console_addr);
    let config = kubeconfig(&api);
    let mut dashboard = loupe(&config)
        .args(["dashboard", "--port", "0", "--browser=false"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("loupe dashboard runs");
    let stdout = dashboard.stdout.take().expect("stdout");
    let line = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).expect("a line");
        line
    })
    .await
    .expect("join");
    assert!(
        line.contains("pod istio-system/loupe-console-5f6b"),
        "{line}"
    );
    let url = line.split_whitespace().next().expect("the URL").to_string();
    let out = tokio::task::spawn_blocking(move || {
        Command::new("curl")
            .args(["-sS", "--max-time", "10", &url])
            .output()
            .expect("curl runs")
    })
    .await
    .expect("join");
    let _ = dashboard.kill();
    let _ = dashboard.wait();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "<title>Loupe</title>",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
