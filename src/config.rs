//! Typed configuration, read once at start-up from the environment, `.env.local` and `.env`.
//!
//! Precedence: the real environment wins over `.env.local`, which wins over `.env`. Every
//! variable is documented where it is read below, and listed with its default in `.env` and
//! in `docs/configuration.md`. A bad value fails start-up with a message naming the variable.

use std::{collections::BTreeMap, net::SocketAddr, path::PathBuf, time::Duration};

use ipnet::IpNet;
use rand::RngCore;

/// The clinic's phone unless `CLINIC_PHONE` says otherwise.
pub use crate::domain::booking::notify::DEFAULT_CLINIC_PHONE;

/// `development` (the default) or `production`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppEnv {
    Development,
    Production,
}

/// Everything the process reads from its environment.
#[derive(Debug, Clone)]
pub struct Config {
    /// `APP_ENV`: `production` refuses to start without a real `JWT_SECRET`, sets `Secure`
    /// cookies with the `__Host-` prefix, logs JSON and never seeds demo data.
    pub app_env: AppEnv,
    /// `BIND_ADDR` (default `127.0.0.1:8080`); `serve --bind` wins.
    pub bind_addr: SocketAddr,
    /// `PUBLIC_BASE_URL`: absolute base for links sent out of band; never taken from `Host`.
    pub public_base_url: String,
    /// `CLINIC_PHONE` (default `+7 (495) 120-34-50`): the clinic's one number for patients,
    /// as it is shown (the home page, SMS texts); the branches' own numbers come from the MIS.
    pub clinic_phone: String,
    /// `DATABASE_URL`: PostgreSQL; the database is created when missing.
    pub database_url: String,
    /// `DATABASE_POOL_SIZE` (default 16): connections kept by the pool.
    pub database_pool_size: usize,
    /// `REDIS_URL`: sessions, rate-limit counters and caches.
    pub redis_url: String,
    /// `REDIS_PREFIX` (default `sovamed:`): put before every Redis key the application writes
    /// itself; session keys are bare session ids (tower-sessions-redis-store).
    pub redis_prefix: String,
    /// `JWT_SECRET`: HS256 key, at least 32 bytes. Generated per run in development.
    pub jwt_secret: Vec<u8>,
    /// True when `JWT_SECRET` was not set and a random one was generated for this run.
    pub jwt_secret_generated: bool,
    /// `JWT_TTL_SECONDS` (default 900): access-token lifetime. Short, because a JWT cannot
    /// be recalled except through the user's `session_version`.
    pub jwt_ttl: Duration,
    /// `SESSION_IDLE_MINUTES` (default 30): a cabinet session unused this long ends.
    pub session_idle: Duration,
    /// `SESSION_ABSOLUTE_HOURS` (default 8): a cabinet session ends this long after login,
    /// however active (one working day at the front desk).
    pub session_absolute: Duration,
    /// `TRUSTED_PROXIES`: comma-separated addresses or CIDR blocks (nginx) whose
    /// `X-Forwarded-For` is believed. Empty: the peer address is the client.
    pub trusted_proxies: Vec<IpNet>,
    /// `CORS_ALLOWED_ORIGINS`: comma-separated origins (`https://clinic.example`) whose pages
    /// may call `/api/v1` from the browser. Empty (the default): no CORS headers at all.
    /// Pages stay same-origin only.
    pub cors_allowed_origins: Vec<String>,
    /// `LOGIN_LIMIT_PER_ACCOUNT` (default 5): login attempts per account in a window before 429.
    pub login_limit_per_account: u32,
    /// `LOGIN_LIMIT_PER_IP` (default 30): login attempts per client address in a window,
    /// whatever the account (credential stuffing).
    pub login_limit_per_ip: u32,
    /// `LOGIN_LIMIT_WINDOW_MINUTES` (default 15): the counting window, and so the longest a
    /// lock lasts; it is never permanent.
    pub login_limit_window: Duration,
    /// `INFOCLINICA_URL`: the MIS endpoint (`https://api.infoclinica.ru/api/xml`). Unset outside
    /// demo mode: syncs from the MIS fail naming this variable. `serve --demo` points it at
    /// the in-process emulator.
    pub infoclinica_url: Option<String>,
    /// `INFOCLINICA_HOST`: the clinic's `X-Forwarded-Host` at the cloud gateway.
    pub infoclinica_host: Option<String>,
    /// `INFOCLINICA_CLIENT_CERT`, `INFOCLINICA_CLIENT_KEY`: PEM files for mutual TLS.
    pub infoclinica_client_cert: Option<PathBuf>,
    pub infoclinica_client_key: Option<PathBuf>,
    /// `INFOCLINICA_CA`: a PEM file of extra trusted roots for the MIS (private CA).
    pub infoclinica_ca: Option<PathBuf>,
    /// `INFOCLINICA_TIMEOUT_SECONDS` (default 10): total time one MIS call may take.
    pub infoclinica_timeout: Duration,
    /// `BITRIX_URL`: base of the CMS content endpoint (`https://clinic.example`); the client
    /// calls `{BITRIX_URL}/api/v1/content/{kind}`.
    pub bitrix_url: Option<String>,
    /// `BITRIX_TOKEN`: the shared bearer secret of the content endpoint.
    pub bitrix_token: Option<String>,
    /// `SYNC_INTERVAL_MINUTES` (default 15): periodic directory sync inside `serve`; 0 = off.
    pub sync_interval: Option<Duration>,
    /// `SYNC_MAX_DEACTIVATION_PERCENT` (default 20, 0 to 100): a sync kind that would
    /// deactivate more than this share of its active rows (`N × 100 > limit × M`, no
    /// exemption for small tables: 1 of 3 branches is 33 %) is refused and rolled back, unless
    /// `sovamed sync … --allow-mass-deactivation` is given; the periodic sync never gives it.
    /// `100` turns the guard off.
    pub sync_max_deactivation_percent: u8,
    /// `BRANCH_TIMEZONES`: overrides of the zone derived from the MIS's UTC offset, as
    /// `MIS_ID=IANA zone` pairs separated by commas (`2=Asia/Yekaterinburg`).
    pub branch_timezones: BTreeMap<i64, chrono_tz::Tz>,
    /// `SMS_PROVIDER`: `smsru` (SMS.ru) or `log` (messages only go to the log, their texts
    /// only outside production). Default `log` in development; required in production;
    /// `serve --demo` uses the in-process SMS.ru emulator.
    pub sms_provider: SmsProvider,
    /// `SMSRU_URL` (default `https://sms.ru`): the client posts to `{SMSRU_URL}/sms/send`.
    pub smsru_url: String,
    /// `SMSRU_API_ID`: the SMS.ru key. Required when `SMS_PROVIDER=smsru`.
    pub smsru_api_id: Option<String>,
    /// `SMS_SENDER`: the approved sender name; unset uses the account's default.
    pub sms_sender: Option<String>,
    /// `SMSRU_TIMEOUT_SECONDS` (default 10): total time one SMS.ru call may take. A send
    /// that gets no answer in this time is not sent again: its outcome is unknown and it is
    /// held for a person (see the SMS runbook).
    pub smsru_timeout: Duration,
    /// `SMS_STATUS_POLL_SECONDS` (default 60): how often the delivery status of a sent SMS
    /// is asked (SMS.ru `sms/status`) until it is final; 0 = never ask.
    pub sms_status_poll: Option<Duration>,
    /// `REMINDER_HOURS_BEFORE` (default 24, 0 to 720; 0 turns reminders off): a booked visit
    /// gets one reminder SMS this long before it starts, unless it was booked (or moved to
    /// its time) less than this long ahead.
    pub reminder_hours_before: u32,
    /// `REMINDER_INTERVAL_SECONDS` (default 60, at least 1): how often `serve` looks for
    /// visits due a reminder. Every replica looks; the database lets one queue each.
    pub reminder_interval: Duration,
    /// `SCHEDULE_CACHE_TTL_SECONDS` (default 60): how long a day of a doctor's grid is served
    /// from Redis before the MIS is asked again.
    pub schedule_cache_ttl: std::time::Duration,
    /// `SCHEDULE_MEMORY_CACHE_MB` (default 64, 0 to 65536; 0 turns it off): the in-process
    /// level of the schedule cache in front of Redis, in MiB of days ready to serve. Each day
    /// stays there at most as long as its Redis copy had left.
    pub schedule_memory_cache_bytes: u64,
    /// `DIRECTORY_RELOAD_SECONDS` (default 300, 1 to 86400): how often each `serve` process
    /// rebuilds its in-memory directory (doctors, branches, who works where) even when no
    /// "directory changed" message came; the backstop of the pub/sub message.
    pub directory_reload: Duration,
    /// `RESERVE_LIMIT_PER_IP_HOUR` (default 20): anonymous bookings per client address per hour.
    pub reserve_limit_per_ip_hour: u32,
    /// `RESERVE_LIMIT_PER_PHONE_HOUR` (default 3): anonymous bookings per phone number per
    /// hour; also caps what an attacker can spend on SMS.
    pub reserve_limit_per_phone_hour: u32,
    /// `SMS_RETRY_BASE_SECONDS` (default 5): the first retry delay of an SMS; it doubles per
    /// attempt, up to an hour.
    pub sms_retry_base: Duration,
    /// `SCHEDULE_PREFETCH_DAYS` (default 14): days `sync schedules` (and `sync all`, and the
    /// periodic sync) fetch ahead for every doctor.
    pub schedule_prefetch_days: u32,
    /// `SCHEDULE_HORIZON_DAYS` (default 90): schedule reads may ask for days from yesterday
    /// to today plus this; further days are a 422 and never reach the MIS.
    pub schedule_horizon_days: u32,
    /// `SCHEDULE_UNCACHED_READS_PER_IP_MINUTE` (default 30): public schedule reads that miss
    /// the cache (each an MIS call) per client address a minute; 429 past it.
    pub schedule_uncached_reads_per_ip_minute: u32,
    /// `METRICS_TOKEN`: when set, `GET /metrics` needs `Authorization: Bearer <token>`; in
    /// production it must be set (or `/metrics` is not served at all).
    pub metrics_token: Option<String>,
    /// `INFOCLINICA_READ_BUDGET_SECONDS` (default 8): the longest a schedule reader waits for
    /// the MIS, retries included, before the stored copy is served (`source: stale`); well
    /// under `REQUEST_TIMEOUT_SECONDS`.
    pub infoclinica_read_budget: Duration,
    /// `REQUEST_TIMEOUT_SECONDS` (default 30): the longest a request may run before it is
    /// answered 503 `timeout` (a booking it started still runs to its end).
    pub request_timeout: Duration,
    /// `RECONCILE_INTERVAL_SECONDS` (default 10; 0 turns it off): how often `serve` looks for
    /// booking intents left pending (a crash, an MIS answer that never came) and settles them
    /// by asking the MIS. One replica at a time (an advisory lock).
    pub reconcile_interval: Duration,
    /// `CHANGE_FEED_INTERVAL_SECONDS` (default 30; 0 turns it off): how often `serve` reads
    /// the MIS's change feed (`SCHEDULE_CHANGE_LIST`) of every branch and applies what the
    /// clinic's front desk did: cancels, moves, attended marks. Only with `INFOCLINICA_URL`.
    pub change_feed_interval: Duration,
    /// `INTENT_STALE_SECONDS` (default 120): how long an intent may stay pending before the
    /// reconciler takes it over. Longer than one booking can take (three MIS calls of
    /// `INFOCLINICA_TIMEOUT_SECONDS` and a local write), so it never races a live request.
    pub intent_stale_after: Duration,
    /// `BENCH_ROUTES` (default false; `1`/`true` or `0`/`false`): mount `GET /__bench/hello`
    /// (answers `ok` through the full middleware stack), the HTTP-floor baseline of
    /// `just bench`. Refused when `APP_ENV=production`.
    pub bench_routes: bool,
    /// `ANONYMOUS_BOOKING_VERIFY`: `sms` (default) makes a booking without an account prove
    /// the phone by a code; `off` only for clinics whose call centre confirms every booking.
    pub anonymous_booking_verify: bool,
    /// Codes per phone (or account) per hour.
    pub verify_limit_per_phone_hour: u32,
    /// Codes per client address per hour.
    pub verify_limit_per_ip_hour: u32,
    /// SMS of every kind per phone in 24 hours.
    pub sms_limit_per_phone_day: u32,
    /// Registrations per client address per hour.
    pub registration_limit_per_ip_hour: u32,
    /// Upcoming booked visits one account may hold.
    pub max_active_records_per_patient: u32,
    /// Bookings one account may make in 24 hours.
    pub booking_limit_per_patient_day: u32,
    /// How long an API refresh token lives (`REFRESH_TOKEN_TTL_DAYS`).
    pub refresh_token_ttl: Duration,
    /// `MFA_REQUIRED_ROLES` (default `staff,admin`): comma-separated roles that sign in with
    /// a second factor (TOTP or a recovery code) after the password, on the pages and in the
    /// API. Set but empty: no role (unlike most variables, where empty means the default).
    pub mfa_required_roles: Vec<crate::domain::values::Role>,
    /// `ACCOUNT_DELETION_GRACE_DAYS` (default 30, 0 to 30): from a patient's deletion request
    /// to the erasure of their personal data, during which the clinic may restore the
    /// account. At most 30: 152-FZ art. 21 gives the operator 30 days to destroy the data.
    pub account_deletion_grace_days: u32,
    /// `AUDIT_RETENTION_DAYS` (default 1095, three years; 1 to 36500): audit events older
    /// than this are deleted by the daily retention job.
    pub audit_retention_days: u32,
    /// `SMS_TEXT_RETENTION_DAYS` (default 180; 1 to 36500): texts of SMS older than this are
    /// blanked; the rows stay for the delivery statistics.
    pub sms_text_retention_days: u32,
    /// `SCHEDULE_SNAPSHOT_RETENTION_DAYS` (default 14; 0 to 3650): stored grids of days before
    /// today minus this are deleted (a past day's grid is never served).
    pub schedule_snapshot_retention_days: u32,
    /// `IDEMPOTENCY_KEY_RETENTION_HOURS` (default 48; 1 to 8760): stored `Idempotency-Key`
    /// answers older than this are deleted; a retry after that is answered as a new request.
    pub idempotency_key_retention_hours: u32,
    /// Where the booking core reads "now": the system clock, always, outside tests (no
    /// variable sets it); the integration tests fix it to reach a visit's start.
    pub clock: crate::domain::clock::Clock,
}

