//! The SMS.ru emulator (`docs/sms-gateways.md` B1, B6): `POST` (or `GET`) `/sms/send`,
//! form-encoded, answering JSON with `json=1` and the legacy text lines otherwise;
//! `/sms/status`; `/my/balance`; `GET`/`POST /_emulator/faults` with [`SmsFaults`];
//! `GET /_emulator/messages`, every message received with its status now.
//!
//! `sms/status` (`sms_id`, comma-separated) answers each message's code on the emulator's
//! clock: 100 (queued) when received, 101 (handed to the operator) one
//! [`SmsFaults::status_step_ms`] later, 102 (in transit) after two, and its final code after
//! three: 103 (delivered), or the [`SmsFaults::undelivered_code`] it was received under
//! (104 expired, 105, 107, 108 ...). An id it never issued is a per-id `ERROR` with -1.
//! [`SmsFaults::late_answer_ms`] takes the message and answers only after that delay, as a
//! gateway slower than its client's timeout.
//!
//! `api_id` must be the configured one (top-level 200 otherwise). Each recipient gets its
//! own outcome: 202 for a number that is not one, 203 for an empty text, 205 beyond eight
//! parts, otherwise 100 with an `sms_id` of the form `NNNNNN-NNNNNNN`. The balance (1000
//! roubles at start) pays 2.50 per part; a request it cannot pay for is a top-level 201.
//! `test=1` answers the same without charging. Accepted messages are recorded
//! ([`EmulatorControl::sms_messages`]).

use std::time::Duration;

use axum::{
    Form, Json, Router,
    extract::State,
    http::{StatusCode, header},
    response::{Html, IntoResponse, Response},
    routing::get,
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::{EmulatorControl, faults_routes};

/// The `api_id` the emulator accepts unless told otherwise.
pub const DEFAULT_SMS_API_ID: &str = "demo-smsru-key";
/// The balance at start: 1000.00 roubles.
const START_BALANCE_KOPECKS: i64 = 100_000;
/// The price of one part.
pub const PRICE_PER_PART_KOPECKS: i64 = 250;
/// SMS.ru refuses texts of more parts (code 205).
const MAX_PARTS: u32 = 8;

/// One message the emulator accepted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SentSms {
    /// Digits, as the gateway normalised them (`79161234567`).
    pub to: String,
    pub text: String,
    /// `from`, when given.
    pub sender: Option<String>,
    pub sms_id: String,
    pub received_at: DateTime<Utc>,
    pub parts: u32,
    /// Sent with `test=1`: answered, not charged, not delivered.
    pub test: bool,
    /// The code `sms/status` ends with: 103, or the undelivered code in force when it came.
    pub final_code: i32,
}

/// A received message and its status now, as `GET /_emulator/messages` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReceivedSms {
    #[serde(flatten)]
    pub sms: SentSms,
    /// What `sms/status` answers for it now.
    pub status_code: i32,
}

/// Fault switches of the SMS emulator. Default: none.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SmsFaults {
    /// Added before every answer.
    pub latency_ms: u64,
    /// Answer HTTP 500 with an HTML page.
    pub http_500: bool,
    /// Answer HTTP 503, as a gateway down for maintenance.
    pub down: bool,
    /// Answer every send with this SMS.ru code: account-wide codes (200, 201, 210–213,
    /// 220, 300–302, 500 and up) at the top level, the others for each number.
    pub error_code: Option<i32>,
    /// Take every message (recorded, charged), then answer only after this many
    /// milliseconds: a client with a shorter timeout never learns that it was taken.
    pub late_answer_ms: u64,
    /// Messages received while this is set end their `sms/status` progression with this
    /// code (104 expired, 105, 106, 107, 108, 150: not delivered) instead of 103.
    pub undelivered_code: Option<i32>,
    /// The time between two steps of the `sms/status` progression (100 → 101 → 102 →
    /// final); unset: one second.
    pub status_step_ms: Option<u64>,
}

/// The step of the status progression when [`SmsFaults::status_step_ms`] is unset.
pub const DEFAULT_STATUS_STEP_MS: u64 = 1000;

/// The `sms/status` code of a message received at `received_at`, at `now`.
pub fn status_at(sms: &SentSms, now: DateTime<Utc>, step_ms: u64) -> i32 {
    let elapsed = (now - sms.received_at).num_milliseconds().max(0);
    let step = i64::try_from(step_ms).unwrap_or(i64::MAX).max(1);
    match elapsed / step {
        0 => 100,
        1 => 101,
        2 => 102,
        _ => sms.final_code,
    }
}

/// The gateway account and what it has received.
#[derive(Debug, Clone)]
pub(crate) struct SmsState {
    pub(crate) api_id: String,
    pub(crate) balance_kopecks: i64,
    pub(crate) messages: Vec<SentSms>,
    next_id: u64,
}

