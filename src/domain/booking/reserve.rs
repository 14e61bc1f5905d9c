//! Booking a free slot. The MIS owns the slots, so a booking is written down first (an
//! intent, committed with the visitor's phone proof and consent, if any), then the MIS
//! books, then the record, its SMS, its audit row and the intent's `done` with the MIS's
//! `SCHEDID` are written in one local transaction: two commits on the way, and only the
//! intent's waits for the disk (the record's can be written again from the intent and the
//! MIS, so a crash of PostgreSQL's server that loses it leaves the intent pending for the
//! reconciler). If that write fails, the MIS booking is cancelled again
//! (compensation). The work after the slot check runs in a task of its own: a request that
//! is dropped (the client hangs up, the request times out) does not stop it half-way, and
//! whatever a crash interrupts, the reconciler finishes from the intent (`reconcile.rs`,
//! which finds an appointment the intent has no `SCHEDID` for by its slot).

use std::{
    net::IpAddr,
    sync::atomic::{AtomicBool, Ordering},
};

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use diesel_async::AsyncPgConnection;
use fred::{interfaces::KeysInterface, types::Expiration};
use serde::{Deserialize, Serialize};

use super::{
    Booking, BookingError, BookingTarget, Patient,
    grid::Slot,
    notify::Notice,
    steps::{Step, timed},
    target,
};
use crate::{
    db::LocalSetting,
    db::models::{
        booked::{self, BookedAudit, BookedMessage, BookedWrite},
        idempotency,
        intent::{self, NewIntent},
        record::{self, NewRecord, RecordView},
        user::{self, User},
    },
    domain::{
        audit::{self, Actor},
        consent::{self, ConsentGiven, Consenter},
        directory_snapshot::Resolved,
        phones::{ProvenPhone, sha256_hex},
        values::{BirthDate, Comment, IntentKind, RecordSource, VerificationPurpose},
    },
    integrations::infoclinica::{PatientQuery, ReserveRequest},
};

/// An answer a face wants stored with the record, in the booking's transaction, so a retry
/// of the same request gets it back (the API's `Idempotency-Key`). The core stores it
/// without looking inside.
pub struct AnswerToKeep {
    pub scope: String,
    pub key: String,
    pub request_hash: String,
    pub status: u16,
    pub render: fn(&RecordView) -> serde_json::Value,
    /// Whatever the face holds while the request runs (the API's in-progress marker); kept
    /// alive until the booking has ended, which may be after the request was dropped.
    pub guard: Option<Box<dyn std::any::Any + Send + Sync>>,
}

/// A booking to make.
pub struct BookRequest<'a> {
    pub specialist_id: i64,
    pub branch_id: i64,
    pub start: DateTime<Utc>,
    pub patient: &'a Patient,
    /// The account the record belongs to; `None` for an anonymous booking.
    pub user: Option<&'a User>,
    pub comment: Option<&'a Comment>,
    pub source: RecordSource,
    pub keep_answer: Option<AnswerToKeep>,
    pub actor: Actor,
}

impl Booking {
    /// The slot that starts at `start`: in the future and a free slot of the current grid.
    pub async fn find_slot(
        &self,
        target: &BookingTarget,
        start: DateTime<Utc>,
    ) -> Result<Slot, BookingError> {
        let now = self.clock.now();
        if start <= now {
            return Err(BookingError::StartInPast);
        }
        let date = target.zone.local(&start).date_naive();
        let window = self.schedule.window(&target.grid(), date, date).await?;
        let slot = window
            .days
            .iter()
            .flat_map(|day| day.slots(target.zone.tz(), now))
            .find(|slot| slot.start.with_timezone(&Utc) == start);
        match slot {
            Some(slot) if slot.free => Ok(slot),
            Some(_) => Err(BookingError::SlotTaken),
            None => Err(BookingError::NotASlot),
        }
    }

    /// The doctor in the branch, checked.
    pub async fn target(
        &self,
        specialist_id: i64,
        branch_id: i64,
    ) -> Result<BookingTarget, BookingError> {
        let conn = self.conn().await?;
        target::resolve(&conn, specialist_id, branch_id).await
    }

