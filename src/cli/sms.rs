//! `sovamed sms held|mark-sent|resend|drop`: settling messages held as `unknown` (the send
//! went out but no answer came, or a worker died while sending). SMS.ru cannot be asked about
//! such a message, so a person checks the SMS.ru cabinet and decides; see the SMS runbook in
//! `docs/operations.md`. Each decision moves the message only if it is still `unknown`, and
//! is audited.

use clap::Subcommand;

use crate::{
    config::Config,
    db::{self, models::outbox},
    domain::audit::{self, Actor},
    integrations::sms::mask_phone,
};

#[derive(Subcommand)]
pub enum SmsCommand {
    /// List the messages held as `unknown` (phones masked, no texts).
    Held,
    /// The gateway has it (found in the SMS.ru cabinet): mark it sent.
    MarkSent {
        /// The outbox id (`sovamed sms held`).
        id: i64,
        /// Its SMS.ru `sms_id`, when the cabinet shows it: its delivery is then followed.
        #[arg(long)]
        sms_id: Option<String>,
    },
    /// The gateway does not have it: send it (once) now.
    Resend { id: i64 },
    /// Do not send it at all (a visit that has passed): mark it failed.
    Drop { id: i64 },
}

pub async fn run(config: Config, command: SmsCommand) -> anyhow::Result<()> {
    print!("{}", execute(config, command).await?);
    Ok(())
}

/// Carries the command out; what it has to say, one line per item.
pub async fn execute(config: Config, command: SmsCommand) -> anyhow::Result<String> {
    crate::server::prepare_database(&config).await?;
    let pool = db::build_pool(&config.database_url, 1)?;
    let mut conn = pool.get().await?;
    let (id, moved, action) = match command {
        SmsCommand::Held => {
            let held = outbox::list_held(&mut conn).await?;
            if held.is_empty() {
                return Ok("no message is held\n".to_owned());
            }
            let mut out = String::new();
            for m in held {
                out.push_str(&format!(
                    "{}\trecord {}\t{}\t{}\tattempts {}\tsince {}\t{}\n",
                    m.id,
                    m.record_id
                        .map_or_else(|| "-".to_owned(), |r| r.to_string()),
                    m.kind,
                    mask_phone(&m.phone),
                    m.attempts,
                    m.updated_at.format("%Y-%m-%d %H:%M:%S UTC"),
                    m.last_error.as_deref().unwrap_or_default(),
                ));
            }
            return Ok(out);
        }
        SmsCommand::MarkSent { id, sms_id } => {
            let sms_id = sms_id.filter(|s| !s.trim().is_empty());
            let moved = outbox::settle_held_as_sent(&mut conn, id, sms_id.as_deref()).await?;
            (id, moved, "sms_marked_sent")
        }
        SmsCommand::Resend { id } => (
            id,
            outbox::requeue_unknown(&mut conn, id).await?,
            "sms_resent",
        ),
        SmsCommand::Drop { id } => (
            id,
            outbox::fail_unknown(&mut conn, id, "dropped by the operator").await?,
            "sms_dropped",
        ),
    };
    // The pool has one connection, and the audit append takes it.
    drop(conn);
    if !moved {
        anyhow::bail!("message {id} is not held as unknown (see `sovamed sms held`)");
    }
    audit::append(&pool, Actor::command_line(), action, &id.to_string()).await;
    Ok(format!("message {id}: done\n"))
}
