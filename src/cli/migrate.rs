//! `sovamed migrate`: create the database if missing and apply pending migrations.

use crate::{config::Config, db};

pub async fn run(config: Config) -> anyhow::Result<()> {
    crate::telemetry::init(config.is_production());
    db::create_database_if_missing(&config.database_url).await?;
    let applied = db::run_migrations(&config.database_url).await?;
    if applied.is_empty() {
        println!("migrations: nothing to apply");
    } else {
        for version in applied {
            println!("migrations: applied {version}");
        }
    }
    Ok(())
}