    /// Books for a logged-in patient: their name, phone and MIS card.
    pub async fn book_for_user(
        &self,
        user: &User,
        request: UserBooking<'_>,
    ) -> Result<RecordView, BookingError> {
        let patient = Patient::of_user(user)?;
        // A withdrawn consent stops new bookings until it is given again (the desk, booking
        // for a caller on the phone, does not come through here).
        let mut conn = self.conn().await?;
        let withdrawn = consent::withdrawn_purpose(&mut conn, user.id).await?;
        drop(conn);
        if let Some(purpose) = withdrawn {
            return Err(BookingError::ConsentWithdrawn(purpose));
        }
        self.book(BookRequest {
            specialist_id: request.specialist_id,
            branch_id: request.branch_id,
            start: request.start,
            patient: &patient,
            user: Some(user),
            comment: request.comment,
            source: request.source,
            keep_answer: request.keep_answer,
            actor: Actor {
                user_id: Some(user.id),
                ip: request.ip,
            },
        })
        .await
    }

    /// Books for a visitor without an account, with the proof of their phone (unless the
    /// clinic turned verification off) and their consent, which is recorded. Input that is
    /// wrong anyway (no such doctor, not a free slot) is refused before it counts against
    /// the limits; what counts is every attempt that would reach the MIS and the SMS
    /// gateway. A proof is used only by a booking that happened.
    pub async fn book_anonymous(
        &self,
        request: BookRequest<'_>,
        proof: Option<&str>,
        consent: ConsentGiven,
    ) -> Result<AnonymousBooking, BookingError> {
        let phone = request.patient.phone.as_str().to_owned();
        let (target, slot, proof, lock) = timed(Step::Checks, async {
            // Independent reads at once: the slot, looked up for the doctor as the directory
            // in memory holds them, and on one PostgreSQL connection (all three statements in
            // flight on it together) the doctor in the branch as PostgreSQL has them (a
            // booking never trusts the snapshot: a doctor deactivated or moved since it was
            // built is refused), the phone proof and the phone's SMS day. Their refusals still
            // come in this order, and only input that passed them counts against the limits.
            // The connection is held only for those reads: the slot's day may have to come
            // from the MIS and be stored, which takes a connection of its own, and a request
            // holding one while it waits for another can starve the pool.
            let (early_slot, reads) = tokio::join!(
                async {
                    match self
                        .directory
                        .resolve(request.specialist_id, request.branch_id)
                    {
                        Resolved::Target(target) => {
                            let slot = self.find_slot(&target, request.start).await;
                            Some((target.grid(), slot))
                        }
                        Resolved::Refused(_) | Resolved::Unknown => None,
                    }
                },
                async {
                    let conn = self.conn().await?;
                    let conn: &AsyncPgConnection = &conn;
                    Ok::<_, BookingError>(tokio::join!(
                        target::resolve(conn, request.specialist_id, request.branch_id),
                        async {
                            if !self.rules.anonymous_verify {
                                return Ok(None);
                            }
                            // Checked here, taken in the intent's transaction (so it costs no
                            // commit of its own), given back if the booking does not happen.
                            self.phones
                                .check_on(
                                    conn,
                                    proof,
                                    VerificationPurpose::Booking,
                                    Some(&request.patient.phone),
                                )
                                .await
                                .map(Some)
                                .map_err(BookingError::from)
                        },
                        self.check_sms_day(conn, &phone),
                    ))
                },
            );
            let (target, proof, sms_day) = reads?;
            let target = target?;
            // The slot found early serves only if the snapshot's doctor and branch are
            // PostgreSQL's (the same ids in the MIS, the same zone); otherwise, or when the
            // snapshot did not have them, it is looked up now.
            let slot = match early_slot {
                Some((grid, slot)) if grid == target.grid() => slot?,
                _ => {
                    self.directory.reload_soon();
                    self.find_slot(&target, request.start).await?
                }
            };
            let proof = proof?;
            // The limits and the slot's lock at once (two Redis commands in flight
            // together): a lock taken for an attempt that is then refused is given back.
            let (limited, lock) = tokio::join!(
                self.limits.check(request.actor.ip, &phone),
                timed(Step::SlotLock, self.lock_slot(&target, request.start)),
            );
            if let Err(refused) = limited.and(sms_day) {
                if let Ok(key) = &lock {
                    self.unlock(key).await;
                }
                return Err(refused);
            }
            Ok::<_, BookingError>((target, slot, proof, lock?))
        })
        .await?;
        let token = super::rules::new_link_token();
        let terms = VisitorTerms { proof, consent };
        let view = self
            .book_slot(target, slot, request, Some(&token), Some(terms), Some(lock))
            .await?;
        Ok(AnonymousBooking {
            view,
            manage_token: token,
        })
    }

