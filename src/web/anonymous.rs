//! Booking without an account on the pages: the visitor who picks a free slot gets a form
//! (name, phone, birth date, consent), then the code from the SMS (`web::verify`), then the
//! visit's own page (`web::visit`). The chosen slot travels with every step, also through
//! login and registration (`next`), so nobody has to find it again.

use askama::Template;
use askama_web::WebTemplate;
use axum::{
    extract::{Path, State},
    http::StatusCode,
    response::{IntoResponse, Redirect, Response},
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

// The base layout names roles.
use crate::db::models::user::Role;
use crate::{
    app::{App, AppState},
    auth::session::AuthSession,
    client_ip::ClientIp,
    domain::{
        audit::Actor,
        booking::{BookRequest, BookingError, BookingTarget, Patient},
        consent::ConsentGiven,
        values::{BirthDate, Comment, FieldErrors, FullName, NamePart, Phone, RecordSource},
    },
    error::AppError,
    extract::{Form, path_id},
    params,
    web::{
        Layout,
        booking::back_to_week,
        summary::VisitSummary,
        verify::{self, PendingAction},
    },
};

/// A booking waiting for its code, with what the pages show about it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PendingBooking {
    pub doctor_id: i64,
    pub branch_id: i64,
    pub start: DateTime<Utc>,
    pub last_name: String,
    pub first_name: String,
    pub middle_name: Option<String>,
    /// E.164.
    pub phone: String,
    pub birth_date: chrono::NaiveDate,
    pub comment: Option<String>,
    pub consent: (bool, bool),
    pub doctor_name: String,
    pub place: String,
    pub when: String,
    /// The slot's day in the branch's calendar, for the way back to its week (absent in
    /// bookings begun before it was kept).
    #[serde(default)]
    pub day: Option<chrono::NaiveDate>,
}

impl PendingBooking {
    pub fn summary(&self) -> Vec<(String, String)> {
        vec![
            ("Врач".into(), self.doctor_name.clone()),
            ("Филиал".into(), self.place.clone()),
            ("Дата и время".into(), self.when.clone()),
            (
                "Пациент".into(),
                [
                    Some(self.last_name.as_str()),
                    Some(self.first_name.as_str()),
                    self.middle_name.as_deref(),
                ]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(" "),
            ),
        ]
    }

    pub fn doctor_path(&self) -> String {
        match self.day {
            Some(day) => format!(
                "{}#slots",
                crate::web::slots::doctor_week_url(self.doctor_id, self.branch_id, day)
            ),
            None => format!(
                "/doctors/{}?branch_id={}#slots",
                self.doctor_id, self.branch_id
            ),
        }
    }
}

/// The visitor's form, as typed.
#[derive(Debug, Default, Deserialize)]
pub struct AnonymousForm {
    #[serde(default)]
    pub branch_id: String,
    #[serde(default)]
    pub start: String,
    #[serde(default)]
    pub last_name: String,
    #[serde(default)]
    pub first_name: String,
    #[serde(default)]
    pub middle_name: String,
    #[serde(default)]
    pub phone: String,
    #[serde(default)]
    pub birth_date: String,
    #[serde(default)]
    pub comment: String,
    pub consent_personal: Option<String>,
    pub consent_health: Option<String>,
}

/// What the form says back: refusals by field, a refusal of the whole form, or that the
/// time itself cannot be booked (then the form is not shown).
#[derive(Default)]
pub struct Feedback {
    pub errors: FieldErrors,
    pub error: Option<String>,
    pub unavailable: Option<String>,
}

#[derive(Template, WebTemplate)]
#[template(path = "pages/booking/anonymous.html")]
pub struct AnonymousPage {
    layout: Layout,
    doctor_id: i64,
    branch_id: i64,
    summary: VisitSummary,
    start: String,
    /// `next=<this page>`, for the login and registration links.
    next_query: String,
    form: AnonymousForm,
    inputs: Vec<Input>,
    errors: FieldErrors,
    error: Option<String>,
    /// Why this time cannot be booked (passed, not on the grid, taken).
    unavailable: Option<String>,
    /// The doctor page at the week of this time.
    back_href: String,
}

/// One text input of the form.
pub struct Input {
    name: &'static str,
    label: &'static str,
    kind: &'static str,
    auto: &'static str,
    value: String,
}