impl SmsState {
    pub(crate) fn new(api_id: &str) -> Self {
        Self {
            api_id: api_id.to_owned(),
            balance_kopecks: START_BALANCE_KOPECKS,
            messages: Vec::new(),
            next_id: 1_000_000,
        }
    }
}

/// The SMS emulator's routes.
pub fn router(control: EmulatorControl) -> Router {
    Router::new()
        .route("/sms/send", get(send).post(send))
        .route("/sms/status", get(status).post(status))
        .route("/my/balance", get(balance).post(balance))
        .route("/_emulator/messages", get(list_messages))
        .merge(faults_routes(
            EmulatorControl::sms_faults,
            EmulatorControl::set_sms_faults,
        ))
        .with_state(control)
}

/// The text of a code, as SMS.ru words it (shortened).
fn code_text(code: i32) -> &'static str {
    match code {
        100 => "Сообщение принято к отправке",
        200 => "Неправильный api_id",
        201 => "Не хватает средств на лицевом счету",
        202 => "Неправильно указан номер телефона получателя, либо на него нет маршрута",
        203 => "Нет текста сообщения",
        204 => "Имя отправителя не согласовано с администрацией",
        205 => "Сообщение слишком длинное (превышает 8 СМС)",
        206 => "Будет превышен или уже превышен дневной лимит на отправку сообщений",
        207 => "На этот номер нет маршрута для доставки сообщений",
        209 => "Вы добавили этот номер (или один из номеров) в стоп-лист",
        220 => "Сервис временно недоступен, попробуйте чуть позже",
        230 => "Превышен общий лимит количества сообщений на этот номер в день",
        231 => "Превышен лимит одинаковых сообщений на этот номер в минуту",
        232 => "Превышен лимит одинаковых сообщений на этот номер в день",
        500 => "Ошибка на сервере. Повторите запрос",
        _ => "Ошибка",
    }
}

fn is_account_wide(code: i32) -> bool {
    matches!(code, 200 | 201 | 210..=213 | 220 | 300..=302) || code >= 500
}

/// Parts of a text: 160/153 characters when every one is plain ASCII, 70/67 otherwise
/// (any Cyrillic letter forces UCS-2).
pub fn parts_of(text: &str) -> u32 {
    let (single, multi) = if text.is_ascii() {
        (160, 153)
    } else {
        (70, 67)
    };
    let len = text.chars().count();
    if len <= single {
        1
    } else {
        len.div_ceil(multi) as u32
    }
}

/// A recipient as SMS.ru takes it: digits only, 10–15 of them (a Russian `8…` becomes `7…`).
fn normalise(raw: &str) -> Option<String> {
    let digits: String = raw.chars().filter(char::is_ascii_digit).collect();
    let digits = match digits.len() {
        11 if digits.starts_with('8') => format!("7{}", &digits[1..]),
        10 if digits.starts_with('9') => format!("7{digits}"),
        _ => digits,
    };
    (11..=15).contains(&digits.len()).then_some(digits)
}

fn money(kopecks: i64) -> Value {
    json!(kopecks as f64 / 100.0)
}

/// A top-level answer in the asked format.
fn top_level(json: bool, code: i32) -> Response {
    if json {
        Json(json!({
            "status": "ERROR",
            "status_code": code,
            "status_text": code_text(code),
        }))
        .into_response()
    } else {
        format!("{code}\n").into_response()
    }
}

/// One recipient's result: the text and its parts, or an SMS.ru code.
type Outcome = Result<(String, u32), i32>;

async fn send(
    State(control): State<EmulatorControl>,
    Form(params): Form<Vec<(String, String)>>,
) -> Response {
    if let Some(response) = faulted(&control).await {
        return response;
    }
    let late = control.sms_faults().late_answer_ms;
    let response = take(&control, &params);
    if late > 0 {
        // Taken and recorded; the answer comes too late for an impatient client.
        tokio::time::sleep(Duration::from_millis(late)).await;
    }
    response
}

