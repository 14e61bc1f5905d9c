//! Every JSON answer of the API read into the type the OpenAPI document describes, and
//! written back: the round trip must give the same JSON, so no answer carries a field its
//! documented type lacks, or lacks one it has.

use reqwest::{RequestBuilder, StatusCode};
use serde::{Serialize, de::DeserializeOwned};
use serde_json::{Value, json};
use sovamed::{
    api::{
        directory::{
            BranchList, PriceList, ReviewList, SpecialistDetail, SpecialistList, SpecialityList,
        },
        types::{ErrorBody, RecordDetailOut, RecordList, RecordOut, ScheduleOut},
        user::{LoginResponse, UserView},
    },
    db::models::user::Role,
};

use crate::support::{
    anonymous_booking, browser, doctor_in, free_starts, sync_directories, with_emulators,
};

/// Sends `request`, expects `status`, and reads the body as `T`, checking the round trip.
async fn typed<T: DeserializeOwned + Serialize>(request: RequestBuilder, status: StatusCode) -> T {
    let response = request.send().await.expect("request");
    assert_eq!(response.status(), status);
    let raw: Value = response.json().await.expect("json");
    let parsed: T = serde_json::from_value(raw.clone())
        .unwrap_or_else(|e| panic!("{} does not read {raw}: {e}", std::any::type_name::<T>()));
    let again = serde_json::to_value(&parsed).expect("serialise");
    assert_eq!(again, raw, "{} round trip", std::any::type_name::<T>());
    parsed
}

