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