/// Takes (records and charges) what `sms/send` asks for, and answers.
fn take(control: &EmulatorControl, params: &[(String, String)]) -> Response {
    let param = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let json = param("json") == Some("1");
    let test = param("test") == Some("1");
    let sender = param("from").filter(|s| !s.is_empty()).map(str::to_owned);
    let common_text = param("msg").or_else(|| param("text")).unwrap_or("");
    // `to=a,b` with one text, or `to[number]=text` / `multi[number]=text` per number.
    let mut recipients: Vec<(String, String)> = param("to")
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(|n| (n.to_owned(), common_text.to_owned()))
        .collect();
    for (key, value) in params {
        let number = key
            .strip_prefix("to[")
            .or_else(|| key.strip_prefix("multi["))
            .and_then(|rest| rest.strip_suffix(']'));
        if let Some(number) = number {
            recipients.push((number.to_owned(), value.clone()));
        }
    }
    let faults = control.sms_faults();
    let fault_code = faults.error_code;
    let final_code = faults.undelivered_code.unwrap_or(103);
    let now = control.now();

    let shared = control.shared();
    let mut state = shared.sms();
    if param("api_id") != Some(state.api_id.as_str()) {
        return top_level(json, 200);
    }
    if let Some(code) = fault_code.filter(|c| is_account_wide(*c)) {
        return top_level(json, code);
    }
    if recipients.is_empty() {
        return top_level(json, 202);
    }
    // Per-number outcomes first, then the bill for the accepted ones.
    let outcomes: Vec<(String, Outcome)> = recipients
        .into_iter()
        .map(|(raw, text)| {
            let key = normalise(&raw).unwrap_or_else(|| raw.clone());
            let outcome = match normalise(&raw) {
                None => Err(202),
                Some(_) if text.trim().is_empty() => Err(203),
                Some(_) if parts_of(&text) > MAX_PARTS => Err(205),
                Some(_) => match fault_code {
                    Some(code) => Err(code),
                    None => {
                        let parts = parts_of(&text);
                        Ok((text, parts))
                    }
                },
            };
            (key, outcome)
        })
        .collect();
    let cost: i64 = outcomes
        .iter()
        .filter_map(|(_, o)| o.as_ref().ok())
        .map(|(_, parts)| i64::from(*parts) * PRICE_PER_PART_KOPECKS)
        .sum();
    if !test && cost > state.balance_kopecks {
        return top_level(json, 201);
    }
    let mut sms = Map::new();
    let mut ids = Vec::new();
    for (number, outcome) in outcomes {
        let entry = match outcome {
            Ok((text, parts)) => {
                state.next_id += 1;
                let sms_id = format!("{}-{:07}", now.format("%Y%m"), state.next_id);
                if !test {
                    state.balance_kopecks -= i64::from(parts) * PRICE_PER_PART_KOPECKS;
                }
                state.messages.push(SentSms {
                    to: number.clone(),
                    text,
                    sender: sender.clone(),
                    sms_id: sms_id.clone(),
                    received_at: now,
                    parts,
                    test,
                    final_code,
                });
                ids.push(sms_id.clone());
                json!({"status": "OK", "status_code": 100, "sms_id": sms_id})
            }
            Err(code) => {
                ids.push(code.to_string());
                json!({"status": "ERROR", "status_code": code, "status_text": code_text(code)})
            }
        };
        sms.insert(number, entry);
    }
    let balance = state.balance_kopecks;
    drop(state);
    if json {
        Json(json!({
            "status": "OK",
            "status_code": 100,
            "sms": sms,
            "balance": money(balance),
        }))
        .into_response()
    } else {
        format!(
            "100\n{}\nbalance={:.2}\n",
            ids.join("\n"),
            balance as f64 / 100.0
        )
        .into_response()
    }
}

/// `sms/status`: the code of each id in `sms_id` (comma-separated).
async fn status(
    State(control): State<EmulatorControl>,
    Form(params): Form<Vec<(String, String)>>,
) -> Response {
    if let Some(response) = faulted(&control).await {
        return response;
    }
    let param = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let json = param("json") == Some("1");
    let step = control
        .sms_faults()
        .status_step_ms
        .unwrap_or(DEFAULT_STATUS_STEP_MS);
    let now = control.now();
    let shared = control.shared();
    let state = shared.sms();
    if param("api_id") != Some(state.api_id.as_str()) {
        return top_level(json, 200);
    }
    let ids: Vec<&str> = param("sms_id")
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|id| !id.is_empty())
        .collect();
    if ids.is_empty() {
        return top_level(json, 202);
    }
    let codes: Vec<(String, i32)> = ids
        .iter()
        .map(|id| {
            let code = state
                .messages
                .iter()
                .find(|m| m.sms_id == *id)
                .map_or(-1, |m| status_at(m, now, step));
            ((*id).to_owned(), code)
        })
        .collect();
    drop(state);
    if json {
        let sms: Map<String, Value> = codes
            .into_iter()
            .map(|(id, code)| {
                let entry = if code == -1 {
                    json!({"status": "ERROR", "status_code": -1, "status_text": "Сообщение не найдено"})
                } else {
                    json!({"status": "OK", "status_code": code, "cost": money(PRICE_PER_PART_KOPECKS), "status_text": status_text(code)})
                };
                (id, entry)
            })
            .collect();
        Json(json!({"status": "OK", "status_code": 100, "sms": sms})).into_response()
    } else {
        let lines: Vec<String> = codes.iter().map(|(_, code)| code.to_string()).collect();
        format!("100\n{}\n", lines.join("\n")).into_response()
    }
}