    /// 429 when the booking's SMS would pass the phone's day of SMS.
    pub(super) async fn check_sms_day(
        &self,
        conn: &diesel_async::AsyncPgConnection,
        phone: &str,
    ) -> Result<(), BookingError> {
        if self.phones.day_is_full(conn, phone).await? {
            return Err(BookingError::RateLimited {
                retry_after_secs: crate::domain::phones::DAY_FULL_RETRY_SECS,
            });
        }
        Ok(())
    }

    /// Books a free slot: intent, MIS, then the record and its SMS in one local transaction.
    pub async fn book(&self, request: BookRequest<'_>) -> Result<RecordView, BookingError> {
        let (target, slot) = timed(Step::Checks, async {
            let target = self
                .target(request.specialist_id, request.branch_id)
                .await?;
            let slot = self.find_slot(&target, request.start).await?;
            if let Some(user) = request.user {
                let mut conn = self.conn().await?;
                // (The desk books through `book_for_caller`, which skips the account's limits.)
                let now = self.clock.now();
                self.rules.check_account(&mut conn, user.id, now).await?;
                self.check_sms_day(&conn, request.patient.phone.as_str())
                    .await?;
            }
            Ok::<_, BookingError>((target, slot))
        })
        .await?;
        self.book_slot(target, slot, request, None, None, None)
            .await
    }

    /// [`Booking::book`] once the doctor and the free slot are known, with the slot's lock
    /// when the caller took it already (`taken`, its key). A visit booked without an account
    /// gets `manage_token`, whose link goes out in the SMS; one booked by a visitor on the
    /// site brings `terms` (the phone proof to take, the consent to record).
    pub(super) async fn book_slot(
        &self,
        target: BookingTarget,
        slot: Slot,
        request: BookRequest<'_>,
        manage_token: Option<&str>,
        terms: Option<VisitorTerms>,
        taken: Option<String>,
    ) -> Result<RecordView, BookingError> {
        let lock = match taken {
            Some(key) => key,
            None => timed(Step::SlotLock, self.lock_slot(&target, request.start)).await?,
        };
        let job = BookJob {
            facts: BookingFacts::of(&request),
            patient: request.patient.clone(),
            user: request.user.cloned(),
            keep_answer: request.keep_answer,
            manage_token: manage_token.map(str::to_owned),
            terms,
            target,
            slot,
            lock,
            released: AtomicBool::new(false),
        };
        let this = self.clone();
        // Spawned, so that the MIS call and the local write run to their end whatever
        // becomes of the request; the answer may be lost, the booking is not half-made.
        let task = audit::spawn_in_request(async move {
            let result = this.book_job(&job).await;
            // A booking the MIS accepted released the slot beside its record's write; every
            // other outcome releases it here.
            if !job.released.load(Ordering::Acquire) {
                timed(Step::Release, this.release_slot(&job)).await;
            }
            if result.is_ok() {
                this.outbox_wakeup.notify_one();
                // The doctor list's "nearest free time" forgets the start after the answer:
                // nobody waits for it, and the next fill of the day rewrites it anyway.
                let schedule = this.schedule.clone();
                tokio::spawn(async move {
                    schedule
                        .forget_free_start(
                            job.target.specialist_id,
                            job.target.branch_id,
                            &job.slot.start,
                        )
                        .await;
                });
            }
            result
        });
        task.await
            .map_err(|e| BookingError::Interrupted(e.to_string()))?
    }

    /// Independent keys, so at once: the slot's lock, and the day in every cache (this
    /// process's memory, Redis, the other replicas'). The MIS decides a slot, so a request
    /// that takes the lock before the day is dropped and reads it free is refused by the MIS,
    /// as it was before.
    async fn release_slot(&self, job: &BookJob) {
        tokio::join!(
            self.unlock(&job.lock),
            self.schedule.invalidate(
                job.target.specialist_id,
                job.target.branch_id,
                job.slot.start.date_naive(),
            ),
        );
        job.released.store(true, Ordering::Release);
    }

