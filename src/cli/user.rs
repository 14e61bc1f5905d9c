//! `sovamed user create|set-password|disable|reset-mfa`: account management for operators.

use std::io::BufRead;

use clap::Subcommand;

use crate::{
    auth::password::Passwords,
    config::Config,
    db::{self, models::user::User},
    domain::{
        accounts::{self, AccountError, NewAccount, NewPassword, Origin},
        audit::Actor,
        values::{Email, FullName, Invalid, Phone, Role},
    },
};

#[derive(Subcommand)]
pub enum UserCommand {
    /// Create an account.
    Create {
        #[arg(long)]
        email: String,
        #[arg(long)]
        full_name: String,
        /// patient, staff or admin.
        #[arg(long, value_parser = parse_role)]
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
    /// Remove the second factor of an account whose owner lost the authenticator and the
    /// recovery codes: its sessions and tokens end, and the next login enrols afresh.
    ResetMfa {
        #[arg(long)]
        email: String,
    },
}

fn read_password() -> anyhow::Result<NewPassword> {
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    let password = line.strip_suffix('\n').unwrap_or(&line);
    let password = password.strip_suffix('\r').unwrap_or(password);
    NewPassword::parse(password).map_err(|reason| anyhow::anyhow!("password refused: {reason}"))
}

fn parse_role(raw: &str) -> Result<Role, String> {
    raw.parse()
        .map_err(|_| "one of: patient, staff, admin".to_owned())
}

/// A value from the command line, through the same constructor as forms and JSON.
fn value<T>(option: &str, parsed: Result<T, Invalid>) -> anyhow::Result<T> {
    parsed.map_err(|invalid| anyhow::anyhow!("{option}: {invalid}"))
}

pub async fn run(config: Config, command: UserCommand) -> anyhow::Result<()> {
    crate::server::prepare_database(&config).await?;
    let pool = db::build_pool(&config.database_url, 1)?;
    match command {
        UserCommand::Create {
            email,
            full_name,
            role,
            phone,
            password_stdin: _,
        } => {
            let account = NewAccount {
                email: value("--email", Email::parse(&email))?,
                full_name: value("--full-name", FullName::parse(&full_name))?,
                phone: phone
                    .map(|raw| value("--phone", Phone::parse(&raw)))
                    .transpose()?,
                birth_date: None,
                role,
                password: read_password()?,
            };
            let passwords = Passwords::new().await?;
            let created = accounts::create(&pool, &passwords, account, Origin::CommandLine)
                .await
                .map_err(|e| match e {
                    AccountError::EmailTaken => {
                        anyhow::anyhow!("an account with {email} already exists")
                    }
                    other => other.into(),
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
            let account = find(&pool, &email).await?;
            let passwords = Passwords::new().await?;
            accounts::set_password(
                &pool,
                &passwords,
                &account,
                read_password()?,
                Actor::command_line(),
            )
            .await?;
            println!(
                "password changed for {}; its sessions and tokens have ended",
                account.email
            );
        }
        UserCommand::ResetMfa { email } => {
            let account = find(&pool, &email).await?;
            crate::domain::mfa::reset(&pool, &account, Actor::command_line()).await?;
            println!(
                "second factor removed for {}; its sessions and tokens have ended, and the next login sets up a new one",
                account.email
            );
        }
        UserCommand::Disable { email } => {
            let account = find(&pool, &email).await?;
            accounts::set_disabled(&pool, &account, true, Actor::command_line()).await?;
            println!(
                "disabled {}; its sessions and tokens have ended",
                account.email
            );
        }
    }
    Ok(())
}

async fn find(pool: &db::DbPool, email: &str) -> anyhow::Result<User> {
    let parsed = value("--email", Email::parse(email))?;
    accounts::find_by_email(pool, &parsed)
        .await
        .map_err(|e| match e {
            AccountError::NotFound => anyhow::anyhow!("no account with {email}"),
            other => other.into(),
        })
}
