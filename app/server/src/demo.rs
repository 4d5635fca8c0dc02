//! `sluice demo`: a demo tenant with a sample SQLite database and a connector to it,
//! so a new user sees every capability work with no other service.

use anyhow::Context;
use sluice_jobs::pull::Schedule;
use sluice_store::Store;
use sluice_store::accounts::NewUser;
use sluice_store::audit::AuditEvent;
use sluice_store::commands::{Callback, CommandKind, CommandSettings};
use sluice_store::connectors::{ConnectorSecrets, ConnectorSettings};
use sluice_store::domain::{
    ConnectorName, Email, NewPassword, PersonName, Reach, Role, TenantName,
};
use sluice_store::ids::TenantId;
use sluice_store::secret::random_token;
use sqlx::Connection;
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
use std::path::Path;

pub const DEMO_TENANT: &str = "Demo";
pub const DEMO_EMAIL: &str = "demo@sluice.example";
pub const DEMO_DATABASE_FILE: &str = "demo_shop.db";
pub const DEMO_CONNECTOR: &str = "demo_shop";

/// What `sluice demo` prints for the user.
pub struct DemoLogin {
    pub email: String,
    pub password: String,
}

/// Creates (or refreshes) the demo tenant; every run sets a new owner password.
pub async fn provision(store: &Store, sqlite_root: &Path) -> anyhow::Result<DemoLogin> {
    let password = random_token("demo")
        .chars()
        .skip(5)
        .take(16)
        .collect::<String>();
    let new_password = NewPassword::parse(&password, "password")?;
    let tenant = match store.tenant_by_name(DEMO_TENANT).await {
        Ok(tenant) => {
            let owner = store
                .users(&tenant.id)
                .await?
                .into_iter()
                .find(|u| u.email == DEMO_EMAIL)
                .context("the Demo tenant exists but has no demo owner")?;
            store
                .set_password(&tenant.id, &owner.id, &new_password)
                .await?;
            tenant
        }
        Err(_) => {
            let owner = NewUser {
                email: Email::parse(DEMO_EMAIL)?,
                name: PersonName::parse("Demo owner")?,
                password: new_password,
                role: Role::Owner,
            };
            store
                .create_tenant_with_owner(&TenantName::parse(DEMO_TENANT)?, owner)
                .await?
                .0
        }
    };

    let sqlite_dir = crate::service::connectors::tenant_sqlite_dir(sqlite_root, &tenant.id);
    let database = sqlite_dir.join(DEMO_DATABASE_FILE);
    std::fs::create_dir_all(&sqlite_dir)
        .with_context(|| format!("creating {}", sqlite_dir.display()))?;
    create_sample_database(&database).await?;

    let exists = store
        .connectors(&tenant.id)
        .await?
        .iter()
        .any(|c| c.settings.name.as_str() == DEMO_CONNECTOR);
    if !exists {
        let settings = ConnectorSettings {
            name: ConnectorName::parse(DEMO_CONNECTOR)?,
            description: "Sample shop: customers, invoices and usage events (SQLite)".into(),
            kind: "sqlite".into(),
            reach: Reach::Direct,
            host: None,
            port: None,
            database: None,
            username: None,
            tls_mode: "disabled".into(),
            options: Default::default(),
            path: Some(DEMO_DATABASE_FILE.into()),
        };
        store
            .create_connector(&tenant.id, &settings, &ConnectorSecrets::default())
            .await?;
        store
            .audit(
                &tenant.id,
                AuditEvent {
                    actor: "system",
                    action: "connector.create",
                    target: DEMO_CONNECTOR,
                    detail: "sluice demo",
                    ip: None,
                },
            )
            .await?;
    }
    provision_pull_syncs(store, &tenant.id).await?;
    Ok(DemoLogin {
        email: DEMO_EMAIL.into(),
        password,
    })
}

pub const DEMO_INBOX: &str = "demo inbox";