    /// A short Redis lock per slot: concurrent requests for one slot do not all reach the MIS.
    pub(super) async fn lock_slot(
        &self,
        target: &BookingTarget,
        start: DateTime<Utc>,
    ) -> Result<String, BookingError> {
        let key = self.redis.key(&format!(
            "slotlock:{}:{}:{}",
            target.specialist_id,
            target.branch_id,
            start.timestamp()
        ));
        let taken: Option<String> = self
            .redis
            .pool
            .set(
                &key,
                "1",
                Some(Expiration::PX(30_000)),
                Some(fred::types::SetOptions::NX),
                false,
            )
            .await?;
        if taken.is_none() {
            return Err(BookingError::SlotTaken);
        }
        Ok(key)
    }

    pub(super) async fn unlock(&self, key: &str) {
        let released: Result<i64, _> = self.redis.pool.del(key).await;
        if let Err(e) = released {
            tracing::warn!(error = %e, "slot lock not released; it expires by itself");
        }
    }

    /// The MIS patient card: the user's known one, one found by e-mail, or a new card.
    async fn patient_card(
        &self,
        patient: &Patient,
        user: Option<&User>,
    ) -> Result<i64, BookingError> {
        if let Some(pcode) = patient.mis_pcode.or(user.and_then(|u| u.mis_pcode)) {
            return Ok(pcode);
        }
        let found = match user {
            Some(user) => self
                .mis
                .find_patient(&PatientQuery::Email(user.email.clone()))
                .await
                .map_err(BookingError::from_mis)?,
            None => None,
        };
        let pcode = match found {
            Some(pcode) => pcode,
            None => self
                .mis
                .add_patient(&patient.mis_card())
                .await
                .map_err(BookingError::from_mis)?,
        };
        if let Some(user) = user {
            let mut conn = self.conn().await?;
            user::set_mis_pcode(&mut conn, user.id, pcode).await?;
        }
        Ok(pcode)
    }

    async fn book_job(&self, job: &BookJob) -> Result<RecordView, BookingError> {
        let (intent, card) = self.open_intent_with_card(job).await?;
        let booked = match card {
            Ok(pcode) => self.reserve_and_write(job, intent, pcode).await,
            Err(e) => {
                self.fail_intent(intent, &e.to_string()).await;
                Err(e)
            }
        };
        // A proof is used only by a booking that happened.
        if let (Err(_), Some(proven)) = (&booked, job.terms.as_ref().and_then(|t| t.proof.as_ref()))
        {
            self.phones.release(proven).await;
        }
        booked
    }

    /// The booking's intent, opened, and the patient's MIS card (or why there is none, the
    /// intent being open). A patient without a card gets one from the MIS while the intent is
    /// written without it: its commit, which waits for the disk, overlaps the MIS's answer
    /// instead of following it. The card is then written into the intent, committed, before
    /// the MIS is asked for the appointment, so an intent left without a card (a crash in
    /// between) was never booked in the MIS, which is how the reconciler reads it.
    async fn open_intent_with_card(
        &self,
        job: &BookJob,
    ) -> Result<(i64, Result<i64, BookingError>), BookingError> {
        let (target, slot) = (&job.target, &job.slot);
        let facts = serde_json::to_value(&job.facts)
            .map_err(|e| BookingError::Store(format!("booking facts: {e}")))?;
        let known = job
            .patient
            .mis_pcode
            .or(job.user.as_ref().and_then(|u| u.mis_pcode));
        let new = NewIntent {
            kind: IntentKind::Book,
            record_id: None,
            specialist_id: target.specialist_id,
            branch_id: target.branch_id,
            starts_at: slot.start.with_timezone(&Utc),
            ends_at: slot.end.with_timezone(&Utc),
            pcode: known,
            mis_id: None,
            request: &facts,
            idempotency_scope: job.keep_answer.as_ref().map(|k| k.scope.as_str()),
            idempotency_key: job.keep_answer.as_ref().map(|k| k.key.as_str()),
            request_hash: job.keep_answer.as_ref().map(|k| k.request_hash.as_str()),
        };
        let open = timed(
            Step::Intent,
            self.open_booking_intent(&new, job.terms.as_ref(), &job.facts),
        );
        if let Some(pcode) = known {
            return Ok((open.await?, Ok(pcode)));
        }
        let (card, opened) = tokio::join!(
            timed(
                Step::PatientCard,
                self.patient_card(&job.patient, job.user.as_ref()),
            ),
            open,
        );
        let intent = opened?;
        let card = match card {
            Ok(pcode) => timed(Step::CardNoted, self.note_pcode(intent, pcode))
                .await
                .map(|()| pcode),
            Err(e) => Err(e),
        };
        Ok((intent, card))
    }

