//! The demo console's admin: a user `admin` with a random password and an
//! API token, both written only to the 0600 `demo.json`, never printed.

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