/// Where SMS go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmsProvider {
    SmsRu,
    Log,
}

/// A configuration variable that is present but unusable.
#[derive(Debug, thiserror::Error)]
#[error("configuration variable {name}: {reason}")]
pub struct ConfigError {
    pub name: &'static str,
    pub reason: String,
}

impl Config {
    /// Loads `.env.local` and `.env` into the environment (never overriding what is set),
    /// then reads the configuration from the environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        // dotenvy never overrides a variable that is already set, so loading `.env.local`
        // first gives the documented precedence.
        let _ = dotenvy::from_filename(".env.local");
        let _ = dotenvy::from_filename(".env");
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the configuration through `lookup`; tests pass their own map.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &str| {
            lookup(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };

        let app_env = match get("APP_ENV").as_deref() {
            None | Some("development") | Some("dev") => AppEnv::Development,
            Some("production") | Some("prod") => AppEnv::Production,
            Some(other) => {
                return Err(ConfigError {
                    name: "APP_ENV",
                    reason: format!("expected development or production, got {other:?}"),
                });
            }
        };

        let (jwt_secret, jwt_secret_generated) = match get("JWT_SECRET") {
            Some(secret) if secret.len() >= 32 && entropy_bits(&secret) >= 128.0 => {
                (secret.into_bytes(), false)
            }
            Some(_) => {
                return Err(ConfigError {
                    name: "JWT_SECRET",
                    reason: "must be at least 32 bytes of random data with at least 128 bits of \
                             entropy (e.g. `openssl rand -hex 32`)"
                        .into(),
                });
            }
            None if app_env == AppEnv::Production => {
                return Err(ConfigError {
                    name: "JWT_SECRET",
                    reason: "is required when APP_ENV=production (at least 32 random bytes)".into(),
                });
            }
            None => {
                let mut secret = vec![0u8; 32];
                rand::rng().fill_bytes(&mut secret);
                (secret, true)
            }
        };

        Ok(Self {
            app_env,
            bind_addr: parse(&get, "BIND_ADDR", "127.0.0.1:8080")?,
            public_base_url: get("PUBLIC_BASE_URL")
                .unwrap_or_else(|| "http://127.0.0.1:8080".into())
                .trim_end_matches('/')
                .to_owned(),
            clinic_phone: get("CLINIC_PHONE").unwrap_or_else(|| DEFAULT_CLINIC_PHONE.into()),
            database_url: get("DATABASE_URL")
                .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/sovamed".into()),
            database_pool_size: parse(&get, "DATABASE_POOL_SIZE", "16")?,
            redis_url: get("REDIS_URL").unwrap_or_else(|| "redis://127.0.0.1:6379".into()),
            redis_prefix: lookup("REDIS_PREFIX").unwrap_or_else(|| "sovamed:".into()),
            jwt_secret,
            jwt_secret_generated,
            jwt_ttl: Duration::from_secs(parse(&get, "JWT_TTL_SECONDS", "900")?),
            session_idle: Duration::from_secs(
                60 * parse::<u64>(&get, "SESSION_IDLE_MINUTES", "30")?,
            ),
            session_absolute: Duration::from_secs(
                3600 * parse::<u64>(&get, "SESSION_ABSOLUTE_HOURS", "8")?,
            ),
            trusted_proxies: parse_proxies(get("TRUSTED_PROXIES").as_deref().unwrap_or(""))?,
            cors_allowed_origins: parse_origins(
                get("CORS_ALLOWED_ORIGINS").as_deref().unwrap_or(""),
            )?,
            login_limit_per_account: parse(&get, "LOGIN_LIMIT_PER_ACCOUNT", "5")?,
            login_limit_per_ip: parse(&get, "LOGIN_LIMIT_PER_IP", "30")?,
            login_limit_window: Duration::from_secs(
                60 * parse::<u64>(&get, "LOGIN_LIMIT_WINDOW_MINUTES", "15")?,
            ),
            infoclinica_url: get("INFOCLINICA_URL"),
            infoclinica_host: get("INFOCLINICA_HOST"),
            infoclinica_client_cert: get("INFOCLINICA_CLIENT_CERT").map(PathBuf::from),
            infoclinica_client_key: get("INFOCLINICA_CLIENT_KEY").map(PathBuf::from),
            infoclinica_ca: get("INFOCLINICA_CA").map(PathBuf::from),
            infoclinica_timeout: Duration::from_secs(parse(
                &get,
                "INFOCLINICA_TIMEOUT_SECONDS",
                "10",
            )?),
            bitrix_url: get("BITRIX_URL").map(|u| u.trim_end_matches('/').to_owned()),
            bitrix_token: get("BITRIX_TOKEN"),
            sync_interval: match parse::<u64>(&get, "SYNC_INTERVAL_MINUTES", "15")? {
                0 => None,
                minutes => Some(Duration::from_secs(60 * minutes)),
            },
            sync_max_deactivation_percent: match parse::<u8>(
                &get,
                "SYNC_MAX_DEACTIVATION_PERCENT",
                "20",
            )? {
                percent @ 0..=100 => percent,
                other => {
                    return Err(ConfigError {
                        name: "SYNC_MAX_DEACTIVATION_PERCENT",
                        reason: format!("{other} is not a percentage (0 to 100)"),
                    });
                }
            },
            branch_timezones: parse_branch_timezones(
                get("BRANCH_TIMEZONES").as_deref().unwrap_or(""),
            )?,
            sms_provider: match get("SMS_PROVIDER").as_deref() {
                // A deployment that forgot the gateway would send no code and no booking
                // SMS while looking healthy.
                None if app_env == AppEnv::Production => {
                    return Err(ConfigError {
                        name: "SMS_PROVIDER",
                        reason: "is required when APP_ENV=production: smsru (with SMSRU_API_ID), \
                                 or log to send no SMS at all"
                            .into(),
                    });
                }
                None | Some("log") => SmsProvider::Log,
                Some("smsru") => SmsProvider::SmsRu,
                Some(other) => {
                    return Err(ConfigError {
                        name: "SMS_PROVIDER",
                        reason: format!("expected smsru or log, got {other:?}"),
                    });
                }
            },
            smsru_url: get("SMSRU_URL")
                .unwrap_or_else(|| "https://sms.ru".into())
                .trim_end_matches('/')
                .to_owned(),
            smsru_api_id: get("SMSRU_API_ID"),
            sms_sender: get("SMS_SENDER"),
            smsru_timeout: match parse::<u64>(&get, "SMSRU_TIMEOUT_SECONDS", "10")? {
                0 => {
                    return Err(ConfigError {
                        name: "SMSRU_TIMEOUT_SECONDS",
                        reason: "must be at least 1".into(),
                    });
                }
                secs => Duration::from_secs(secs),
            },
            sms_status_poll: match parse::<u64>(&get, "SMS_STATUS_POLL_SECONDS", "60")? {
                0 => None,
                secs => Some(Duration::from_secs(secs)),
            },
            reminder_hours_before: parse_within(&get, "REMINDER_HOURS_BEFORE", "24", 0..=720)?,
            reminder_interval: Duration::from_secs(u64::from(parse_within(
                &get,
                "REMINDER_INTERVAL_SECONDS",
                "60",
                1..=86_400,
            )?)),
            schedule_cache_ttl: Duration::from_secs(parse(
                &get,
                "SCHEDULE_CACHE_TTL_SECONDS",
                "60",
            )?),
            schedule_memory_cache_bytes: u64::from(parse_within(
                &get,
                "SCHEDULE_MEMORY_CACHE_MB",
                "64",
                0..=65_536,
            )?) * 1024
                * 1024,
            directory_reload: Duration::from_secs(u64::from(parse_within(
                &get,
                "DIRECTORY_RELOAD_SECONDS",
                "300",
                1..=86_400,
            )?)),
            reserve_limit_per_ip_hour: parse(&get, "RESERVE_LIMIT_PER_IP_HOUR", "20")?,
            reserve_limit_per_phone_hour: parse(&get, "RESERVE_LIMIT_PER_PHONE_HOUR", "3")?,
            sms_retry_base: Duration::from_secs(parse(&get, "SMS_RETRY_BASE_SECONDS", "5")?),
            schedule_prefetch_days: parse(&get, "SCHEDULE_PREFETCH_DAYS", "14")?,
            schedule_horizon_days: parse(&get, "SCHEDULE_HORIZON_DAYS", "90")?,
            schedule_uncached_reads_per_ip_minute: parse(
                &get,
                "SCHEDULE_UNCACHED_READS_PER_IP_MINUTE",
                "30",
            )?,
            metrics_token: get("METRICS_TOKEN").filter(|t| !t.trim().is_empty()),
            request_timeout: Duration::from_secs(parse(&get, "REQUEST_TIMEOUT_SECONDS", "30")?),
            infoclinica_read_budget: Duration::from_secs(parse(
                &get,
                "INFOCLINICA_READ_BUDGET_SECONDS",
                "8",
            )?),
            reconcile_interval: Duration::from_secs(parse(
                &get,
                "RECONCILE_INTERVAL_SECONDS",
                "10",
            )?),
            intent_stale_after: Duration::from_secs(parse(&get, "INTENT_STALE_SECONDS", "120")?),
            change_feed_interval: Duration::from_secs(parse(
                &get,
                "CHANGE_FEED_INTERVAL_SECONDS",
                "30",
            )?),
            anonymous_booking_verify: match get("ANONYMOUS_BOOKING_VERIFY").as_deref() {
                None | Some("sms") => true,
                Some("off") => false,
                Some(other) => {
                    return Err(ConfigError {
                        name: "ANONYMOUS_BOOKING_VERIFY",
                        reason: format!("expected sms or off, got {other:?}"),
                    });
                }
            },
            verify_limit_per_phone_hour: parse(&get, "VERIFY_LIMIT_PER_PHONE_HOUR", "5")?,
            verify_limit_per_ip_hour: parse(&get, "VERIFY_LIMIT_PER_IP_HOUR", "20")?,
            sms_limit_per_phone_day: parse(&get, "SMS_LIMIT_PER_PHONE_DAY", "10")?,
            registration_limit_per_ip_hour: parse(&get, "REGISTRATION_LIMIT_PER_IP_HOUR", "10")?,
            max_active_records_per_patient: parse(&get, "MAX_ACTIVE_RECORDS_PER_PATIENT", "5")?,
            booking_limit_per_patient_day: parse(&get, "BOOKING_LIMIT_PER_PATIENT_DAY", "10")?,
            refresh_token_ttl: Duration::from_secs(
                24 * 3600 * parse::<u64>(&get, "REFRESH_TOKEN_TTL_DAYS", "30")?,
            ),
            // `lookup`, not `get`: an empty value is "no role", not the default.
            mfa_required_roles: parse_roles(
                lookup("MFA_REQUIRED_ROLES")
                    .as_deref()
                    .unwrap_or(DEFAULT_MFA_ROLES),
            )?,
            account_deletion_grace_days: parse_within(
                &get,
                "ACCOUNT_DELETION_GRACE_DAYS",
                "30",
                0..=30,
            )?,
            audit_retention_days: parse_within(&get, "AUDIT_RETENTION_DAYS", "1095", 1..=36_500)?,
            sms_text_retention_days: parse_within(
                &get,
                "SMS_TEXT_RETENTION_DAYS",
                "180",
                1..=36_500,
            )?,
            schedule_snapshot_retention_days: parse_within(
                &get,
                "SCHEDULE_SNAPSHOT_RETENTION_DAYS",
                "14",
                0..=3_650,
            )?,
            idempotency_key_retention_hours: parse_within(
                &get,
                "IDEMPOTENCY_KEY_RETENTION_HOURS",
                "48",
                1..=8_760,
            )?,
            clock: crate::domain::clock::Clock::system(),
            bench_routes: match parse_bool(&get, "BENCH_ROUTES")? {
                true if app_env == AppEnv::Production => {
                    return Err(ConfigError {
                        name: "BENCH_ROUTES",
                        reason: "bench-only routes are refused when APP_ENV=production".into(),
                    });
                }
                on => on,
            },
        })
    }