    /// Writes down the intent of a booking (with a visitor's terms: their proof taken and
    /// their consent recorded, all in one transaction) and returns its id.
    async fn open_booking_intent(
        &self,
        new: &NewIntent<'_>,
        terms: Option<&VisitorTerms>,
        facts: &BookingFacts,
    ) -> Result<i64, BookingError> {
        let mut conn = self.conn().await?;
        let Some(terms) = terms else {
            return Ok(intent::insert(&conn, new).await?.id);
        };
        // Statements by key: planned once per connection, not on every booking.
        crate::db::begin_transaction_with(&mut conn, &[LocalSetting::PlanOnce]).await?;
        // One round trip for the three statements (pipelined on the connection; the consents
        // read the current texts themselves); a proof another request took first fails the
        // whole transaction.
        let shared: &AsyncPgConnection = &conn;
        let (taken, opened, consented) = tokio::join!(
            async {
                match &terms.proof {
                    Some(proven) => self.phones.take_checked(shared, proven).await,
                    None => Ok(()),
                }
            },
            intent::insert(shared, new),
            consent::record(
                shared,
                Consenter::Phone(&facts.phone),
                terms.consent,
                facts.actor_ip,
            ),
        );
        // In the order sent: after a failed statement the later ones only say "aborted".
        let outcome = taken.map_err(BookingError::from).and_then(|()| {
            let id = opened?.id;
            consented?;
            Ok::<_, BookingError>(id)
        });
        crate::db::end_transaction(&mut conn, outcome).await
    }

    /// The MIS call of a written-down intent, then the local record.
    async fn reserve_and_write(
        &self,
        job: &BookJob,
        intent: i64,
        pcode: i64,
    ) -> Result<RecordView, BookingError> {
        let (target, slot) = (&job.target, &job.slot);
        // The record's id is taken while the MIS books: the SMS written with the record
        // names it, and the record's write is then one statement.
        let request = reserve_request(target, slot, pcode, None);
        let (reserved, record_id) = tokio::join!(
            timed(Step::Reserve, self.mis.reserve(&request)),
            self.new_record_id(),
        );
        let schedid = match reserved {
            Ok(schedid) => schedid,
            Err(e) => {
                let error = BookingError::from_mis(e);
                self.settle_after_mis_error(intent, &error).await;
                return Err(error);
            }
        };
        // The MIS holds the appointment now, so the slot's lock has done its work and a day
        // read from the MIS shows the slot taken: the release runs beside the record's write.
        let (written, ()) = tokio::join!(
            timed(Step::Record, async {
                // No id, no record: the MIS booking is given back like any failed write.
                let record_id = record_id.map_err(|e| BookingError::NotKept(e.to_string()))?;
                self.write_record(
                    intent,
                    record_id,
                    target,
                    &job.facts,
                    (slot.start, slot.end),
                    pcode,
                    schedid,
                    job.keep_answer.as_ref(),
                    job.manage_token.as_deref(),
                    Some(job.facts.actor()),
                )
                .await
            }),
            timed(Step::Release, self.release_slot(job)),
        );
        match written {
            Ok(view) => Ok(view),
            // The record may be written: not given back (see `write_record`).
            Err(e @ BookingError::Deferred(_)) => {
                self.note_mis_id(intent, schedid).await;
                Err(e)
            }
            Err(e) => {
                // The SCHEDID first, so the reconciler finds the appointment by its id
                // should the cancel below not get through.
                self.note_mis_id(intent, schedid).await;
                // The MIS holds a booking nobody here knows about: give the slot back. If
                // even that fails, the intent stays pending and the reconciler settles it.
                match self
                    .mis
                    .cancel(target.branch_mis_id, schedid, Some(pcode))
                    .await
                {
                    Ok(()) => {
                        tracing::warn!(
                            schedid,
                            intent,
                            "local write failed; the MIS booking was cancelled again"
                        );
                        // The slot is free again: the day read meanwhile shows it taken.
                        self.schedule
                            .invalidate(
                                target.specialist_id,
                                target.branch_id,
                                slot.start.date_naive(),
                            )
                            .await;
                        self.fail_intent(intent, &e.to_string()).await;
                    }
                    Err(cancel) => {
                        tracing::error!(schedid, intent, error = %cancel, "local write failed and the MIS booking could not be cancelled; the reconciler will settle it");
                        self.keep_intent_pending(intent, &format!("{e}; cancel: {cancel}"))
                            .await;
                    }
                }
                Err(e)
            }
        }
    }