#[tokio::test(flavor = "multi_thread")]
async fn every_answer_reads_into_its_documented_type() {
    let (app, _emulators) = with_emulators().await;
    sync_directories(&app).await;
    let client = browser();
    let get = |path: &str| client.get(app.url(path));

    let branches: BranchList = typed(get("/api/v1/branches"), StatusCode::OK).await;
    assert!(!branches.items.is_empty());
    assert_eq!(
        branches.total,
        i64::try_from(branches.items.len()).expect("len")
    );
    assert_eq!((branches.page, branches.per_page), (1, 50));
    let _: SpecialityList = typed(get("/api/v1/specialities"), StatusCode::OK).await;
    let cards: SpecialistList = typed(get("/api/v1/specialists"), StatusCode::OK).await;
    assert!(!cards.items.is_empty());
    let (doctor, branch) = doctor_in(&app, None).await;
    let _: SpecialistDetail = typed(
        get(&format!("/api/v1/specialists/{doctor}")),
        StatusCode::OK,
    )
    .await;
    let _: ReviewList = typed(
        get(&format!("/api/v1/specialists/{doctor}/reviews")),
        StatusCode::OK,
    )
    .await;
    let prices: PriceList = typed(get("/api/v1/prices"), StatusCode::OK).await;
    assert!(
        prices
            .items
            .iter()
            .all(|p| p.currency == "RUB" && p.price_kopecks > 0)
    );
    let today = chrono::Utc::now().date_naive();
    let schedule: ScheduleOut = typed(
        get(&format!(
            "/api/v1/specialist/schedule?specialist_id={doctor}&branch_id={branch}&date_from={today}"
        )),
        StatusCode::OK,
    )
    .await;
    assert_eq!(schedule.specialist_id, doctor);
    let missing: ErrorBody = typed(get("/api/v1/specialists/999999"), StatusCode::NOT_FOUND).await;
    assert_eq!(missing.error.code, "not_found");
    let invalid: ErrorBody = typed(
        get("/api/v1/specialists?branch_id=x"),
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert!(
        invalid
            .error
            .fields
            .is_some_and(|f| f.contains_key("branch_id"))
    );

    let starts = free_starts(&app, doctor, branch).await;
    let booked: RecordOut = typed(
        client
            .post(app.url("/api/v1/specialist/anonymous-reserve"))
            .json(&anonymous_booking(
                doctor,
                branch,
                &starts[0],
                "+79165550101",
            )),
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(booked.start, starts[0]);
    assert!(
        !booked.specialist.specialities.is_empty(),
        "a record names the doctor's specialities"
    );
    assert!(!booked.branch.timezone.is_empty(), "and the branch's zone");

    app.create_user("typed@example.ru", "typed passphrase 1", Role::Patient)
        .await;
    let login: LoginResponse = typed(
        client
            .post(app.url("/api/v1/user/login"))
            .json(&json!({"email": "typed@example.ru", "password": "typed passphrase 1"})),
        StatusCode::OK,
    )
    .await;
    let token = serde_json::to_value(&login).expect("json")["token"]
        .as_str()
        .expect("token")
        .to_owned();
    let authed = |request: RequestBuilder| request.bearer_auth(&token);
    let me: UserView = typed(authed(get("/api/v1/user/me")), StatusCode::OK).await;
    assert_eq!(me.email, "typed@example.ru");
    let mine: RecordOut = typed(
        authed(client.post(app.url("/api/v1/records")))
            .json(&json!({"specialist_id": doctor, "branch_id": branch, "start": starts[1]})),
        StatusCode::CREATED,
    )
    .await;
    let id = mine.id;
    let list: RecordList = typed(authed(get("/api/v1/records")), StatusCode::OK).await;
    assert_eq!(list.total, 1);
    let detail: RecordDetailOut = typed(
        authed(get(&format!("/api/v1/records/{id}"))),
        StatusCode::OK,
    )
    .await;
    assert_eq!(detail.record.id, id);
    let moved: RecordOut = typed(
        authed(client.post(app.url(&format!("/api/v1/records/{id}/reschedule"))))
            .json(&json!({"start": starts[2]})),
        StatusCode::OK,
    )
    .await;
    assert_eq!(moved.start, starts[2]);
    let cancelled: RecordOut = typed(
        authed(client.post(app.url(&format!("/api/v1/records/{id}/cancel")))),
        StatusCode::OK,
    )
    .await;
    assert_eq!(
        serde_json::to_value(cancelled.status).expect("status"),
        json!("cancelled")
    );
    let again: ErrorBody = typed(
        authed(client.post(app.url(&format!("/api/v1/records/{id}/cancel")))),
        StatusCode::CONFLICT,
    )
    .await;
    assert_eq!(again.error.code, "conflict");
}

#[tokio::test(flavor = "multi_thread")]
async fn every_list_honours_and_bounds_page_and_per_page() {
    let (app, _emulators) = with_emulators().await;
    crate::support::sync_all(&app, false).await.expect("sync");
    let (doctor, branch) = doctor_in(&app, None).await;
    app.create_user("lists@example.ru", "lists passphrase 1", Role::Patient)
        .await;
    let token = app
        .api_token("lists@example.ru", "lists passphrase 1")
        .await;
    for start in free_starts(&app, doctor, branch).await.iter().take(3) {
        let booked = browser()
            .post(app.url("/api/v1/records"))
            .bearer_auth(&token)
            .json(&json!({"specialist_id": doctor, "branch_id": branch, "start": start}))
            .send()
            .await
            .expect("book");
        assert_eq!(booked.status(), StatusCode::CREATED);
    }
    let get = |path: String| {
        let token = token.clone();
        let url = app.url(&path);
        async move {
            let response = browser()
                .get(url)
                .bearer_auth(token)
                .send()
                .await
                .expect("list");
            let status = response.status();
            (status, response.json::<Value>().await.expect("json"))
        }
    };
    let lists = [
        ("/api/v1/branches".to_owned(), 200),
        ("/api/v1/specialities".to_owned(), 200),
        ("/api/v1/specialists".to_owned(), 200),
        ("/api/v1/prices".to_owned(), 200),
        (format!("/api/v1/specialists/{doctor}/reviews"), 200),
        ("/api/v1/records".to_owned(), 100),
    ];
    for (path, max) in lists {
        let (status, all) = get(format!("{path}?per_page={max}")).await;
        assert_eq!(status, StatusCode::OK, "{path}: {all}");
        let total = all["total"].as_i64().expect("total");
        assert!(total >= 2, "{path}: needs two entries to page ({all})");
        let (_, second) = get(format!("{path}?page=2&per_page=1")).await;
        assert_eq!(second["page"], 2, "{path}");
        assert_eq!(second["per_page"], 1, "{path}");
        assert_eq!(second["total"], total, "{path}");
        assert_eq!(
            second["items"].as_array().map(Vec::len),
            Some(1),
            "{path}: one entry a page"
        );
        assert_eq!(
            second["items"][0], all["items"][1],
            "{path}: page 2 of 1 is the second entry"
        );
        for bad in [
            "per_page=0".to_owned(),
            format!("per_page={}", max + 1),
            "page=0".to_owned(),
            "page=x".to_owned(),
        ] {
            let (status, body) = get(format!("{path}?{bad}")).await;
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{path}?{bad}");
            let field = bad.split('=').next().expect("name");
            assert!(
                body["error"]["fields"][field].as_str().is_some_and(|m| m
                    .chars()
                    .any(|c| ('а'..='я').contains(&c.to_ascii_lowercase())
                        || ('А'..='Я').contains(&c))),
                "{path}?{bad}: a Russian message on {field}: {body}"
            );
        }
    }
}