    pub fn is_production(&self) -> bool {
        self.app_env == AppEnv::Production
    }

    /// The retention periods, as the daily retention job takes them.
    pub fn retention_policy(&self) -> crate::domain::retention::RetentionPolicy {
        crate::domain::retention::RetentionPolicy {
            deletion_grace_days: self.account_deletion_grace_days,
            audit_days: self.audit_retention_days,
            sms_text_days: self.sms_text_retention_days,
            snapshot_days: self.schedule_snapshot_retention_days,
            idempotency_hours: self.idempotency_key_retention_hours,
        }
    }
}

/// The roles that sign in with a second factor unless `MFA_REQUIRED_ROLES` says otherwise.
const DEFAULT_MFA_ROLES: &str = "staff,admin";

/// Roles by their codes, comma-separated; each once.
fn parse_roles(raw: &str) -> Result<Vec<crate::domain::values::Role>, ConfigError> {
    let mut roles = Vec::new();
    for item in raw.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let role = item
            .parse::<crate::domain::values::Role>()
            .map_err(|_| ConfigError {
                name: "MFA_REQUIRED_ROLES",
                reason: format!("{item:?} is not a role (patient, staff, admin)"),
            })?;
        if !roles.contains(&role) {
            roles.push(role);
        }
    }
    Ok(roles)
}

