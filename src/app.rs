//! `App`: what every handler shares (configuration, pools, keys), behind `AppState`.

use std::sync::Arc;

use crate::{
    auth::{jwt::JwtKeys, password::Passwords, throttle::LoginThrottle},
    config::Config,
    db::{self, DbConn, DbPool},
    domain::{
        booking::{Booking, BookingRules, limits::ReserveLimits, schedule::ScheduleCache},
        directory_snapshot::Directory,
        phones::{PhoneChecks, VerifyLimits},
        refresh::RefreshTokens,
    },
    error::AppError,
    redis::Redis,
};

/// Shared state of the process.
pub struct App {
    pub config: Config,
    pub db: DbPool,
    pub redis: Redis,
    pub sessions: tower_sessions_redis_store::RedisStore<fred::clients::Pool>,
    pub jwt: JwtKeys,
    pub passwords: Passwords,
    pub login_throttle: LoginThrottle,
    pub booking: Booking,
    pub refresh_tokens: RefreshTokens,
}

pub type AppState = Arc<App>;

impl App {
    /// Builds the pools and keys. Connections open lazily, so this does not fail when
    /// PostgreSQL or Redis is down; `/readyz` reports that instead.
    pub async fn new(config: Config) -> anyhow::Result<AppState> {
        crate::telemetry::metrics::install();
        let db = db::build_pool(&config.database_url, config.database_pool_size)?;
        let redis = Redis::connect(&config.redis_url, &config.redis_prefix)?;
        let (mis, sms) = crate::integrations::booking_clients(&config);
        let clock = config.clock.clone();
        let outbox_wakeup = Arc::default();
        let phones = PhoneChecks::new(
            db.clone(),
            redis.clone(),
            clock.clone(),
            VerifyLimits {
                per_phone_hour: config.verify_limit_per_phone_hour,
                per_ip_hour: config.verify_limit_per_ip_hour,
                sms_per_phone_day: config.sms_limit_per_phone_day,
            },
            Arc::clone(&outbox_wakeup),
            &config.jwt_secret,
        )
        .with_clinic_phone(&config.clinic_phone);
        let booking = Booking {
            db: db.clone(),
            redis: redis.clone(),
            clock,
            schedule: ScheduleCache::new(
                redis.clone(),
                db.clone(),
                mis.clone(),
                config.schedule_cache_ttl,
            )
            .with_read_budget(config.infoclinica_read_budget)
            .with_memory(config.schedule_memory_cache_bytes),
            directory: Directory::new(db.clone()),
            limits: ReserveLimits::new(
                redis.clone(),
                config.reserve_limit_per_ip_hour,
                config.reserve_limit_per_phone_hour,
            ),
            mis,
            sms,
            outbox_wakeup,
            sms_retry_base: config.sms_retry_base,
            phones,
            rules: BookingRules {
                anonymous_verify: config.anonymous_booking_verify,
                max_upcoming: config.max_active_records_per_patient,
                bookings_per_day: config.booking_limit_per_patient_day,
                public_base_url: config.public_base_url.clone(),
                clinic_phone: config.clinic_phone.clone(),
                schedule_horizon_days: config.schedule_horizon_days,
                uncached_reads_per_minute: config.schedule_uncached_reads_per_ip_minute,
            },
        };
        Ok(Arc::new(App {
            sessions: tower_sessions_redis_store::RedisStore::new(redis.pool.clone()),
            jwt: JwtKeys::new(&config.jwt_secret, config.jwt_ttl),
            passwords: Passwords::new().await?,
            login_throttle: LoginThrottle::new(redis.clone(), &config),
            refresh_tokens: RefreshTokens {
                db: db.clone(),
                clock: booking.clock.clone(),
                ttl: chrono::Duration::from_std(config.refresh_token_ttl)
                    .unwrap_or(chrono::Duration::days(30)),
            },
            booking,
            db,
            redis,
            config,
        }))
    }

    /// A pooled connection, or a 503 naming the database.
    pub async fn db(&self) -> Result<DbConn, AppError> {
        Ok(self.db.get().await?)
    }
}