impl AnonymousForm {
    fn inputs(&self) -> Vec<Input> {
        let input = |name, label, kind, auto, value: &String| Input {
            name,
            label,
            kind,
            auto,
            value: value.clone(),
        };
        vec![
            input(
                "last_name",
                "Фамилия",
                "text",
                "family-name",
                &self.last_name,
            ),
            input("first_name", "Имя", "text", "given-name", &self.first_name),
            input(
                "middle_name",
                "Отчество (если есть)",
                "text",
                "additional-name",
                &self.middle_name,
            ),
            input(
                "phone",
                "Мобильный телефон — пришлём код и SMS о записи",
                "tel",
                "tel",
                &self.phone,
            ),
            input(
                "birth_date",
                "Дата рождения",
                "date",
                "bday",
                &self.birth_date,
            ),
            input(
                "comment",
                "Комментарий для врача (необязательно)",
                "text",
                "off",
                &self.comment,
            ),
        ]
    }
}

/// The booking form for a visitor without an account.
pub async fn anonymous_page(
    app: &App,
    session: &AuthSession,
    target: &BookingTarget,
    start: DateTime<Utc>,
    form: AnonymousForm,
    feedback: Feedback,
) -> Result<AnonymousPage, AppError> {
    let start_param = target.zone.local(&start).to_rfc3339();
    let here = format!(
        "/doctors/{}/book?{}",
        target.specialist_id,
        serde_urlencoded::to_string([
            ("branch_id", target.branch_id.to_string()),
            ("start", start_param.clone()),
        ])
        .unwrap_or_default()
    );
    Ok(AnonymousPage {
        layout: Layout::with_form(session, None).await?,
        doctor_id: target.specialist_id,
        branch_id: target.branch_id,
        summary: VisitSummary::of_slot(app, target, start).await?,
        start: start_param,
        next_query: serde_urlencoded::to_string([("next", here)]).unwrap_or_default(),
        inputs: form.inputs(),
        form,
        errors: feedback.errors,
        error: feedback.error,
        unavailable: feedback.unavailable,
        back_href: back_to_week(target, start),
    })
}

/// The form's values, or the refusals by field.
fn validate(
    form: &AnonymousForm,
    today: chrono::NaiveDate,
) -> Result<(Patient, Option<Comment>, ConsentGiven), FieldErrors> {
    let mut errors = FieldErrors::new();
    let last = errors.check("last_name", NamePart::parse(&form.last_name));
    let first = errors.check("first_name", NamePart::parse(&form.first_name));
    let middle = errors.check(
        "middle_name",
        NamePart::parse_optional(Some(form.middle_name.as_str())),
    );
    let phone = errors.check("phone", Phone::parse(&form.phone));
    let birth_date = errors.check("birth_date", BirthDate::parse(&form.birth_date, today));
    let comment = errors.check("comment", Comment::parse(&form.comment));
    let consent = errors.check(
        "consent",
        crate::web::ticked_consent(form.consent_personal.as_ref(), form.consent_health.as_ref()),
    );
    errors.or_value(|| {
        Some((
            Patient {
                name: FullName::from_parts(last?, first?, middle?),
                phone: phone?,
                birth_date: Some(birth_date?),
                email: None,
                mis_pcode: None,
            },
            comment?,
            consent?,
        ))
    })
}