fn parse<T>(
    get: &impl Fn(&str) -> Option<String>,
    name: &'static str,
    default: &str,
) -> Result<T, ConfigError>
where
    T: std::str::FromStr,
    T::Err: std::fmt::Display,
{
    let raw = get(name).unwrap_or_else(|| default.to_owned());
    raw.parse().map_err(|e: T::Err| ConfigError {
        name,
        reason: format!("{raw:?}: {e}"),
    })
}

/// A whole number within `range`. The bounds keep every period a date can be taken from
/// (a retention period of millions of years would overflow the date arithmetic).
fn parse_within(
    get: &impl Fn(&str) -> Option<String>,
    name: &'static str,
    default: &str,
    range: std::ops::RangeInclusive<u32>,
) -> Result<u32, ConfigError> {
    let value: u32 = parse(get, name, default)?;
    if range.contains(&value) {
        Ok(value)
    } else {
        Err(ConfigError {
            name,
            reason: format!(
                "{value} is out of range ({} to {})",
                range.start(),
                range.end()
            ),
        })
    }
}

/// A switch: `1`/`true`/`yes`/`on` or `0`/`false`/`no`/`off`; unset is false.
fn parse_bool(
    get: &impl Fn(&str) -> Option<String>,
    name: &'static str,
) -> Result<bool, ConfigError> {
    match get(name).map(|v| v.to_ascii_lowercase()).as_deref() {
        None | Some("0" | "false" | "no" | "off") => Ok(false),
        Some("1" | "true" | "yes" | "on") => Ok(true),
        Some(other) => Err(ConfigError {
            name,
            reason: format!("expected 1 or 0 (true or false), got {other:?}"),
        }),
    }
}

