//! `loupe apply`, `get`, `history` and `audit`: the built binary against a
//! private Postgres, directly (DATABASE_URL) and through a `loupe console`
//! found in the demo's state file, with its users' API tokens.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const DR: &str = "\
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: reviews
  namespace: default
spec:
  host: reviews
  subsets:
  - name: v1
    labels:
      version: v1
  - name: v3
    labels:
      version: v3
";

fn vs(w1: u32, w3: u32) -> String {
    format!(
        "\
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: reviews
  namespace: default
spec:
  hosts:
  - reviews
  http:
  - route:
    - destination:
        host: reviews
        subset: v1
      weight: {w1}
    - destination:
        host: reviews
        subset: v3
      weight: {w3}
"
    )
}

/// A scratch directory removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("loupe-cli-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("scratch dir");
        Scratch(dir)
    }

    fn file(&self, name: &str, text: &str) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, text).expect("write fixture");
        path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `loupe ARGS` with a clean environment: no DATABASE_URL unless given, and
/// LOUPE_HOME pointing at `home`.
fn loupe(home: &Path, database_url: Option<&str>, args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_loupe"));
    cmd.args(args)
        .env_remove("DATABASE_URL")
        .env("LOUPE_HOME", home)
        .env("USER", "tester");
    if let Some(url) = database_url {
        cmd.env("DATABASE_URL", url);
    }
    cmd.output().expect("run loupe")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn ok(o: Output) -> String {
    assert!(
        o.status.success(),
        "loupe failed: {}\n{}",
        stdout(&o),
        stderr(&o)
    );
    stdout(&o)
}

#[test]
fn apply_get_history_against_a_private_postgres() {
    let pg = loupe_db::PrivatePostgres::start_temporary().expect("private postgres");
    let url = pg.url();
    let db = Some(url.as_str());
    let scratch = Scratch::new("apply");
    let home = scratch.0.join("home");
    let bookinfo = scratch.file("bookinfo.yaml", &format!("{DR}---\n{}", vs(50, 50)));
    let canary = scratch.file("canary.yaml", &vs(0, 100));
    let bookinfo = bookinfo.to_str().unwrap();
    let canary = canary.to_str().unwrap();

    let out = ok(loupe(&home, db, &["apply", "-f", bookinfo]));
    assert!(
        out.contains("destinationrule default/reviews created (revision 1)"),
        "{out}"
    );
    assert!(
        out.contains("virtualservice default/reviews created (revision 1)"),
        "{out}"
    );

    let out = ok(loupe(&home, db, &["apply", "-f", canary, "--dry-run"]));
    assert_eq!(
        out.trim(),
        "virtualservice default/reviews configured (revision 2) (dry run)"
    );
    let out = ok(loupe(
        &home,
        db,
        &["apply", "-f", canary, "--author", "alice"],
    ));
    assert_eq!(
        out.trim(),
        "virtualservice default/reviews configured (revision 2)"
    );
    let out = ok(loupe(&home, db, &["apply", "-f", canary]));
    assert_eq!(
        out.trim(),
        "virtualservice default/reviews unchanged (revision 2)"
    );

    // get: a table, one kind, YAML and JSON.
    let out = ok(loupe(&home, db, &["get"]));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    assert!(lines[0].starts_with("KIND"), "{out}");
    assert!(
        out.contains("VirtualService") && out.contains("alice"),
        "{out}"
    );
    let out = ok(loupe(&home, db, &["get", "vs"]));
    assert_eq!(out.lines().count(), 2, "{out}");
    assert!(!out.contains("DestinationRule"), "{out}");
    let out = ok(loupe(&home, db, &["get", "virtualservices", "-o", "json"]));
    let list: serde_json::Value = serde_json::from_str(&out).expect("JSON output");
    assert_eq!(list["items"][0]["kind"], "VirtualService");
    assert_eq!(
        list["items"][0]["spec"]["http"][0]["route"][1]["weight"],
        100
    );
    let out = ok(loupe(&home, db, &["get", "dr", "-o", "yaml"]));
    assert!(
        out.contains("kind: DestinationRule") && out.contains("subsets"),
        "{out}"
    );

    let out = ok(loupe(
        &home,
        db,
        &["get", "vs", "reviews", "-n", "default", "-o", "yaml"],
    ));
    assert!(
        out.contains("kind: VirtualService") && out.contains("name: reviews"),
        "{out}"
    );
    let o = loupe(&home, db, &["get", "vs", "nope"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("no vs named nope"), "{}", stderr(&o));

    // A typo'd field is applied (Istio ignores it too) but warned about.
    let typo = scratch.file(
        "typo.yaml",
        &vs(0, 100).replace("  hosts:\n", "  timeoutt: 5s\n  hosts:\n"),
    );
    let o = loupe(&home, db, &["apply", "-f", typo.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("timeoutt"), "warned: {}", stderr(&o));

    // history: newest first, with authors.
    let out = ok(loupe(&home, db, &["history", "vs/default/reviews"]));
    let rows: Vec<&str> = out.lines().skip(1).collect();
    assert_eq!(rows.len(), 2, "{out}");
    assert!(
        rows[0].starts_with('2') && rows[0].contains("alice"),
        "{out}"
    );
    assert!(
        rows[1].starts_with('1') && rows[1].contains("tester"),
        "{out}"
    );
    let out = ok(loupe(
        &home,
        db,
        &["history", "VirtualService/default/reviews", "-o", "json"],
    ));
    let revs: serde_json::Value = serde_json::from_str(&out).expect("JSON history");
    assert_eq!(revs[0]["revision"], 2);
    assert_eq!(revs[0]["author"], "alice");

    // An invalid file is refused with its diagnostics; nothing is written.
    let broken = scratch.file(
        "broken.yaml",
        &vs(0, 100).replace("weight: 100", "weight: [oops"),
    );
    let o = loupe(
        &home,
        db,
        &["apply", "-f", canary, "-f", broken.to_str().unwrap()],
    );
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("nothing was written"), "{err}");
    assert!(
        err.contains("broken.yaml") || err.contains("reviews"),
        "diagnostic names the input: {err}"
    );
    let to_v9 = scratch.file("v9.yaml", &vs(50, 50).replace("subset: v3", "subset: v9"));
    let o = loupe(&home, db, &["apply", "-f", to_v9.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("v9"), "{}", stderr(&o));
    let out = ok(loupe(&home, db, &["history", "vs/default/reviews"]));
    assert_eq!(out.lines().count(), 3, "still two revisions: {out}");

    // Unknown resource and unknown kind.
    let o = loupe(&home, db, &["history", "vs/default/nope"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("not in the config store"),
        "{}",
        stderr(&o)
    );
    let o = loupe(&home, db, &["get", "pods"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("unknown kind `pods`"), "{}", stderr(&o));
}

/// A `loupe console` child process, killed when dropped.
struct ConsoleProcess(std::process::Child);

impl Drop for ConsoleProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_console(database_url: &str) -> (ConsoleProcess, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let listen = format!("127.0.0.1:{port}");
    let child = Command::new(env!("CARGO_BIN_EXE_loupe"))
        .args([
            "console",
            "--database-url",
            database_url,
            "--listen",
            &listen,
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start loupe console");
    let mut console = ConsoleProcess(child);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while std::net::TcpStream::connect(&listen).is_err() {
        assert!(
            std::time::Instant::now() < deadline && console.0.try_wait().unwrap().is_none(),
            "loupe console did not listen on {listen}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    (console, format!("http://{listen}"))
}

fn write_state(home: &Path, state: serde_json::Value) {
    std::fs::create_dir_all(home).unwrap();
    std::fs::write(home.join("demo.json"), state.to_string()).unwrap();
}

#[test]
fn without_a_database_url_the_cli_goes_through_the_console_as_the_tokens_user() {
    let scratch = Scratch::new("console");
    let home = scratch.0.join("home");

    // Neither a console nor a database: a clear error.
    let o = loupe(&home, None, &["get"]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.contains("loupe demo") && err.contains("--console-url"),
        "{err}"
    );

    let pg = loupe_db::PrivatePostgres::start_temporary().expect("private postgres");
    let url = pg.url();
    let db = Some(url.as_str());
    let pw = scratch.file("pw", "a-long-password\n");
    let pw = pw.to_str().unwrap();
    for (user, role) in [("ed", "editor"), ("vi", "viewer")] {
        let o = loupe(
            &home,
            db,
            &["user", "add", user, "--role", role, "--password-file", pw],
        );
        assert!(o.status.success(), "{}", stderr(&o));
        assert!(
            stdout(&o).is_empty(),
            "nothing secret printed: {}",
            stdout(&o)
        );
    }
    let token = |user: &str| {
        ok(loupe(&home, db, &["user", "token", user]))
            .trim()
            .to_string()
    };
    let (ed, vi) = (token("ed"), token("vi"));
    assert!(ed.starts_with("loupe_"), "{ed}");
    let (_console, console_url) = start_console(&url);

    // The demo's state file names the console and a token: flags not needed.
    write_state(
        &home,
        serde_json::json!({ "database_url": url, "console_url": console_url, "token": ed }),
    );
    let file = scratch.file("bookinfo.yaml", &format!("{DR}---\n{}", vs(50, 50)));
    let out = ok(loupe(&home, None, &["apply", "-f", file.to_str().unwrap()]));
    assert!(
        out.contains("destinationrule default/reviews created (revision 1)")
            && out.contains("virtualservice default/reviews created (revision 1)"),
        "{out}"
    );
    let canary = scratch.file("canary.yaml", &vs(0, 100));
    let canary = canary.to_str().unwrap();
    let out = ok(loupe(&home, None, &["apply", "-f", canary, "--dry-run"]));
    assert_eq!(
        out.trim(),
        "virtualservice default/reviews configured (revision 2) (dry run)"
    );
    let out = ok(loupe(&home, None, &["apply", "-f", canary]));
    assert_eq!(
        out.trim(),
        "virtualservice default/reviews configured (revision 2)"
    );
    let out = ok(loupe(&home, None, &["get", "vs"]));
    assert_eq!(out.lines().count(), 2, "{out}");
    assert!(out.contains("reviews") && out.contains("ed"), "{out}");
    let out = ok(loupe(&home, None, &["history", "vs/default/reviews"]));
    let rows: Vec<&str> = out.lines().skip(1).collect();
    assert_eq!(rows.len(), 2, "{out}");
    assert!(
        rows.iter().all(|r| r.contains(" ed ")),
        "the token's user: {out}"
    );
    let out = ok(loupe(
        &home,
        None,
        &["audit", "--user", "ed", "--kind", "vs"],
    ));
    assert_eq!(out.lines().count(), 3, "{out}");
    assert!(out.contains("VirtualService/default/reviews"), "{out}");

    // Refused config comes back with its diagnostics.
    let to_v9 = scratch.file("v9.yaml", &vs(50, 50).replace("subset: v3", "subset: v9"));
    let o = loupe(&home, None, &["apply", "-f", to_v9.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("nothing was written") && stderr(&o).contains("v9"),
        "{}",
        stderr(&o)
    );
    let o = loupe(&home, None, &["history", "vs/default/nope"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("not in the config store"),
        "{}",
        stderr(&o)
    );

    // A viewer's token reads but may not write.
    let as_viewer = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_loupe"))
            .args(args)
            .env_remove("DATABASE_URL")
            .env("LOUPE_HOME", &home)
            .env("LOUPE_TOKEN", &vi)
            .output()
            .unwrap()
    };
    assert!(as_viewer(&["get", "dr"]).status.success());
    let o = as_viewer(&["apply", "-f", file.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("editor"), "{}", stderr(&o));

    // Revoking the viewer's token, then removing ed: refused from the next command.
    let out = ok(loupe(&home, db, &["user", "tokens", "vi"]));
    assert!(
        out.lines().nth(1).is_some_and(|l| l.starts_with("cli ")),
        "{out}"
    );
    assert!(!out.contains(&vi), "a token is never listed: {out}");
    ok(loupe(
        &home,
        db,
        &["user", "revoke-token", "vi", "--token-name", "cli"],
    ));
    let o = as_viewer(&["get", "dr"]);
    assert_eq!(o.status.code(), Some(1), "a revoked token reads nothing");
    let o = loupe(
        &home,
        db,
        &["user", "revoke-token", "vi", "--token-name", "cli"],
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("no API token named"), "{}", stderr(&o));
    ok(loupe(&home, db, &["user", "remove", "ed"]));
    let o = loupe(&home, None, &["get", "dr"]);
    assert_eq!(
        o.status.code(),
        Some(1),
        "a removed user's token reads nothing"
    );
    let o = loupe(&home, db, &["user", "remove", "ed"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("no console user"), "{}", stderr(&o));

    // No token at all: the console answers 401 and the CLI says what to do.
    write_state(&home, serde_json::json!({ "console_url": console_url }));
    let o = loupe(&home, None, &["get"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("--token"), "{}", stderr(&o));
}

#[test]
fn control_serves_until_sigterm() {
    let pg = loupe_db::PrivatePostgres::start_temporary().expect("private postgres");
    let scratch = Scratch::new("control");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let listen = format!("127.0.0.1:{port}");
    let mut child = Command::new(env!("CARGO_BIN_EXE_loupe"))
        .args(["control", "--listen", &listen])
        .env("DATABASE_URL", pg.url())
        .env("LOUPE_HOME", &scratch.0)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start loupe control");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while std::net::TcpStream::connect(&listen).is_err() {
        if std::time::Instant::now() > deadline || child.try_wait().unwrap().is_some() {
            let _ = child.kill();
            panic!("loupe control did not listen on {listen}");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let term = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(term.success());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("loupe control still running 10 s after SIGTERM");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert!(status.success(), "clean exit on SIGTERM: {status}");
}