/// `POST /doctors/{id}/book/anonymous`: checks the form and the slot, sends the code.
pub async fn start_anonymous_booking(
    State(state): State<AppState>,
    session: AuthSession,
    ClientIp(ip): ClientIp,
    Path(id): Path<String>,
    Form(form): Form<AnonymousForm>,
) -> Result<Response, AppError> {
    let branch_id = params::field("branch_id", params::required_id(&form.branch_id))?;
    let target = state.booking.target(path_id(&id)?, branch_id).await?;
    let start = params::field("start", params::instant(&form.start))?;
    let today = state.booking.clock.now().date_naive();
    let (patient, comment, consent) = match validate(&form, today) {
        Ok(valid) => valid,
        Err(errors) => {
            let feedback = Feedback {
                errors,
                ..Default::default()
            };
            return refused(&state, &session, &target, start, form, feedback).await;
        }
    };
    // The slot is checked before a code costs an SMS.
    if let Err(e) = state.booking.find_slot(&target, start).await {
        // The time itself is refused: choosing another is the way on, so the form goes.
        let about_the_time = matches!(
            e,
            BookingError::StartInPast | BookingError::NotASlot | BookingError::SlotTaken
        );
        let message = AppError::from(e).public_message();
        let feedback = if about_the_time {
            Feedback {
                unavailable: Some(message),
                ..Default::default()
            }
        } else {
            Feedback {
                error: Some(message),
                ..Default::default()
            }
        };
        return refused(&state, &session, &target, start, form, feedback).await;
    }
    let pending = PendingBooking {
        doctor_id: target.specialist_id,
        branch_id: target.branch_id,
        start,
        last_name: patient.name.last.as_str().to_owned(),
        first_name: patient.name.first.as_str().to_owned(),
        middle_name: patient.name.middle.as_ref().map(|m| m.as_str().to_owned()),
        phone: patient.phone.as_str().to_owned(),
        birth_date: patient.birth_date.map_or(today, BirthDate::date),
        comment: comment.map(|c| c.as_str().to_owned()),
        consent: (consent.personal_data, consent.health_data),
        doctor_name: target.specialist_name.to_string(),
        place: format!("{}, {}", target.branch_name, target.branch_address),
        when: crate::web::labels::visit_when_in(target.zone, start),
        day: Some(target.zone.local(&start).date_naive()),
    };
    if !state.booking.rules.anonymous_verify {
        // The clinic's call centre confirms every booking: no code.
        return complete(&state, &session, pending, None, ip).await;
    }
    match verify::begin(&state, &session, PendingAction::Booking(pending), ip, None).await? {
        Ok(next) => Ok(next),
        Err(e) => {
            let feedback = Feedback {
                error: Some(e.public_message()),
                ..Default::default()
            };
            let mut response = refused(&state, &session, &target, start, form, feedback).await?;
            *response.status_mut() = e.status();
            crate::web::keep_retry_after(&mut response, &e);
            Ok(response)
        }
    }
}

async fn refused(
    app: &App,
    session: &AuthSession,
    target: &BookingTarget,
    start: DateTime<Utc>,
    form: AnonymousForm,
    feedback: Feedback,
) -> Result<Response, AppError> {
    let page = anonymous_page(app, session, target, start, form, feedback).await?;
    Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
}

/// Books the waiting visit (with the proof of the code, unless codes are off) and opens
/// the visit's page.
pub async fn complete(
    app: &App,
    session: &AuthSession,
    pending: PendingBooking,
    token: Option<&str>,
    ip: std::net::IpAddr,
) -> Result<Response, AppError> {
    let name = FullName::from_parts(
        NamePart::parse(&pending.last_name).map_err(|e| AppError::field("last_name", e.0))?,
        NamePart::parse(&pending.first_name).map_err(|e| AppError::field("first_name", e.0))?,
        NamePart::parse_optional(pending.middle_name.as_deref())
            .map_err(|e| AppError::field("middle_name", e.0))?,
    );
    let patient = Patient {
        name,
        phone: Phone::from_stored(pending.phone.clone()),
        birth_date: Some(BirthDate::from_stored(pending.birth_date)),
        email: None,
        mis_pcode: None,
    };
    let comment = pending
        .comment
        .as_deref()
        .map(Comment::parse)
        .transpose()
        .map_err(|e| AppError::field("comment", e.0))?
        .flatten();
    let booked = app
        .booking
        .book_anonymous(
            BookRequest {
                specialist_id: pending.doctor_id,
                branch_id: pending.branch_id,
                start: pending.start,
                patient: &patient,
                user: None,
                comment: comment.as_ref(),
                source: RecordSource::Anonymous,
                keep_answer: None,
                actor: Actor { user_id: None, ip },
            },
            token,
            ConsentGiven {
                personal_data: pending.consent.0,
                health_data: pending.consent.1,
            },
        )
        .await;
    match booked {
        Ok(booked) => {
            Ok(Redirect::to(&format!("/v/{}?booked=1", booked.manage_token)).into_response())
        }
        Err(e @ (BookingError::SlotTaken | BookingError::StartInPast | BookingError::NotASlot)) => {
            let e = AppError::from(e);
            Ok(crate::web::errors::problem_page(
                session,
                e.status(),
                "Записаться не удалось",
                &e.public_message(),
                (&pending.doctor_path(), "Выбрать другое время"),
            )
            .await?)
        }
        Err(e) => Err(e.into()),
    }
}