/// An inbox, and two commands filling it: seed 001's incremental invoices and
/// seed 000's usage window, on schedules short enough to watch.
async fn provision_pull_syncs(store: &Store, tenant: &TenantId) -> anyhow::Result<()> {
    let inbox = match store
        .inboxes(tenant, None, 1000)
        .await?
        .into_iter()
        .find(|i| i.name == DEMO_INBOX)
    {
        Some(inbox) => inbox,
        None => store.create_inbox(tenant, DEMO_INBOX).await?,
    };
    let connector = store
        .connectors(tenant)
        .await?
        .into_iter()
        .find(|c| c.settings.name.as_str() == DEMO_CONNECTOR)
        .context("the demo connector is missing")?;
    if !store
        .connector_commands(tenant, &connector.id, false, None, 1)
        .await?
        .is_empty()
    {
        return Ok(());
    }
    let commands = [
        (
            "new paid invoices",
            "SELECT id, customer_id, amount, currency, date_paid FROM invoices WHERE date_paid > '@last_value@' ORDER BY date_paid",
            Some("date_paid"),
            Some("2000-01-01T00:00:00Z"),
            "*/30 * * * * *",
        ),
        (
            "usage events",
            "SELECT id AS \"id\", account_id AS \"accountId\", usage_count AS \"usage\", created_at AS \"timestamp\" \
             FROM usage_events WHERE created_at > '${startTime}' AND created_at < '${endTime}'",
            None,
            None,
            "0 * * * * *",
        ),
    ];
    for (name, sql, last_field, last_value, schedule) in commands {
        let settings = CommandSettings {
            connector_id: connector.id.clone(),
            name: name.into(),
            kind: CommandKind::Static,
            sql: sql.into(),
            callback: Callback::Inbox(inbox.id.clone()),
            last_field: last_field.map(Into::into),
            schedule: Some(schedule.into()),
            timezone: "UTC".into(),
            params: None,
            batch_size: 1000,
        };
        let first_run = Schedule::parse(schedule, "UTC")?.next_after(chrono::Utc::now());
        store
            .create_command(tenant, &settings, last_value, first_run)
            .await?;
    }
    Ok(())
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS customers (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    email TEXT NOT NULL,
    country TEXT NOT NULL,
    currency TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS invoices (
    id INTEGER PRIMARY KEY,
    customer_id INTEGER NOT NULL REFERENCES customers(id),
    amount REAL NOT NULL,
    currency TEXT NOT NULL,
    status TEXT NOT NULL,
    date_paid TEXT
);
CREATE TABLE IF NOT EXISTS usage_events (
    id INTEGER PRIMARY KEY,
    account_id INTEGER NOT NULL REFERENCES customers(id),
    event_name TEXT NOT NULL,
    usage_count INTEGER NOT NULL,
    attributes JSON NOT NULL,
    created_at TEXT NOT NULL
);
";

/// Fills the sample database once (a second run leaves existing rows alone).
async fn create_sample_database(path: &Path) -> anyhow::Result<()> {
    let options = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true);
    let mut conn = SqliteConnection::connect_with(&options)
        .await
        .with_context(|| format!("opening {}", path.display()))?;
    sqlx::raw_sql(SCHEMA).execute(&mut conn).await?;
    let (existing,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM customers")
        .fetch_one(&mut conn)
        .await?;
    if existing > 0 {
        return Ok(());
    }
    let customers = [
        ("Ada Lovelace", "ada@example.com", "GB", "GBP"),
        ("Grace Hopper", "grace@example.com", "US", "USD"),
        ("Katherine Johnson", "katherine@example.com", "US", "USD"),
        ("Hedy Lamarr", "hedy@example.com", "AT", "EUR"),
        ("Alan Turing", "alan@example.com", "GB", "GBP"),
    ];
    let mut tx = conn.begin().await?;
    for (i, (name, email, country, currency)) in customers.iter().enumerate() {
        let id = i as i64 + 1;
        sqlx::query("INSERT INTO customers (id, name, email, country, currency, created_at) VALUES (?, ?, ?, ?, ?, ?)")
            .bind(id)
            .bind(name)
            .bind(email)
            .bind(country)
            .bind(currency)
            .bind(format!("2026-0{}-0{}T09:00:00Z", i % 9 + 1, i % 9 + 1))
            .execute(&mut *tx)
            .await?;
        for n in 0..4i64 {
            let paid =
                (n < 3).then(|| format!("2026-{:02}-{:02}T10:{:02}:00Z", n + 1, id + 10, n * 7));
            sqlx::query("INSERT INTO invoices (customer_id, amount, currency, status, date_paid) VALUES (?, ?, ?, ?, ?)")
                .bind(id)
                .bind(19.99 * (n + 1) as f64 + id as f64)
                .bind(currency)
                .bind(if paid.is_some() { "paid" } else { "open" })
                .bind(paid)
                .execute(&mut *tx)
                .await?;
        }
        for n in 0..6i64 {
            sqlx::query("INSERT INTO usage_events (account_id, event_name, usage_count, attributes, created_at) VALUES (?, ?, ?, ?, ?)")
                .bind(id)
                .bind(if n % 2 == 0 { "api_call" } else { "storage_gb" })
                .bind((n + 1) * id * 3)
                .bind(format!(r#"{{"region":"eu-{}","plan":"{}"}}"#, n % 3, if id % 2 == 0 { "pro" } else { "starter" }))
                .bind(format!("2026-11-{:02}T{:02}:15:00Z", 10 + n, 8 + id))
                .execute(&mut *tx)
                .await?;
        }
    }
    tx.commit().await?;
    Ok(())
}
