//! Diesel table definitions, kept in step with `migrations/` by hand.

diesel::table! {
    users (id) {
        id -> Int8,
        email -> Text,
        password_hash -> Text,
        full_name -> Text,
        phone -> Nullable<Text>,
        birth_date -> Nullable<Date>,
        role -> Text,
        disabled -> Bool,
        session_version -> Int4,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        mis_pcode -> Nullable<Int8>,
        phone_verified_at -> Nullable<Timestamptz>,
        preferred_branch_id -> Nullable<Int8>,
        last_login_at -> Nullable<Timestamptz>,
        password_set_at -> Nullable<Timestamptz>,
        totp_secret -> Nullable<Text>,
        totp_enrolled_at -> Nullable<Timestamptz>,
        totp_last_step -> Nullable<Int8>,
        deletion_requested_at -> Nullable<Timestamptz>,
        anonymised_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    audit_events (id) {
        id -> Int8,
        occurred_at -> Timestamptz,
        actor_user_id -> Nullable<Int8>,
        action -> Text,
        subject -> Nullable<Text>,
        client_ip -> Nullable<Text>,
        request_id -> Nullable<Text>,
        details -> Jsonb,
    }
}

diesel::joinable!(audit_events -> users (actor_user_id));
diesel::allow_tables_to_appear_in_same_query!(users, audit_events);

diesel::table! {
    branches (id) {
        id -> Int8,
        mis_id -> Int8,
        name -> Text,
        address -> Text,
        phone -> Text,
        email -> Text,
        timezone -> Text,
        active -> Bool,
        source_hash -> Text,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        work_hours -> Text,
    }
}

diesel::table! {
    specialities (id) {
        id -> Int8,
        mis_id -> Int8,
        name -> Text,
        group_name -> Text,
        active -> Bool,
        source_hash -> Text,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    specialists (id) {
        id -> Int8,
        mis_id -> Int8,
        full_name -> Text,
        active -> Bool,
        source_hash -> Text,
        cms_id -> Nullable<Int8>,
        bio_html -> Text,
        summary -> Text,
        photo_url -> Nullable<Text>,
        career_start -> Nullable<Int4>,
        profile_hash -> Nullable<Text>,
        rating -> Nullable<Float8>,
        reviews_count -> Int4,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    specialist_branches (specialist_id, branch_id) {
        specialist_id -> Int8,
        branch_id -> Int8,
    }
}

diesel::table! {
    specialist_specialities (specialist_id, speciality_id) {
        specialist_id -> Int8,
        speciality_id -> Int8,
    }
}

diesel::table! {
    prices (id) {
        id -> Int8,
        mis_id -> Int8,
        code -> Text,
        name -> Text,
        price_kopecks -> Int8,
        branch_id -> Nullable<Int8>,
        speciality_id -> Nullable<Int8>,
        bookable -> Bool,
        active -> Bool,
        source_hash -> Text,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    reviews (id) {
        id -> Int8,
        cms_id -> Int8,
        specialist_id -> Nullable<Int8>,
        author_name -> Text,
        body -> Text,
        rating -> Nullable<Int2>,
        published -> Bool,
        active -> Bool,
        reviewed_at -> Nullable<Timestamptz>,
        source_hash -> Text,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    content_items (id) {
        id -> Int8,
        kind -> Text,
        cms_id -> Int8,
        code -> Nullable<Text>,
        title -> Text,
        summary -> Text,
        body_html -> Text,
        active -> Bool,
        modified_at -> Timestamptz,
        source_hash -> Text,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    sync_watermarks (source) {
        source -> Text,
        watermark -> Timestamptz,
    }
}

diesel::table! {
    sync_runs (id) {
        id -> Int8,
        kind -> Text,
        started_at -> Timestamptz,
        finished_at -> Timestamptz,
        succeeded -> Bool,
        created -> Int4,
        updated -> Int4,
        unchanged -> Int4,
        deactivated -> Int4,
        error -> Nullable<Text>,
        notes -> Text,
    }
}

diesel::joinable!(specialist_branches -> specialists (specialist_id));
diesel::joinable!(specialist_branches -> branches (branch_id));
diesel::joinable!(specialist_specialities -> specialists (specialist_id));
diesel::joinable!(specialist_specialities -> specialities (speciality_id));
diesel::joinable!(prices -> branches (branch_id));
diesel::joinable!(prices -> specialities (speciality_id));
diesel::joinable!(reviews -> specialists (specialist_id));
diesel::allow_tables_to_appear_in_same_query!(
    branches,
    specialities,
    specialists,
    specialist_branches,
    specialist_specialities,
    prices,
    reviews,
);

diesel::table! {
    records (id) {
        id -> Int8,
        mis_id -> Int8,
        status -> Text,
        specialist_id -> Int8,
        branch_id -> Int8,
        starts_at -> Timestamptz,
        ends_at -> Timestamptz,
        user_id -> Nullable<Int8>,
        patient_pcode -> Int8,
        patient_last_name -> Text,
        patient_first_name -> Text,
        patient_middle_name -> Nullable<Text>,
        patient_phone -> Text,
        patient_email -> Nullable<Text>,
        patient_birth_date -> Nullable<Date>,
        comment -> Nullable<Text>,
        source -> Text,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        cancelled_at -> Nullable<Timestamptz>,
        cancelled_by -> Nullable<Int8>,
        manage_token_hash -> Nullable<Text>,
        booked_by -> Nullable<Int8>,
        cancel_reason -> Nullable<Text>,
        scheduled_at -> Timestamptz,
        reminder_queued_at -> Nullable<Timestamptz>,
        reminder_token_hash -> Nullable<Text>,
        calendar_sequence -> Int4,
    }
}

diesel::table! {
    sms_outbox (id) {
        id -> Int8,
        record_id -> Nullable<Int8>,
        kind -> Text,
        phone -> Text,
        body -> Text,
        status -> Text,
        attempts -> Int4,
        next_attempt_at -> Timestamptz,
        last_error -> Nullable<Text>,
        provider_id -> Nullable<Text>,
        sent_at -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        delivery -> Nullable<Text>,
        delivery_code -> Nullable<Int4>,
        delivered_at -> Nullable<Timestamptz>,
        next_check_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    idempotency_keys (scope, key) {
        scope -> Text,
        key -> Text,
        request_hash -> Text,
        status_code -> Int4,
        response -> Jsonb,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    schedule_snapshots (specialist_id, branch_id, day) {
        specialist_id -> Int8,
        branch_id -> Int8,
        day -> Date,
        intervals -> Jsonb,
        fetched_at -> Timestamptz,
        free_starts -> Array<Timestamptz>,
    }
}

diesel::joinable!(records -> specialists (specialist_id));
diesel::joinable!(records -> branches (branch_id));
diesel::joinable!(sms_outbox -> records (record_id));
diesel::allow_tables_to_appear_in_same_query!(records, sms_outbox, users);
diesel::allow_tables_to_appear_in_same_query!(records, specialists);
diesel::allow_tables_to_appear_in_same_query!(records, branches);

diesel::table! {
    booking_intents (id) {
        id -> Int8,
        kind -> Text,
        state -> Text,
        record_id -> Nullable<Int8>,
        specialist_id -> Int8,
        branch_id -> Int8,
        starts_at -> Timestamptz,
        ends_at -> Timestamptz,
        pcode -> Nullable<Int8>,
        mis_id -> Nullable<Int8>,
        request -> Jsonb,
        idempotency_scope -> Nullable<Text>,
        idempotency_key -> Nullable<Text>,
        request_hash -> Nullable<Text>,
        error -> Nullable<Text>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::joinable!(booking_intents -> records (record_id));
diesel::allow_tables_to_appear_in_same_query!(booking_intents, records);

diesel::table! {
    phone_verifications (id) {
        id -> Text,
        phone -> Nullable<Text>,
        purpose -> Text,
        user_id -> Nullable<Int8>,
        code_hash -> Text,
        wrong_attempts -> Int4,
        expires_at -> Timestamptz,
        confirmed_at -> Nullable<Timestamptz>,
        token_hash -> Nullable<Text>,
        token_expires_at -> Nullable<Timestamptz>,
        token_used_at -> Nullable<Timestamptz>,
        client_ip -> Text,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    consent_texts (id) {
        id -> Int8,
        purpose -> Text,
        version -> Int4,
        title -> Text,
        body -> Text,
        published_at -> Timestamptz,
    }
}

diesel::table! {
    consents (id) {
        id -> Int8,
        user_id -> Nullable<Int8>,
        phone -> Nullable<Text>,
        text_id -> Int8,
        given_at -> Timestamptz,
        client_ip -> Text,
        withdrawn_at -> Nullable<Timestamptz>,
    }
}

diesel::joinable!(consents -> consent_texts (text_id));
diesel::allow_tables_to_appear_in_same_query!(consents, consent_texts);

diesel::table! {
    refresh_tokens (id) {
        id -> Int8,
        user_id -> Int8,
        family -> Text,
        token_hash -> Text,
        session_version -> Int4,
        created_at -> Timestamptz,
        expires_at -> Timestamptz,
        rotated_at -> Nullable<Timestamptz>,
        revoked_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    invitations (id) {
        id -> Int8,
        user_id -> Int8,
        token_hash -> Text,
        created_by -> Nullable<Int8>,
        created_at -> Timestamptz,
        expires_at -> Timestamptz,
        used_at -> Nullable<Timestamptz>,
        revoked_at -> Nullable<Timestamptz>,
    }
}

// Only the invited account joins: `created_by` names users too, but one table pair takes one
// `joinable!`.
diesel::joinable!(invitations -> users (user_id));
diesel::allow_tables_to_appear_in_same_query!(invitations, users);

diesel::table! {
    mfa_recovery_codes (id) {
        id -> Int8,
        user_id -> Int8,
        code_hash -> Text,
        created_at -> Timestamptz,
        used_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    login_sessions (id) {
        id -> Int8,
        user_id -> Int8,
        login_id -> Text,
        device -> Text,
        client_ip -> Text,
        session_version -> Int4,
        created_at -> Timestamptz,
        last_seen_at -> Timestamptz,
        ended_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    calendar_feeds (user_id) {
        user_id -> Int8,
        token -> Text,
        token_hash -> Text,
        created_at -> Timestamptz,
    }
}

diesel::joinable!(calendar_feeds -> users (user_id));
diesel::allow_tables_to_appear_in_same_query!(calendar_feeds, users);
