//! `sovamed user create|set-password|disable`: account management for operators.

use std::io::BufRead;

use clap::Subcommand;

use crate::{
    auth::password,
    config::Config,
    db::{
        self,
        models::user::{self, NewUser, Role},
    },
    web::auth::normalize_phone,
};

#[derive(Subcommand)]
pub enum UserCommand {
    /// Create an account.
    Create {
        #[arg(long)]
        email: String,
        #[arg(long)]
        full_name: String,
        #[arg(long, value_enum)]
        role: Role,
        /// Phone number (any common format; stored as E.164).
        #[arg(long)]
        phone: Option<String>,
        /// Read the password from the first line of standard input.
        #[arg(long, required = true)]
        password_stdin: bool,
    },
    /// Set a new password; every session and token of the account ends.
    SetPassword {
        #[arg(long)]
        email: String,
        #[arg(long, required = true)]
        password_stdin: bool,
    },
    /// Disable an account; every session and token of it ends.
    Disable {
        #[arg(long)]
        email: String,
    },
}

fn read_password() -> anyhow::Result<String> {
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    let password = line.strip_suffix('\n').unwrap_or(&line);
    let password = password.strip_suffix('\r').unwrap_or(password).to_owned();
    password::check_new(&password)
        .map_err(|reason| anyhow::anyhow!("password refused: {reason}"))?;
    Ok(password)
}

pub async fn run(config: Config, command: UserCommand) -> anyhow::Result<()> {
    crate::server::prepare_database(&config).await?;
    let pool = db::build_pool(&config.database_url, 1)?;
    let mut conn = pool.get().await?;
    match command {
        UserCommand::Create {
            email,
            full_name,
            role,
            phone,
            password_stdin: _,
        } => {
            let email = user::normalize_email(&email);
            if !email_address::EmailAddress::is_valid(&email) {
                anyhow::bail!("not a valid e-mail address: {email}");
            }
            let phone = match phone {
                Some(raw) => Some(
                    normalize_phone(&raw)
                        .ok_or_else(|| anyhow::anyhow!("not a valid phone number: {raw}"))?,
                ),
                None => None,
            };
            let full_name = full_name.trim();
            if full_name.is_empty() {
                anyhow::bail!("--full-name is empty");
            }
            let hash = password::hash(read_password()?).await?;
            let new_user = NewUser {
                email: &email,
                password_hash: &hash,
                full_name,
                phone: phone.as_deref(),
                birth_date: None,
                role: role.as_str(),
            };
            let created = user::insert(&mut conn, &new_user).await.map_err(|e| {
                if user::is_duplicate_email(&e) {
                    anyhow::anyhow!("an account with {email} already exists")
                } else {
                    e.into()
                }
            })?;
            println!(
                "created {} account {} (id {})",
                role.as_str(),
                created.email,
                created.id
            );
        }
        UserCommand::SetPassword {
            email,
            password_stdin: _,
        } => {
            let account = user::find_by_email(&mut conn, &email)
                .await?
                .ok_or_else(|| anyhow::anyhow!("no account with {email}"))?;
            let hash = password::hash(read_password()?).await?;
            user::set_password_hash(&mut conn, account.id, &hash).await?;
            println!(
                "password changed for {}; its sessions and tokens have ended",
                account.email
            );
        }
        UserCommand::Disable { email } => {
            let account = user::find_by_email(&mut conn, &email)
                .await?
                .ok_or_else(|| anyhow::anyhow!("no account with {email}"))?;
            user::set_disabled(&mut conn, account.id, true).await?;
            println!(
                "disabled {}; its sessions and tokens have ended",
                account.email
            );
        }
    }
    Ok(())
}