/// The text of a message status, as SMS.ru words it (shortened).
fn status_text(code: i32) -> &'static str {
    match code {
        100 => "Сообщение находится в нашей очереди",
        101 => "Сообщение передается оператору",
        102 => "Сообщение отправлено (в пути)",
        103 => "Сообщение доставлено",
        104 => "Не может быть доставлено: время жизни истекло",
        105 => "Не может быть доставлено: удалено оператором",
        106 => "Не может быть доставлено: сбой в телефоне",
        107 => "Не может быть доставлено: неизвестная причина",
        108 => "Не может быть доставлено: отклонено",
        150 => "Не может быть доставлено: не найден маршрут на данный номер",
        _ => "Статус",
    }
}

/// `GET /_emulator/messages`: every message received, oldest first, with its status now.
async fn list_messages(State(control): State<EmulatorControl>) -> Json<Vec<ReceivedSms>> {
    Json(control.sms_received())
}

async fn balance(
    State(control): State<EmulatorControl>,
    Form(params): Form<Vec<(String, String)>>,
) -> Response {
    if let Some(response) = faulted(&control).await {
        return response;
    }
    let json = params.iter().any(|(k, v)| k == "json" && v == "1");
    let state = control.shared();
    let state = state.sms();
    let api_id = params
        .iter()
        .find(|(k, _)| k == "api_id")
        .map(|(_, v)| v.as_str());
    if api_id != Some(state.api_id.as_str()) {
        return top_level(json, 200);
    }
    if json {
        Json(json!({"status": "OK", "status_code": 100, "balance": money(state.balance_kopecks)}))
            .into_response()
    } else {
        format!("100\n{:.2}\n", state.balance_kopecks as f64 / 100.0).into_response()
    }
}

/// The answer a fault switch imposes, if any (after its latency).
async fn faulted(control: &EmulatorControl) -> Option<Response> {
    let faults = control.sms_faults();
    if faults.latency_ms > 0 {
        tokio::time::sleep(Duration::from_millis(faults.latency_ms)).await;
    }
    if faults.down {
        return Some(
            (
                StatusCode::SERVICE_UNAVAILABLE,
                [(header::RETRY_AFTER, "30")],
                "Service Unavailable\n",
            )
                .into_response(),
        );
    }
    if faults.http_500 {
        return Some(
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                Html("<html><body><h1>500 Internal Server Error</h1></body></html>"),
            )
                .into_response(),
        );
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_follow_the_gsm_rules() {
        assert_eq!(parts_of("hello"), 1);
        assert_eq!(parts_of(&"a".repeat(160)), 1);
        assert_eq!(parts_of(&"a".repeat(161)), 2);
        assert_eq!(parts_of(&"я".repeat(70)), 1);
        assert_eq!(parts_of(&"я".repeat(71)), 2);
        assert_eq!(parts_of(&"я".repeat(536)), 8);
        assert_eq!(parts_of(&"я".repeat(537)), 9);
    }

    #[test]
    fn status_progresses_to_the_final_code() {
        let at = Utc::now();
        let sms = SentSms {
            to: "79161234567".into(),
            text: "x".into(),
            sender: None,
            sms_id: "1-1".into(),
            received_at: at,
            parts: 1,
            test: false,
            final_code: 103,
        };
        let ms = chrono::Duration::milliseconds;
        assert_eq!(status_at(&sms, at, 100), 100);
        assert_eq!(status_at(&sms, at - ms(5), 100), 100);
        assert_eq!(status_at(&sms, at + ms(99), 100), 100);
        assert_eq!(status_at(&sms, at + ms(100), 100), 101);
        assert_eq!(status_at(&sms, at + ms(250), 100), 102);
        assert_eq!(status_at(&sms, at + ms(300), 100), 103);
        assert_eq!(status_at(&sms, at + ms(10_000), 100), 103);
        let lost = SentSms {
            final_code: 104,
            ..sms
        };
        assert_eq!(status_at(&lost, at + ms(300), 100), 104);
        assert_eq!(
            status_at(&lost, at + ms(3), 0),
            104,
            "a zero step is one millisecond"
        );
    }

    #[test]
    fn numbers_are_normalised_like_the_gateway() {
        assert_eq!(
            normalise("+7 (916) 123-45-67").as_deref(),
            Some("79161234567")
        );
        assert_eq!(normalise("89161234567").as_deref(), Some("79161234567"));
        assert_eq!(normalise("9161234567").as_deref(), Some("79161234567"));
        assert_eq!(normalise("12345"), None);
    }
}
