//! Emulators of the external systems, speaking their real wire protocols over HTTP: the MIS
//! Infoclinica (XML, [`mis`], with schedules and bookings from [`booking`]), the CMS content
//! endpoint (JSON, [`cms`]) and the SMS.ru gateway ([`sms`]). `sovamed emulate` runs them
//! (`serve --demo` is to start them in-process with [`spawn`]); the integration tests start
//! them on port 0 and drive them through [`EmulatorControl`].
//!
//! All three share one [`World`] (generated from a seed) and their own fault switches,
//! settable in-process or with `POST /_emulator/faults` on each emulator.

pub mod booking;
pub mod cms;
mod data;
pub mod mis;
pub mod sms;
pub mod world;

use std::{
    collections::{BTreeMap, BTreeSet},
    net::SocketAddr,
    sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard},
};

use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, Utc};

use anyhow::Context as _;
use axum::{Json, Router, extract::State, response::IntoResponse, routing};
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;

pub use booking::{Appointment, Patient, WorkPeriod};
pub use sms::{DEFAULT_SMS_API_ID, ReceivedSms, SentSms, SmsFaults};
pub use world::World;

use crate::integrations::bitrix::ContentKind;

/// What to start and where.
#[derive(Debug, Clone)]
pub struct EmulatorConfig {
    pub seed: u64,
    pub scale: u32,
    pub mis_bind: SocketAddr,
    pub cms_bind: SocketAddr,
    pub sms_bind: Option<SocketAddr>,
    /// The bearer token the CMS endpoint accepts.
    pub cms_token: String,
}

impl Default for EmulatorConfig {
    /// Seed 42, scale 1, every emulator on a free loopback port (SMS off).
    fn default() -> Self {
        let any = SocketAddr::from(([127, 0, 0, 1], 0));
        Self {
            seed: 42,
            scale: 1,
            mis_bind: any,
            cms_bind: any,
            sms_bind: None,
            cms_token: "demo-cms-token".into(),
        }
    }
}

/// Running emulators. They serve until the runtime stops.
#[derive(Debug, Clone)]
pub struct Emulators {
    /// `http://addr/api/xml`: the value for `INFOCLINICA_URL`.
    pub mis_url: String,
    /// `http://addr`: the value for `BITRIX_URL`.
    pub cms_url: String,
    pub cms_token: String,
    /// `http://addr`: the value for `SMSRU_URL`, when the SMS emulator runs.
    pub sms_url: Option<String>,
    /// The `api_id` the SMS emulator accepts: the value for `SMSRU_API_ID`.
    pub sms_api_id: String,
    pub control: EmulatorControl,
}

/// Fault switches of the MIS emulator. Default: none.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MisFaults {
    /// Added before every answer.
    pub latency_ms: u64,
    /// Answer HTTP 500 with an HTML error page.
    pub http_500: bool,
    /// Answer 200 with a truncated XML document.
    pub malformed: bool,
    /// Answer HTTP 401 (a gateway refusing the client certificate).
    pub unauthorized: bool,
    /// Added before answering `SCHEDULE_REC_RESERVE` only (after the call is counted,
    /// before the world is locked): widens the window between a grid read and a reserve.
    pub reserve_latency_ms: u64,
    /// Held after the answer to `SCHEDULE_CHANGE_LIST` is built, before it is sent: the
    /// list a poll applies is older than what the poll then reads locally.
    pub change_list_late_ms: u64,
    /// The list messages named here (`GET_FILIAL_LIST`, `GET_DEPARTMENT_LIST`,
    /// `GET_DOCTOR_LIST`, `PRICE_LIST`, `SCHEDULE_REC_LIST`) answer a well-formed list with
    /// no items (`ITEMSNUMBER` 0 on paged lists), as a source that lost its data would.
    /// Other names are ignored.
    pub empty_lists: BTreeSet<String>,
    /// The paged lists (`GET_DOCTOR_LIST`, `SCHEDULE_REC_LIST`) bring at most this many rows
    /// a page, whatever `LASTROW` asks, while `RECORDSDATA/ITEMSNUMBER` still counts every
    /// row: a short page.
    pub short_pages: Option<u32>,
    /// Answer every message as if another had been asked: `MSH.9/MSG.2` and the `_OUT`
    /// block are `GET_FILIAL_LIST`'s (`GET_DEPARTMENT_LIST`'s when that was asked), a
    /// well-formed, successful answer to a different message type.
    pub wrong_message_type: bool,
}

