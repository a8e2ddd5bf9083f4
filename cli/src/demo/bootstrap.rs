//! What the demo writes straight into its database, before the console
//! (the door everything else goes through) is up: its mesh config, and the
//! console's admin — a user `admin` with a random password and an API
//! token, both written only to the 0600 `demo.json`, never printed.

use anyhow::Context;
use loupe_server::auth::{Role, Users, secret::random_password};

use super::state::ConsoleLogin;

pub const ADMIN: &str = "admin";

/// Makes (or resets) the admin and issues it a token for the CLI.
pub async fn create_admin(database_url: &str) -> anyhow::Result<(ConsoleLogin, String)> {
    let users = Users::new(loupe_db::connect(database_url, 1).await?);
    let password = random_password();
    users.add_or_reset(ADMIN, Role::Admin, &password).await?;
    let token = users.issue_token(ADMIN, "loupe-demo").await?;
    Ok((
        ConsoleLogin {
            user: ADMIN.to_string(),
            password,
        },
        token,
    ))
}

/// Who the demo's own config changes are recorded under.
pub const AUTHOR: &str = "loupe-demo";

/// Applies `yaml` (named `source`) through the control plane's store, as
/// `loupe apply` would; refused config is an error naming its diagnostics.
pub async fn apply_config(database_url: &str, source: &str, yaml: &str) -> anyhow::Result<()> {
    let store = loupe_control::ConfigStore::new(loupe_db::connect(database_url, 1).await?);
    store
        .apply(source, yaml, AUTHOR)
        .await
        .with_context(|| format!("applying {source}"))?;
    Ok(())
}
