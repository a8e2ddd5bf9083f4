//! `loupe user add NAME --role viewer|editor|admin`, `loupe user token
//! NAME`, `loupe user tokens NAME`, `loupe user revoke-token NAME
//! --token-name T` and `loupe user remove NAME`: the console's local users,
//! straight in its database (how the first admin is made, before anyone can
//! log in). Removing a user or revoking a token takes effect at the next
//! request of any session or script that used it. Passwords come from a
//! file, stdin, or a prompt without echo, and are never printed unless
//! generated here; a token is printed once.

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use loupe_server::auth::{Role, Users};

use super::{config, runtime};

#[derive(clap::Subcommand, Debug)]
pub enum Command {
    /// Add a console user.
    Add(AddArgs),
    /// Print a new API token for a user (`Authorization: Bearer TOKEN`,
    /// `loupe --token`); shown once.
    Token(TokenArgs),
    /// List the console's users and their roles.
    List(ListArgs),
    /// List a user's API tokens: names, when made, when last used.
    Tokens(UserArgs),
    /// Revoke a user's API tokens of one name.
    RevokeToken(TokenArgs),
    /// Remove a user, with their sessions and API tokens.
    Remove(UserArgs),
}

#[derive(clap::Args, Debug)]
pub struct UserArgs {
    pub name: String,
    #[command(flatten)]
    pub db: config::DatabaseArgs,
}

#[derive(clap::Args, Debug)]
pub struct AddArgs {
    pub name: String,
    #[arg(long, value_parser = parse_role)]
    pub role: Role,
    /// Read the password from the first line of this file.
    #[arg(long, conflicts_with = "generate_password")]
    pub password_file: Option<PathBuf>,
    /// Make a random password and print it once.
    #[arg(long)]
    pub generate_password: bool,
    #[command(flatten)]
    pub db: config::DatabaseArgs,
}

#[derive(clap::Args, Debug)]
pub struct TokenArgs {
    pub name: String,
    /// What the token is for (shown in listings; default `cli`).
    #[arg(long = "token-name", default_value = "cli")]
    pub token_name: String,
    #[command(flatten)]
    pub db: config::DatabaseArgs,
}

#[derive(clap::Args, Debug)]
pub struct ListArgs {
    #[command(flatten)]
    pub db: config::DatabaseArgs,
}

fn parse_role(s: &str) -> Result<Role, String> {
    s.parse()
}

pub fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Add(args) => add(args),
        Command::Token(args) => token(args),
        Command::List(args) => list(args),
        Command::Tokens(args) => tokens(args),
        Command::RevokeToken(args) => revoke_token(args),
        Command::Remove(args) => remove(args),
    }
}

/// Runs `f` on the console's users in the database `db` names.
fn with_users<T, F, Fut>(db: &config::DatabaseArgs, f: F) -> anyhow::Result<T>
where
    F: FnOnce(Users) -> Fut,
    Fut: std::future::Future<Output = Result<T, loupe_server::auth::UserError>>,
{
    let url = config::database_url(db.database_url.as_deref())?;
    runtime::block_on(async move {
        let pool = loupe_db::connect(&url, 1).await?;
        anyhow::Ok(f(Users::new(pool)).await?)
    })?
}

