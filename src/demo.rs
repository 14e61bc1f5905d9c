//! Demo data for `serve --demo`: accounts a new user can log in with at once.
//! Never used when `APP_ENV=production`.

use diesel_async::AsyncPgConnection;

use crate::{
    auth::password,
    db::models::user::{self, NewUser, Role},
};

/// A demo account and its password.
pub struct DemoAccount {
    pub email: &'static str,
    pub password: &'static str,
    pub full_name: &'static str,
    pub phone: &'static str,
    pub role: Role,
}

pub const ACCOUNTS: [DemoAccount; 3] = [
    DemoAccount {
        email: "patient@demo.sovamed.ru",
        password: "sova-patient-demo",
        full_name: "Иванова Анна Сергеевна",
        phone: "+79161234567",
        role: Role::Patient,
    },
    DemoAccount {
        email: "staff@demo.sovamed.ru",
        password: "sova-staff-demo",
        full_name: "Петров Олег Игоревич",
        phone: "+79161234568",
        role: Role::Staff,
    },
    DemoAccount {
        email: "admin@demo.sovamed.ru",
        password: "sova-admin-demo",
        full_name: "Смирнова Мария Викторовна",
        phone: "+79161234569",
        role: Role::Admin,
    },
];

/// Creates the demo accounts that do not exist yet; existing ones are left as they are.
pub async fn ensure_accounts(conn: &mut AsyncPgConnection) -> anyhow::Result<()> {
    for account in &ACCOUNTS {
        if user::find_by_email(conn, account.email).await?.is_some() {
            continue;
        }
        let hash = password::hash(account.password.to_owned()).await?;
        user::insert(
            conn,
            &NewUser {
                email: account.email,
                password_hash: &hash,
                full_name: account.full_name,
                phone: Some(account.phone),
                birth_date: chrono::NaiveDate::from_ymd_opt(1985, 3, 14),
                role: account.role,
                // Demo phones count as proven, so password reset works out of the box.
                phone_verified_at: Some(chrono::Utc::now()),
            },
        )
        .await?;
    }
    Ok(())
}

/// The demo's MIS emulator starts empty on every run, so patient cards remembered from an
/// earlier run name nobody there: they are forgotten, and the next booking makes a new card.
pub async fn forget_mis_cards(conn: &mut AsyncPgConnection) -> anyhow::Result<usize> {
    use diesel_async::RunQueryDsl;
    Ok(
        diesel::sql_query("UPDATE users SET mis_pcode = NULL WHERE mis_pcode IS NOT NULL")
            .execute(conn)
            .await?,
    )
}
