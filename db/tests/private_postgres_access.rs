//! Who may reach the private server: only the OS user who started it.
//! These run as root (as CI does): they create a probe user and act as others.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;

const PROBE_USER: &str = "loupe-pg-probe";

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

fn ensure_probe_user() {
    let exists = Command::new("id")
        .arg(PROBE_USER)
        .output()
        .unwrap()
        .status
        .success();
    if !exists {
        let out = Command::new("useradd")
            .args([
                "--system",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
                PROBE_USER,
            ])
            .output()
            .expect("useradd");
        // Another test may have created it meanwhile.
        assert!(
            out.status.success()
                || Command::new("id")
                    .arg(PROBE_USER)
                    .output()
                    .unwrap()
                    .status
                    .success(),
            "useradd {PROBE_USER}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// `psql -c 'select 1'` on the server's socket, as `user` (None: as we are).
fn psql_as(user: Option<&str>, pg: &loupe_db::PrivatePostgres) -> (bool, String) {
    let socket = pg.socket_dir().to_string_lossy().into_owned();
    let port = pg.port().to_string();
    let args = [
        "-h", &socket, "-p", &port, "-U", "postgres", "-d", "postgres", "-w", "-Atc", "select 1",
    ];
    let out = match user {
        Some(u) => Command::new("runuser")
            .args(["-u", u, "--", "psql"])
            .args(args)
            .current_dir("/")
            .output(),
        None => Command::new("psql").args(args).output(),
    }
    .expect("run psql");
    let text = String::from_utf8_lossy(&[out.stdout, out.stderr].concat()).into_owned();
    (out.status.success(), text)
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

#[test]
fn only_the_starting_os_user_can_connect() {
    assert!(
        is_root(),
        "this test acts as other OS users: run it as root (CI does)"
    );
    ensure_probe_user();
    let pg = loupe_db::PrivatePostgres::start_temporary().expect("start private postgres");

    let (ok, text) = psql_as(None, &pg);
    assert!(
        ok && text.trim() == "1",
        "the starting user connects: {text}"
    );

    let (ok, text) = psql_as(Some(PROBE_USER), &pg);
    assert!(!ok, "{PROBE_USER} must not connect: {text}");

    // The server's own OS user reaches the socket (it owns it), so this is
    // peer authentication itself refusing, not a file permission.
    let (ok, text) = psql_as(Some("postgres"), &pg);
    assert!(!ok, "postgres (OS user) must not connect: {text}");
    assert!(text.contains("authentication failed"), "{text}");

    let hba = std::fs::read_to_string(pg.data_dir().join("pg_hba.conf")).unwrap();
    let rules: Vec<&str> = hba
        .lines()
        .filter(|l| !l.trim_start().starts_with('#') && !l.trim().is_empty())
        .collect();
    assert_eq!(rules, ["local all all peer map=loupe"]);

    assert_eq!(mode(pg.data_dir()), 0o700);
    assert_eq!(mode(pg.socket_dir()), 0o700);
    assert_eq!(
        std::fs::metadata(pg.data_dir()).unwrap().uid(),
        uid_of("postgres")
    );
}

fn uid_of(user: &str) -> u32 {
    let out = Command::new("id").args(["-u", user]).output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

#[tokio::test]
async fn a_home_directory_is_not_opened_up() {
    assert!(
        is_root(),
        "this test starts the server as root: run it as root (CI does)"
    );
    // A home like root's: 0700, so `postgres` cannot traverse it.
    let home = tempfile::Builder::new()
        .prefix("loupe-home-")
        .tempdir()
        .unwrap();
    std::fs::set_permissions(home.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    let above = home.path().parent().unwrap().to_path_buf();
    let above_mode = mode(&above);
    let root = home.path().join(".loupe/demo/postgres");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();

    let pg = loupe_db::PrivatePostgres::start_in(&root, port).expect("start in a home");
    let pool = loupe_db::connect(&pg.url(), 1)
        .await
        .expect("the URL still works");
    let (one,): (i32,) = sqlx::query_as("select 1").fetch_one(&pool).await.unwrap();
    assert_eq!(one, 1);
    pool.close().await;

    assert_eq!(mode(home.path()), 0o700, "the home was widened");
    assert_eq!(mode(&above), above_mode, "the home's parent was changed");
    for dir in [home.path().join(".loupe"), home.path().join(".loupe/demo")] {
        assert_eq!(mode(&dir) & 0o007, 0, "{} is open to others", dir.display());
    }
    assert!(
        !pg.data_dir().starts_with(home.path()),
        "{}",
        pg.data_dir().display()
    );
    let location = std::fs::read_to_string(root.join("LOCATION")).unwrap();
    let relocated = pg.data_dir().parent().unwrap().to_path_buf();
    assert_eq!(location.trim(), relocated.display().to_string());
    assert_eq!(mode(&relocated), 0o700);
    assert_eq!(mode(relocated.parent().unwrap()), 0o700);
    assert_eq!(mode(pg.data_dir()), 0o700);
    assert_eq!(
        std::fs::metadata(&relocated).unwrap().uid(),
        uid_of("postgres")
    );

    ensure_probe_user();
    let (ok, text) = psql_as(Some(PROBE_USER), &pg);
    assert!(!ok, "{PROBE_USER} must not connect: {text}");

    pg.stop();
    drop(pg);
    std::fs::remove_dir_all(&relocated).unwrap();
}