fn tokens(args: UserArgs) -> anyhow::Result<ExitCode> {
    let name = args.name.clone();
    let tokens = with_users(&args.db, |users| async move { users.tokens(&name).await })?;
    let width = tokens
        .iter()
        .map(|t| t.name.len())
        .max()
        .unwrap_or(4)
        .max(4);
    println!("{:<width$}   CREATED                LAST USED", "NAME");
    for t in tokens {
        let last = t.last_used_at.map_or("never".to_string(), |t| {
            t.format("%Y-%m-%d %H:%M:%S").to_string()
        });
        println!(
            "{:<width$}   {}    {last}",
            t.name,
            t.created_at.format("%Y-%m-%d %H:%M:%S")
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn revoke_token(args: TokenArgs) -> anyhow::Result<ExitCode> {
    let (user, token_name) = (args.name.clone(), args.token_name.clone());
    let n = with_users(&args.db, |users| async move {
        users.revoke_tokens(&user, &token_name).await
    })?;
    if n == 0 {
        eprintln!(
            "console user {} has no API token named {:?} (see `loupe user tokens {}`)",
            args.name, args.token_name, args.name
        );
        return Ok(ExitCode::FAILURE);
    }
    eprintln!(
        "revoked {n} API token(s) named {:?} of console user {}",
        args.token_name, args.name
    );
    Ok(ExitCode::SUCCESS)
}

fn remove(args: UserArgs) -> anyhow::Result<ExitCode> {
    let name = args.name.clone();
    if !with_users(&args.db, |users| async move { users.remove(&name).await })? {
        eprintln!("there is no console user named {:?}", args.name);
        return Ok(ExitCode::FAILURE);
    }
    eprintln!(
        "console user {} removed; their sessions and API tokens no longer work",
        args.name
    );
    Ok(ExitCode::SUCCESS)
}

fn add(args: AddArgs) -> anyhow::Result<ExitCode> {
    let url = config::database_url(args.db.database_url.as_deref())?;
    let generated = args
        .generate_password
        .then(loupe_server::auth::secret::random_password);
    let password = match (&generated, &args.password_file) {
        (Some(p), _) => p.clone(),
        (None, Some(file)) => first_line(
            &std::fs::read_to_string(file)
                .with_context(|| format!("cannot read {}", file.display()))?,
        ),
        (None, None) => read_password(&args.name)?,
    };
    let user = runtime::block_on(async move {
        let pool = loupe_db::connect(&url, 1).await?;
        anyhow::Ok(
            Users::new(pool)
                .add(&args.name, args.role, &password)
                .await?,
        )
    })??;
    eprintln!("console user {} added ({})", user.name, user.role);
    if let Some(p) = generated {
        eprintln!("its password (shown once):");
        println!("{p}");
    }
    Ok(ExitCode::SUCCESS)
}

fn token(args: TokenArgs) -> anyhow::Result<ExitCode> {
    let url = config::database_url(args.db.database_url.as_deref())?;
    let (user, token_name) = (args.name.clone(), args.token_name);
    let token = runtime::block_on(async move {
        let pool = loupe_db::connect(&url, 1).await?;
        anyhow::Ok(Users::new(pool).issue_token(&user, &token_name).await?)
    })??;
    eprintln!(
        "API token for console user {} (shown once; send it as `Authorization: Bearer TOKEN` or `loupe --token`):",
        args.name
    );
    println!("{token}");
    Ok(ExitCode::SUCCESS)
}

fn list(args: ListArgs) -> anyhow::Result<ExitCode> {
    let url = config::database_url(args.db.database_url.as_deref())?;
    let users = runtime::block_on(async move {
        let pool = loupe_db::connect(&url, 1).await?;
        anyhow::Ok(Users::new(pool).list().await?)
    })??;
    let width = users.iter().map(|u| u.name.len()).max().unwrap_or(4).max(4);
    println!("{:<width$}   ROLE", "NAME");
    for u in users {
        println!("{:<width$}   {}", u.name, u.role);
    }
    Ok(ExitCode::SUCCESS)
}

fn first_line(text: &str) -> String {
    text.lines().next().unwrap_or_default().to_string()
}

/// From a prompt without echo (twice) on a terminal, else one line of stdin.
fn read_password(user: &str) -> anyhow::Result<String> {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        let mut line = String::new();
        stdin
            .lock()
            .read_line(&mut line)
            .context("reading the password from stdin")?;
        return Ok(first_line(&line));
    }
    let ask = |prompt: &str| -> anyhow::Result<String> {
        eprint!("{prompt}");
        std::io::stderr().flush()?;
        let echo_off = stty("-echo");
        let mut line = String::new();
        let read = stdin.lock().read_line(&mut line);
        if echo_off {
            stty("echo");
        }
        eprintln!();
        read.context("reading the password")?;
        Ok(first_line(&line))
    };
    let password = ask(&format!("password for {user}: "))?;
    anyhow::ensure!(
        ask("again: ")? == password,
        "the passwords differ; nothing was changed"
    );
    Ok(password)
}

/// Sets a terminal mode of stdin's tty; whether it worked.
fn stty(mode: &str) -> bool {
    std::process::Command::new("stty")
        .arg(mode)
        .stdin(std::process::Stdio::inherit())
        .status()
        .is_ok_and(|s| s.success())
}