/// What the clinic's front desk does in the MIS (`POST /_emulator/front-desk` on the MIS
/// emulator, or [`EmulatorControl::front_desk`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case", deny_unknown_fields)]
pub enum FrontDeskAction {
    Cancel {
        schedid: i64,
    },
    /// To the free interval that starts at `start` (branch-local) on `date`.
    Move {
        schedid: i64,
        date: NaiveDate,
        start: NaiveTime,
    },
    MarkVisited {
        schedid: i64,
    },
    /// A visit booked by phone: the free interval starting at `start` on `date`, for card
    /// `pcode`.
    Create {
        branch_mis_id: i64,
        doctor_mis_id: i64,
        date: NaiveDate,
        start: NaiveTime,
        pcode: i64,
    },
}

/// Fault switches of the CMS emulator. Default: none.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CmsFaults {
    /// Added before every API answer.
    pub latency_ms: u64,
    /// Answer HTTP 500 with a PHP fatal-error HTML page.
    pub http_500: bool,
    /// Answer 200 with truncated JSON.
    pub malformed: bool,
    /// Answer 401 `INVALID_CREDENTIALS` whatever the token.
    pub unauthorized: bool,
    /// After serving a page that has a next page, bump `modified_at` of the first item of
    /// that page (already served) and of the first item of the next page (not yet served),
    /// as an editor saving them mid-sync would. Keyset paging still sees every item.
    pub mutate_between_pages: bool,
}

/// State shared by the emulators and their control handle.
pub(crate) struct Shared {
    world: RwLock<World>,
    mis_faults: RwLock<MisFaults>,
    cms_faults: RwLock<CmsFaults>,
    cms_token: String,
    /// MIS calls per `MSG.2` (an unreadable request counts under "").
    mis_calls: Mutex<BTreeMap<String, u64>>,
    sms: Mutex<sms::SmsState>,
    sms_faults: RwLock<SmsFaults>,
}