    /// An id for a booking's record, taken before the record is written (see
    /// [`booked::next_record_id`]).
    pub(super) async fn new_record_id(&self) -> Result<i64, BookingError> {
        let mut conn = self.conn().await?;
        Ok(booked::next_record_id(&mut conn).await?)
    }

    /// Writes the record of a booking the MIS accepted (with the id `record_id` taken for it),
    /// its SMS, the audit row (as `audit_as`, when given) and the intent's `done` with
    /// `schedid` in one statement ([`booked::write_booked`]), with the stored answer in the
    /// same transaction when there is one. Of two writers of one intent (the request and the
    /// reconciler) the second finds it resolved and writes nothing.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn write_record(
        &self,
        intent: i64,
        record_id: i64,
        target: &BookingTarget,
        facts: &BookingFacts,
        (start, end): (DateTime<Tz>, DateTime<Tz>),
        pcode: i64,
        schedid: i64,
        keep_answer: Option<&AnswerToKeep>,
        manage_token: Option<&str>,
        audit_as: Option<Actor>,
    ) -> Result<RecordView, BookingError> {
        let link = self
            .rules
            .manage_link(record_id, facts.user_id, manage_token);
        let body = self
            .rules
            .notice_text(Notice::Booked, target.place(), start, link.as_deref());
        let token_hash = manage_token.map(sha256_hex);
        let new = NewRecord {
            mis_id: schedid,
            specialist_id: target.specialist_id,
            branch_id: target.branch_id,
            starts_at: start.with_timezone(&Utc),
            ends_at: end.with_timezone(&Utc),
            user_id: facts.user_id,
            patient_pcode: pcode,
            patient_last_name: &facts.last_name,
            patient_first_name: &facts.first_name,
            patient_middle_name: facts.middle_name.as_deref(),
            patient_phone: &facts.phone,
            patient_email: facts.email.as_deref(),
            patient_birth_date: facts.birth_date,
            comment: facts.comment.as_deref(),
            source: facts.source,
            manage_token_hash: token_hash.as_deref(),
            booked_by: facts.actor_user_id,
        };
        let client_ip = audit_as.map(|actor| actor.ip.to_string());
        let request_id = audit::current_request_id();
        let write = BookedWrite {
            intent_id: intent,
            record_id,
            record: &new,
            message: BookedMessage {
                kind: Notice::Booked.kind(),
                body: &body,
            },
            audit: audit_as.map(|actor| BookedAudit {
                actor_user_id: actor.user_id,
                client_ip: client_ip.as_deref().unwrap_or_default(),
                request_id: request_id.as_deref(),
            }),
        };
        let mut conn = self.conn().await?;
        let written = match keep_answer {
            // One statement is its own transaction.
            None => booked::write_booked(&mut conn, &write).await,
            // A stored answer commits with its record: one transaction for both.
            Some(keep) => {
                let outcome = async {
                    crate::db::begin_transaction_with(&mut conn, &[LocalSetting::PlanOnce]).await?;
                    let written = async {
                        let Some(view) = booked::write_booked(&mut conn, &write).await? else {
                            return Ok(None);
                        };
                        idempotency::insert(
                            &mut conn,
                            &keep.scope,
                            &keep.key,
                            &keep.request_hash,
                            i32::from(keep.status),
                            &(keep.render)(&view),
                        )
                        .await?;
                        Ok::<_, diesel::result::Error>(Some(view))
                    }
                    .await;
                    crate::db::end_transaction(&mut conn, written).await
                };
                outcome.await
            }
        };
        match written {
            Ok(Some(view)) => Ok(view),
            // Resolved by the other writer while this one waited for the intent's row: it
            // wrote the record or found no booking.
            Ok(None) => {
                drop(conn);
                self.resolved_elsewhere(intent).await
            }
            Err(e) if record::is_slot_conflict(&e) => {
                drop(conn);
                // Someone else's record holds the slot (the other writer of this intent ends
                // with `Ok(None)` above, never here); asked anyway, so that an intent settled
                // meanwhile answers with its own record.
                match self.resolved_elsewhere(intent).await {
                    Err(BookingError::RecordChanged) => Err(BookingError::SlotTaken),
                    settled => settled,
                }
            }
            // Asked again before the MIS booking is given back as a failed write's would be.
            Err(e) if booked::outcome_unknown(&e) => {
                drop(conn);
                self.after_lost_answer(intent, e, not_kept).await
            }
            Err(e) => Err(not_kept(e)),
        }
    }
}

