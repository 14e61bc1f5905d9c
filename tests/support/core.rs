//! The booking core on its own: a `Booking` built from its parts (a pool on a fresh
//! database, Redis under a fresh prefix, the real MIS client pointed at the emulator, and a
//! clock the test sets), with no server and no HTTP of ours in between.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use sovamed::{
    config::Config,
    db,
    domain::{
        booking::{Booking, limits::ReserveLimits, schedule::ScheduleCache},
        clock::Clock,
    },
    emulator::{EmulatorConfig, Emulators},
    redis::Redis,
};

use super::{fresh_database, test_config};

pub struct CoreWorld {
    pub booking: Booking,
    pub clock: Clock,
    pub emulators: Emulators,
}

impl CoreWorld {
    pub async fn start() -> Self {
        let emulators = sovamed::emulator::spawn(EmulatorConfig {
            seed: 42,
            scale: 1,
            mis_bind: "127.0.0.1:0".parse().expect("addr"),
            cms_bind: "127.0.0.1:0".parse().expect("addr"),
            sms_bind: None,
            cms_token: "test-cms-token".into(),
        })
        .await
        .expect("emulators start");
        let database_url = fresh_database().await;
        let prefix = format!("test:{}:", uuid::Uuid::new_v4().simple());
        let mut config = test_config(&database_url, &prefix);
        config.infoclinica_url = Some(emulators.mis_url.clone());
        config.infoclinica_timeout = std::time::Duration::from_secs(5);
        config.bitrix_url = Some(emulators.cms_url.clone());
        config.bitrix_token = Some(emulators.cms_token.clone());
        sync_mis_directories(&config).await;

        let pool = db::build_pool(&database_url, 4).expect("pool");
        let redis = Redis::connect(&config.redis_url, &prefix).expect("redis");
        let (mis, sms) = sovamed::integrations::booking_clients(&config);
        let clock = Clock::fixed(Utc::now());
        let booking = Booking {
            schedule: ScheduleCache::new(
                redis.clone(),
                pool.clone(),
                mis.clone(),
                config.schedule_cache_ttl,
            ),
            directory: sovamed::domain::directory_snapshot::Directory::new(pool.clone()),
            limits: ReserveLimits::new(redis.clone(), 100, 100),
            phones: phone_checks(&pool, &redis, &clock),
            rules: sovamed::domain::booking::BookingRules::default(),
            db: pool,
            redis,
            mis,
            sms,
            clock: clock.clone(),
            outbox_wakeup: Arc::default(),
            sms_retry_base: config.sms_retry_base,
        };
        Self {
            booking,
            clock,
            emulators,
        }
    }

    /// The first doctor and branch pair the MIS has, as local ids.
    pub async fn doctor_and_branch(&self) -> (i64, i64) {
        use diesel_async::RunQueryDsl;
        #[derive(diesel::QueryableByName)]
        struct Pair {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            specialist_id: i64,
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            branch_id: i64,
        }
        let mut conn = self.booking.db.get().await.expect("connection");
        let pairs: Vec<Pair> = diesel::sql_query(
            "SELECT specialist_id, branch_id FROM specialist_branches ORDER BY specialist_id, branch_id LIMIT 1",
        )
        .load(&mut conn)
        .await
        .expect("pairs");
        (pairs[0].specialist_id, pairs[0].branch_id)
    }

    /// The free slot starts of the doctor in the branch over the next two weeks.
    pub async fn free_starts(&self, specialist_id: i64, branch_id: i64) -> Vec<DateTime<Utc>> {
        let target = self
            .booking
            .target(specialist_id, branch_id)
            .await
            .expect("target");
        let today = target.zone.today(self.clock.now());
        let window = self
            .booking
            .schedule
            .window(&target.grid(), today, today + chrono::Duration::days(13))
            .await
            .expect("window");
        window
            .days
            .iter()
            .flat_map(|d| d.slots(target.zone.tz(), self.clock.now()))
            .filter(|s| s.free)
            .map(|s| s.start.with_timezone(&Utc))
            .collect()
    }
}

pub async fn sync_mis_directories(config: &Config) {
    use diesel_async::AsyncConnection;
    let mut conn = diesel_async::AsyncPgConnection::establish(&config.database_url)
        .await
        .expect("connect");
    let sources = sovamed::sync::Sources::from_config(config);
    let options = sovamed::sync::SyncOptions::from_config(config, false);
    let kinds = [
        sovamed::sync::SyncKind::Branches,
        sovamed::sync::SyncKind::Specialities,
        sovamed::sync::SyncKind::Specialists,
    ];
    sovamed::sync::run_kinds(
        &mut conn,
        &sources,
        &kinds,
        &options,
        &sovamed::sync::Quiet,
        |_| {},
    )
    .await
    .map_err(|(kind, e)| format!("{}: {e}", kind.as_str()))
    .expect("directories sync");
}

/// Phone proofs over the test's database and Redis, with generous limits.
pub fn phone_checks(
    pool: &sovamed::db::DbPool,
    redis: &Redis,
    clock: &Clock,
) -> sovamed::domain::phones::PhoneChecks {
    sovamed::domain::phones::PhoneChecks::new(
        pool.clone(),
        redis.clone(),
        clock.clone(),
        sovamed::domain::phones::VerifyLimits {
            per_phone_hour: 100,
            per_ip_hour: 100,
            sms_per_phone_day: 100,
        },
        Arc::default(),
        b"test key for phone codes, 32 bytes or more",
    )
}