impl Shared {
    // A panic while holding a lock (a bug in a test hook) must not take the emulator down
    // with it: the data is still usable, so poisoning is ignored.
    pub(crate) fn world(&self) -> RwLockReadGuard<'_, World> {
        self.world.read().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn world_mut(&self) -> RwLockWriteGuard<'_, World> {
        self.world.write().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn mis_faults(&self) -> MisFaults {
        self.mis_faults
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub(crate) fn cms_faults(&self) -> CmsFaults {
        self.cms_faults
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub(crate) fn cms_token(&self) -> &str {
        &self.cms_token
    }

    pub(crate) fn sms(&self) -> MutexGuard<'_, sms::SmsState> {
        self.sms.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn mis_calls(&self) -> MutexGuard<'_, BTreeMap<String, u64>> {
        self.mis_calls.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The in-process handle on running emulators: fault switches, world edits, world reads.
#[derive(Clone)]
pub struct EmulatorControl {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for EmulatorControl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmulatorControl").finish_non_exhaustive()
    }
}

impl EmulatorControl {
    /// A handle on a fresh world, with no server (tests of the routers alone).
    pub fn new(world: World, cms_token: impl Into<String>) -> Self {
        Self {
            shared: Arc::new(Shared {
                world: RwLock::new(world),
                mis_faults: RwLock::new(MisFaults::default()),
                cms_faults: RwLock::new(CmsFaults::default()),
                cms_token: cms_token.into(),
                mis_calls: Mutex::new(BTreeMap::new()),
                sms: Mutex::new(sms::SmsState::new(DEFAULT_SMS_API_ID)),
                sms_faults: RwLock::new(SmsFaults::default()),
            }),
        }
    }

    pub fn set_mis_faults(&self, faults: MisFaults) {
        *self
            .shared
            .mis_faults
            .write()
            .unwrap_or_else(|e| e.into_inner()) = faults;
    }

    pub fn set_cms_faults(&self, faults: CmsFaults) {
        *self
            .shared
            .cms_faults
            .write()
            .unwrap_or_else(|e| e.into_inner()) = faults;
    }

    pub fn mis_faults(&self) -> MisFaults {
        self.shared.mis_faults()
    }

    pub fn cms_faults(&self) -> CmsFaults {
        self.shared.cms_faults()
    }

    /// Removes every `GETDOCTORLIST` row of the doctor. False when there was none.
    pub fn remove_mis_doctor(&self, doctor_mis_id: i64) -> bool {
        let mut world = self.shared.world_mut();
        let before = world.doctors.len();
        world.doctors.retain(|d| d.mis_id != doctor_mis_id);
        world.doctors.len() != before
    }

    /// Changes the doctor's `DNAME`. False when there is no such doctor.
    pub fn rename_mis_doctor(&self, doctor_mis_id: i64, new_name: impl Into<String>) -> bool {
        let mut world = self.shared.world_mut();
        match world.doctors.iter_mut().find(|d| d.mis_id == doctor_mis_id) {
            Some(doctor) => {
                doctor.full_name = new_name.into();
                true
            }
            None => false,
        }
    }

    /// Sets the element's `modified_at` to now, as saving it in the admin would.
    pub fn touch_cms_item(&self, kind: ContentKind, id: i64) -> bool {
        cms::touch(&mut self.shared.world_mut(), kind, id)
    }

    /// Deletes the element: gone from pages and from `/ids`.
    pub fn delete_cms_item(&self, kind: ContentKind, id: i64) -> bool {
        let mut world = self.shared.world_mut();
        let Some(items) = world.cms.get_mut(&kind) else {
            return false;
        };
        let before = items.len();
        items.retain(|i| i.id != id);
        items.len() != before
    }

    /// Sets `active` false and bumps `modified_at`.
    pub fn deactivate_cms_item(&self, kind: ContentKind, id: i64) -> bool {
        let mut world = self.shared.world_mut();
        let found = world
            .cms
            .get_mut(&kind)
            .and_then(|items| items.iter_mut().find(|i| i.id == id))
            .map(|item| item.active = false)
            .is_some();
        found && cms::touch(&mut world, kind, id)
    }

    /// A copy of the world as it is now.
    pub fn world(&self) -> World {
        self.shared.world().clone()
    }

    /// Reads the world without copying it.
    pub fn with_world<R>(&self, read: impl FnOnce(&World) -> R) -> R {
        read(&self.shared.world())
    }

    /// Edits the world in place (for changes the methods above do not cover).
    pub fn edit_world<R>(&self, edit: impl FnOnce(&mut World) -> R) -> R {
        edit(&mut self.shared.world_mut())
    }

    pub(crate) fn shared(&self) -> Arc<Shared> {
        Arc::clone(&self.shared)
    }

    // ------------------------------------------------------------ MIS booking

    /// Shifts the emulator's clock (what is "past", what "today" is in each branch).
    pub fn set_clock_offset(&self, offset: chrono::Duration) {
        self.shared.world_mut().booking.clock.offset = offset;
    }

    /// Fixes the emulator's clock at an instant (the offset still applies); `None` returns
    /// to real time.
    pub fn set_now(&self, now: Option<DateTime<Utc>>) {
        self.shared.world_mut().booking.clock.fixed = now;
    }

    /// The emulator's "now" (UTC).
    pub fn now(&self) -> DateTime<Utc> {
        self.shared.world().now()
    }

    /// The wall-clock time in a branch, by its `TIMEZONE`.
    pub fn branch_now(&self, branch_mis_id: i64) -> Option<NaiveDateTime> {
        self.shared.world().branch_now(branch_mis_id)
    }

    pub(crate) fn count_mis_call(&self, op: &str) {
        *self.shared.mis_calls().entry(op.to_owned()).or_insert(0) += 1;
    }

    /// MIS requests received with this `MSG.2` (also those a fault switch answered).
    pub fn mis_calls(&self, op: &str) -> u64 {
        self.shared.mis_calls().get(op).copied().unwrap_or(0)
    }

    /// Every count, by `MSG.2`.
    pub fn mis_call_counts(&self) -> BTreeMap<String, u64> {
        self.shared.mis_calls().clone()
    }

    /// Every MIS request received.
    pub fn mis_calls_total(&self) -> u64 {
        self.shared.mis_calls().values().sum()
    }

    /// Forgets the counts.
    pub fn reset_mis_calls(&self) {
        self.shared.mis_calls().clear();
    }

    /// Active appointments, by `SCHEDID`.
    pub fn appointments(&self) -> Vec<Appointment> {
        self.shared
            .world()
            .booking
            .appointments
            .values()
            .cloned()
            .collect()
    }

    /// How many appointments are active.
    pub fn appointment_count(&self) -> usize {
        self.shared.world().booking.appointments.len()
    }

    /// Patient cards, by `PCODE`.
    pub fn patients(&self) -> Vec<Patient> {
        self.shared
            .world()
            .booking
            .patients
            .values()
            .cloned()
            .collect()
    }

    /// The doctor's work periods in a branch on a date.
    pub fn work_periods(
        &self,
        branch_mis_id: i64,
        doctor_mis_id: i64,
        date: NaiveDate,
    ) -> Vec<WorkPeriod> {
        self.shared
            .world()
            .work_periods(branch_mis_id, doctor_mis_id, date)
    }

    /// The free 30-minute intervals (start, end, `SCHEDIDENT`), from the emulator's state.
    pub fn free_intervals(
        &self,
        branch_mis_id: i64,
        doctor_mis_id: i64,
        date: NaiveDate,
    ) -> Vec<(NaiveTime, NaiveTime, i64)> {
        self.shared
            .world()
            .free_intervals(branch_mis_id, doctor_mis_id, date)
    }

    /// Books the free interval starting at `start` for another patient, as someone winning
    /// a race would; its `SCHEDID`, or `None` when that interval is not free.
    pub fn take_interval(
        &self,
        branch_mis_id: i64,
        doctor_mis_id: i64,
        date: NaiveDate,
        start: NaiveTime,
    ) -> Option<i64> {
        self.shared
            .world_mut()
            .take_interval(branch_mis_id, doctor_mis_id, date, start)
    }

    /// The clinic's front desk acts in the MIS, each action producing a change-feed item:
    /// cancel, move to another free interval of the same doctor and branch, mark attended.
    pub fn front_desk(&self, action: &FrontDeskAction) -> bool {
        let mut world = self.shared.world_mut();
        match action {
            FrontDeskAction::Cancel { schedid } => world.front_desk_cancel(*schedid).is_some(),
            FrontDeskAction::Move {
                schedid,
                date,
                start,
            } => world.front_desk_move(*schedid, *date, *start).is_some(),
            FrontDeskAction::MarkVisited { schedid } => world.front_desk_mark_visited(*schedid),
            FrontDeskAction::Create {
                branch_mis_id,
                doctor_mis_id,
                date,
                start,
                pcode,
            } => world
                .front_desk_create(*branch_mis_id, *doctor_mis_id, *date, *start, *pcode)
                .is_some(),
        }
    }

    /// How many times each change of the feed was confirmed (`SCHEDULE_CHANGE_ACCEPT`).
    pub fn change_accepts(&self) -> BTreeMap<i64, u32> {
        self.shared.world().booking.accepts.clone()
    }

    /// Changes of the feed not yet confirmed.
    pub fn unaccepted_changes(&self) -> usize {
        self.shared
            .world()
            .booking
            .changes
            .iter()
            .filter(|c| !c.accepted)
            .count()
    }

    // ------------------------------------------------------------ SMS

    /// Replaces the SMS emulator's fault switches.
    pub fn set_sms_faults(&self, faults: SmsFaults) {
        *self
            .shared
            .sms_faults
            .write()
            .unwrap_or_else(|e| e.into_inner()) = faults;
    }

    /// The SMS emulator's fault switches.
    pub fn sms_faults(&self) -> SmsFaults {
        self.shared
            .sms_faults
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The `api_id` the SMS emulator accepts.
    pub fn sms_api_id(&self) -> String {
        self.shared.sms().api_id.clone()
    }

    /// Changes the `api_id` the SMS emulator accepts.
    pub fn set_sms_api_id(&self, api_id: impl Into<String>) {
        self.shared.sms().api_id = api_id.into();
    }

    /// Every message the SMS emulator accepted, oldest first (`test=1` ones included).
    pub fn sms_messages(&self) -> Vec<SentSms> {
        self.shared.sms().messages.clone()
    }

    /// Every message the SMS emulator accepted with what `sms/status` answers for it now
    /// (also `GET /_emulator/messages`).
    pub fn sms_received(&self) -> Vec<ReceivedSms> {
        let step = self
            .sms_faults()
            .status_step_ms
            .unwrap_or(sms::DEFAULT_STATUS_STEP_MS);
        let now = self.now();
        self.shared
            .sms()
            .messages
            .iter()
            .map(|m| ReceivedSms {
                status_code: sms::status_at(m, now, step),
                sms: m.clone(),
            })
            .collect()
    }

    /// How many messages the SMS emulator accepted.
    pub fn sms_count(&self) -> usize {
        self.shared.sms().messages.len()
    }

    /// The SMS account balance in kopecks.
    pub fn sms_balance_kopecks(&self) -> i64 {
        self.shared.sms().balance_kopecks
    }

    /// Sets the SMS account balance (0 makes every send a 201).
    pub fn set_sms_balance_kopecks(&self, kopecks: i64) {
        self.shared.sms().balance_kopecks = kopecks;
    }
}

/// Binds every emulator and serves each in a background task. Port 0 picks a free port;
/// the returned URLs carry the real one.
pub async fn spawn(config: EmulatorConfig) -> anyhow::Result<Emulators> {
    let control = EmulatorControl::new(
        World::generate(config.seed, config.scale),
        config.cms_token.clone(),
    );
    let mis_addr = serve(config.mis_bind, mis::router(control.clone()), "MIS").await?;
    let cms_addr = serve(config.cms_bind, cms::router(control.clone()), "CMS").await?;
    let sms_url = match config.sms_bind {
        Some(bind) => Some(format!(
            "http://{}",
            serve(bind, sms::router(control.clone()), "SMS").await?
        )),
        None => None,
    };
    Ok(Emulators {
        mis_url: format!("http://{mis_addr}/api/xml"),
        cms_url: format!("http://{cms_addr}"),
        cms_token: config.cms_token,
        sms_url,
        sms_api_id: control.sms_api_id(),
        control,
    })
}

async fn serve(bind: SocketAddr, router: Router, what: &str) -> anyhow::Result<SocketAddr> {
    let listener = TcpListener::bind(bind)
        .await
        .with_context(|| format!("cannot bind the {what} emulator to {bind}"))?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, router).await {
            tracing::error!(error = %e, "emulator stopped");
        }
    });
    Ok(addr)
}

/// `GET`/`POST /_emulator/faults` for a fault type `F`.
pub(crate) fn faults_routes<F>(
    get: fn(&EmulatorControl) -> F,
    set: fn(&EmulatorControl, F),
) -> Router<EmulatorControl>
where
    F: Serialize + for<'de> Deserialize<'de> + Send + 'static,
{
    Router::new().route(
        "/_emulator/faults",
        routing::get(
            move |State(control): State<EmulatorControl>| async move { Json(get(&control)) },
        )
        .post(
            move |State(control): State<EmulatorControl>, Json(faults): Json<F>| async move {
                set(&control, faults);
                Json(get(&control)).into_response()
            },
        ),
    )
}
