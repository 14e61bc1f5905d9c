//! `sovamed emulate`: runs the MIS, CMS and SMS emulators until Ctrl-C or SIGTERM, and prints
//! the settings that point a server at them.

use std::net::SocketAddr;

use clap::Args;

use crate::emulator::{self, EmulatorConfig};

#[derive(Args)]
pub struct EmulateArgs {
    /// Listen address of the MIS (Infoclinica XML) emulator.
    #[arg(long, default_value = "127.0.0.1:8081")]
    pub mis_bind: SocketAddr,
    /// Listen address of the CMS (Bitrix content JSON) emulator.
    #[arg(long, default_value = "127.0.0.1:8082")]
    pub cms_bind: SocketAddr,
    /// Listen address of the SMS gateway emulator.
    #[arg(long, default_value = "127.0.0.1:8083")]
    pub sms_bind: SocketAddr,
    /// Seed of the generated clinic network: the same seed gives the same data.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Size multiplier of the data (doctors, prices, reviews).
    #[arg(long, default_value_t = 1)]
    pub scale: u32,
    /// Bearer token the CMS emulator accepts.
    #[arg(long, default_value = "demo-cms-token")]
    pub cms_token: String,
    /// The `api_id` the SMS.ru emulator accepts.
    #[arg(long, default_value = emulator::DEFAULT_SMS_API_ID)]
    pub sms_api_id: String,
}

pub async fn run(args: EmulateArgs) -> anyhow::Result<()> {
    let running = emulator::spawn(EmulatorConfig {
        seed: args.seed,
        scale: args.scale,
        mis_bind: args.mis_bind,
        cms_bind: args.cms_bind,
        sms_bind: Some(args.sms_bind),
        cms_token: args.cms_token,
    })
    .await?;
    running.control.set_sms_api_id(&args.sms_api_id);
    let (doctors, rows) = running
        .control
        .with_world(|w| (w.doctors.len(), w.doctor_rows().len()));
    println!(
        "MIS emulator: {} ({doctors} doctors, {rows} rows)",
        running.mis_url
    );
    println!("CMS emulator: {}", running.cms_url);
    if let Some(sms) = &running.sms_url {
        println!("SMS emulator: {sms}");
    }
    println!();
    println!("Point a server at them with:");
    println!("INFOCLINICA_URL={}", running.mis_url);
    println!("BITRIX_URL={}", running.cms_url);
    println!("BITRIX_TOKEN={}", running.cms_token);
    if let Some(sms) = &running.sms_url {
        println!("SMS_PROVIDER=smsru");
        println!("SMSRU_URL={sms}");
        println!("SMSRU_API_ID={}", args.sms_api_id);
    }
    crate::server::shutdown_signal().await;
    Ok(())
}