/// Origins as a browser sends them: a scheme, a host and an optional port, nothing else.
fn parse_origins(raw: &str) -> Result<Vec<String>, ConfigError> {
    raw.split(',')
        .map(str::trim)
        .filter(|o| !o.is_empty())
        .map(|origin| {
            let refused = |reason: &str| ConfigError {
                name: "CORS_ALLOWED_ORIGINS",
                reason: format!("{origin:?}: {reason}"),
            };
            let url = reqwest::Url::parse(origin).map_err(|e| refused(&e.to_string()))?;
            if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
                return Err(refused("an origin is http(s)://host[:port]"));
            }
            let serialized = url.origin().ascii_serialization();
            if serialized != origin.trim_end_matches('/') {
                return Err(refused("an origin has no path, query or trailing parts"));
            }
            Ok(serialized)
        })
        .collect()
}

fn parse_branch_timezones(raw: &str) -> Result<BTreeMap<i64, chrono_tz::Tz>, ConfigError> {
    let bad = |item: &str| ConfigError {
        name: "BRANCH_TIMEZONES",
        reason: format!("{item:?} is not MIS_ID=IANA zone"),
    };
    raw.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|item| {
            let (id, zone) = item.split_once('=').ok_or_else(|| bad(item))?;
            let id = id.trim().parse::<i64>().map_err(|_| bad(item))?;
            let zone = zone
                .trim()
                .parse::<chrono_tz::Tz>()
                .map_err(|_| bad(item))?;
            Ok((id, zone))
        })
        .collect()
}