/// A record's write that failed: the MIS booking is to be given back.
fn not_kept(e: diesel::result::Error) -> BookingError {
    tracing::error!(error = %e, "record not written");
    BookingError::NotKept(e.to_string())
}

/// A booking after its slot check, owned, so it can outlive the request.
struct BookJob {
    facts: BookingFacts,
    /// The patient as the request gave them, for the MIS card.
    patient: Patient,
    user: Option<User>,
    keep_answer: Option<AnswerToKeep>,
    /// The visit link's token of a booking without an account.
    manage_token: Option<String>,
    terms: Option<VisitorTerms>,
    target: BookingTarget,
    slot: Slot,
    /// The slot's Redis lock.
    lock: String,
    /// Whether the lock is released and the day dropped from the caches already.
    released: AtomicBool,
}

/// What a visitor booking on the site settles with the booking's intent: the phone proof
/// it takes (none when the clinic turned verification off) and the consent it records.
pub(super) struct VisitorTerms {
    pub proof: Option<ProvenPhone>,
    pub consent: ConsentGiven,
}

/// A visit booked without an account, and the token of its link (sent by SMS, stored
/// hashed).
#[derive(Debug)]
pub struct AnonymousBooking {
    pub view: RecordView,
    pub manage_token: String,
}

/// What a booking writes besides the slot: who the patient is, whose account, the comment,
/// where it came from and who asked. Stored in the intent, so the reconciler can write the
/// record the request would have written.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BookingFacts {
    pub last_name: String,
    pub first_name: String,
    pub middle_name: Option<String>,
    pub phone: String,
    pub birth_date: Option<NaiveDate>,
    pub email: Option<String>,
    pub user_id: Option<i64>,
    pub comment: Option<String>,
    pub source: RecordSource,
    pub actor_user_id: Option<i64>,
    pub actor_ip: IpAddr,
}

impl BookingFacts {
    fn of(request: &BookRequest<'_>) -> Self {
        let patient = request.patient;
        Self {
            last_name: patient.name.last.as_str().to_owned(),
            first_name: patient.name.first.as_str().to_owned(),
            middle_name: patient.name.middle.as_ref().map(|m| m.as_str().to_owned()),
            phone: patient.phone.as_str().to_owned(),
            birth_date: patient.birth_date.map(BirthDate::date),
            email: patient.email.as_ref().map(|e| e.as_str().to_owned()),
            user_id: request.user.map(|u| u.id),
            comment: request.comment.map(|c| c.as_str().to_owned()),
            source: request.source,
            actor_user_id: request.actor.user_id,
            actor_ip: request.actor.ip,
        }
    }

    pub fn actor(&self) -> Actor {
        Actor {
            user_id: self.actor_user_id,
            ip: self.actor_ip,
        }
    }
}

/// The MIS message that books `slot` for card `pcode`, or moves appointment `move_schedid`
/// there.
pub fn reserve_request(
    target: &BookingTarget,
    slot: &Slot,
    pcode: i64,
    move_schedid: Option<i64>,
) -> ReserveRequest {
    ReserveRequest {
        branch_mis_id: target.branch_mis_id,
        doctor_mis_id: target.specialist_mis_id,
        date: slot.start.date_naive(),
        start: slot.start.time(),
        end: slot.end.time(),
        schedident: slot.schedident,
        pcode,
        move_schedid,
    }
}

/// A booking for a logged-in patient (pages and API).
pub struct UserBooking<'a> {
    pub specialist_id: i64,
    pub branch_id: i64,
    pub start: DateTime<Utc>,
    pub comment: Option<&'a Comment>,
    pub source: RecordSource,
    pub keep_answer: Option<AnswerToKeep>,
    pub ip: std::net::IpAddr,
}