fn parse_proxies(raw: &str) -> Result<Vec<IpNet>, ConfigError> {
    raw.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|item| {
            item.parse::<IpNet>()
                .or_else(|_| item.parse::<std::net::IpAddr>().map(IpNet::from))
                .map_err(|_| ConfigError {
                    name: "TRUSTED_PROXIES",
                    reason: format!("{item:?} is neither an address nor a CIDR block"),
                })
        })
        .collect()
}

/// The Shannon entropy of `secret`'s characters times its length: a floor on what a key
/// like `aaaa…` or `abababab…` offers, however long (random hex of 64 digits gives about 250).
fn entropy_bits(secret: &str) -> f64 {
    let mut counts = std::collections::HashMap::new();
    for c in secret.chars() {
        *counts.entry(c).or_insert(0u32) += 1;
    }
    #[allow(clippy::cast_precision_loss)]
    let total = secret.chars().count() as f64;
    let per_char: f64 = counts
        .values()
        .map(|&n| {
            let p = f64::from(n) / total;
            -p * p.log2()
        })
        .sum();
    per_char * total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn production_refuses_to_start_without_a_real_jwt_secret() {
        let err = Config::from_lookup(|k| (k == "APP_ENV").then(|| "production".to_owned()))
            .err()
            .map(|e| e.name);
        assert_eq!(err, Some("JWT_SECRET"));
        let short = Config::from_lookup(|k| match k {
            "APP_ENV" => Some("production".into()),
            "JWT_SECRET" => Some("short".into()),
            _ => None,
        });
        assert!(short.is_err());
        // Long enough, but no randomness in it.
        for weak in ["a".repeat(32), "ab".repeat(40), "abc-".repeat(9)] {
            let weak = Config::from_lookup(|k| match k {
                "JWT_SECRET" => Some(weak.clone()),
                _ => None,
            });
            assert_eq!(weak.err().map(|e| e.name), Some("JWT_SECRET"));
        }
        for strong in [
            "0123456789abcdef0123456789abcdef0123",
            "9f8e2c4b71d03a65e8b2f9c047d1a3e69b5c8f2e07d4a1b63c9e5f8a2d7b0c41",
        ] {
            assert!(
                Config::from_lookup(|k| (k == "JWT_SECRET").then(|| strong.into())).is_ok(),
                "{strong}"
            );
        }
    }

    #[test]
    fn development_generates_a_secret_and_has_working_defaults() {
        let config = Config::from_lookup(|_| None).expect("defaults load");
        assert!(config.jwt_secret_generated);
        assert_eq!(config.jwt_secret.len(), 32);
        assert_eq!(config.bind_addr.to_string(), "127.0.0.1:8080");
        assert_eq!(config.login_limit_per_account, 5);
    }

    #[test]
    fn branch_time_zones_parse_as_pairs() {
        let config = Config::from_lookup(|k| {
            (k == "BRANCH_TIMEZONES").then(|| "3=Asia/Yekaterinburg, 1=Europe/Moscow".into())
        })
        .expect("valid");
        assert_eq!(
            config.branch_timezones.get(&3),
            Some(&chrono_tz::Asia::Yekaterinburg)
        );
        let bad =
            Config::from_lookup(|k| (k == "BRANCH_TIMEZONES").then(|| "3=Mars/Olympus".into()));
        assert_eq!(bad.err().map(|e| e.name), Some("BRANCH_TIMEZONES"));
    }

    #[test]
    fn bench_routes_are_off_by_default_and_refused_in_production() {
        assert!(
            !Config::from_lookup(|_| None)
                .expect("defaults")
                .bench_routes
        );
        let on = Config::from_lookup(|k| (k == "BENCH_ROUTES").then(|| "1".into()));
        assert!(on.expect("valid").bench_routes);
        let bad = Config::from_lookup(|k| (k == "BENCH_ROUTES").then(|| "maybe".into()));
        assert_eq!(bad.err().map(|e| e.name), Some("BENCH_ROUTES"));
        let production = Config::from_lookup(|k| match k {
            "APP_ENV" => Some("production".into()),
            "JWT_SECRET" => Some("bench-only-secret-0123456789abcdef0123456789abcdef".into()),
            "BENCH_ROUTES" => Some("true".into()),
            "SMS_PROVIDER" => Some("log".into()),
            _ => None,
        });
        assert_eq!(production.err().map(|e| e.name), Some("BENCH_ROUTES"));
    }

    #[test]
    fn production_names_its_sms_gateway() {
        let production = |provider: Option<&'static str>| {
            Config::from_lookup(move |k| match k {
                "APP_ENV" => Some("production".into()),
                "JWT_SECRET" => Some("9f8e2c4b71d03a65e8b2f9c047d1a3e69b5c8f2e07d4a1b6".into()),
                "SMS_PROVIDER" => provider.map(Into::into),
                _ => None,
            })
        };
        assert_eq!(production(None).err().map(|e| e.name), Some("SMS_PROVIDER"));
        assert_eq!(
            production(Some("log")).map(|c| c.sms_provider).ok(),
            Some(SmsProvider::Log)
        );
        assert_eq!(
            production(Some("smsru")).map(|c| c.sms_provider).ok(),
            Some(SmsProvider::SmsRu)
        );
        assert_eq!(
            Config::from_lookup(|_| None).map(|c| c.sms_provider).ok(),
            Some(SmsProvider::Log),
            "development defaults to the log"
        );
    }

    #[test]
    fn the_deactivation_limit_is_a_percentage_defaulting_to_twenty() {
        let percent = |raw: &'static str| {
            Config::from_lookup(move |k| (k == "SYNC_MAX_DEACTIVATION_PERCENT").then(|| raw.into()))
                .map(|c| c.sync_max_deactivation_percent)
                .map_err(|e| e.name)
        };
        assert_eq!(
            Config::from_lookup(|_| None)
                .expect("defaults")
                .sync_max_deactivation_percent,
            crate::sync::guard::DEFAULT_MAX_PERCENT
        );
        assert_eq!(percent("0"), Ok(0));
        assert_eq!(percent("35"), Ok(35));
        assert_eq!(percent("100"), Ok(100));
        for bad in ["101", "-1", "20 %", "0.5", "many"] {
            assert_eq!(percent(bad), Err("SYNC_MAX_DEACTIVATION_PERCENT"), "{bad}");
        }
    }

    #[test]
    fn second_factor_roles_default_to_staff_and_admin_and_may_be_none() {
        use crate::domain::values::Role;
        let roles = |raw: Option<&'static str>| {
            Config::from_lookup(move |k| {
                (k == "MFA_REQUIRED_ROLES")
                    .then_some(raw)
                    .flatten()
                    .map(str::to_owned)
            })
            .map(|c| c.mfa_required_roles)
            .map_err(|e| e.name)
        };
        assert_eq!(roles(None), Ok(vec![Role::Staff, Role::Admin]));
        assert_eq!(roles(Some("")), Ok(vec![]));
        assert_eq!(roles(Some("  ")), Ok(vec![]));
        assert_eq!(roles(Some("admin")), Ok(vec![Role::Admin]));
        assert_eq!(
            roles(Some("patient, staff,staff")),
            Ok(vec![Role::Patient, Role::Staff])
        );
        assert_eq!(roles(Some("root")), Err("MFA_REQUIRED_ROLES"));
    }

    #[test]
    fn the_clinic_phone_has_a_default_and_is_kept_as_written() {
        let defaults = Config::from_lookup(|_| None).expect("defaults");
        assert_eq!(defaults.clinic_phone, DEFAULT_CLINIC_PHONE);
        let set =
            Config::from_lookup(|k| (k == "CLINIC_PHONE").then(|| " 8 800 555-35-35 ".into()))
                .expect("set");
        assert_eq!(set.clinic_phone, "8 800 555-35-35");
    }

    #[test]
    fn retention_periods_default_and_stay_within_their_bounds() {
        let defaults = Config::from_lookup(|_| None).expect("defaults");
        assert_eq!(defaults.account_deletion_grace_days, 30);
        assert_eq!(defaults.audit_retention_days, 1095);
        assert_eq!(defaults.sms_text_retention_days, 180);
        assert_eq!(defaults.schedule_snapshot_retention_days, 14);
        assert_eq!(defaults.idempotency_key_retention_hours, 48);
        let one = |name: &'static str, raw: &'static str| {
            Config::from_lookup(move |k| (k == name).then(|| raw.into())).map_err(|e| e.name)
        };
        assert_eq!(
            one("ACCOUNT_DELETION_GRACE_DAYS", "0").map(|c| c.account_deletion_grace_days),
            Ok(0)
        );
        for (name, bad) in [
            ("ACCOUNT_DELETION_GRACE_DAYS", "31"),
            ("AUDIT_RETENTION_DAYS", "0"),
            ("AUDIT_RETENTION_DAYS", "4294967295"),
            ("SMS_TEXT_RETENTION_DAYS", "-1"),
            ("SCHEDULE_SNAPSHOT_RETENTION_DAYS", "two weeks"),
            ("IDEMPOTENCY_KEY_RETENTION_HOURS", "0"),
        ] {
            assert_eq!(one(name, bad).map(|_| ()), Err(name), "{name}={bad}");
        }
    }

    #[test]
    fn reminders_default_to_a_day_ahead_and_zero_turns_them_off() {
        let defaults = Config::from_lookup(|_| None).expect("defaults");
        assert_eq!(defaults.reminder_hours_before, 24);
        assert_eq!(defaults.reminder_interval, Duration::from_secs(60));
        assert_eq!(defaults.clinic_phone, DEFAULT_CLINIC_PHONE);
        let one = |name: &'static str, raw: &'static str| {
            Config::from_lookup(move |k| (k == name).then(|| raw.into())).map_err(|e| e.name)
        };
        assert_eq!(
            one("REMINDER_HOURS_BEFORE", "0").map(|c| c.reminder_hours_before),
            Ok(0)
        );
        assert_eq!(
            one("CLINIC_PHONE", "+7 (343) 123-45-67").map(|c| c.clinic_phone),
            Ok("+7 (343) 123-45-67".to_owned())
        );
        for (name, bad) in [
            ("REMINDER_HOURS_BEFORE", "721"),
            ("REMINDER_HOURS_BEFORE", "a day"),
            ("REMINDER_INTERVAL_SECONDS", "0"),
        ] {
            assert_eq!(one(name, bad).map(|_| ()), Err(name), "{name}={bad}");
        }
    }

    #[test]
    fn the_schedule_memory_and_the_directory_reload_have_bounded_defaults() {
        let defaults = Config::from_lookup(|_| None).expect("defaults");
        assert_eq!(defaults.schedule_memory_cache_bytes, 64 * 1024 * 1024);
        assert_eq!(defaults.directory_reload, Duration::from_secs(300));
        let one = |name: &'static str, raw: &'static str| {
            Config::from_lookup(move |k| (k == name).then(|| raw.into())).map_err(|e| e.name)
        };
        assert_eq!(
            one("SCHEDULE_MEMORY_CACHE_MB", "0").map(|c| c.schedule_memory_cache_bytes),
            Ok(0)
        );
        for (name, bad) in [
            ("SCHEDULE_MEMORY_CACHE_MB", "65537"),
            ("SCHEDULE_MEMORY_CACHE_MB", "lots"),
            ("DIRECTORY_RELOAD_SECONDS", "0"),
        ] {
            assert_eq!(one(name, bad).map(|_| ()), Err(name), "{name}={bad}");
        }
    }

    #[test]
    fn a_bad_value_names_its_variable() {
        let err =
            Config::from_lookup(|k| (k == "TRUSTED_PROXIES").then(|| "10.0.0.1, nope".into()));
        assert_eq!(err.err().map(|e| e.name), Some("TRUSTED_PROXIES"));
    }
}
