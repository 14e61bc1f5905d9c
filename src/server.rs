//! Starting and stopping the HTTP server; shared by `sovamed serve` and the tests.

use std::net::SocketAddr;

use tokio::{net::TcpListener, sync::oneshot, task::JoinHandle};

use crate::{
    app::{App, AppState},
    config::Config,
    db, router,
};

/// A server that is accepting connections.
pub struct RunningServer {
    pub addr: SocketAddr,
    pub state: AppState,
    stop: oneshot::Sender<()>,
    task: JoinHandle<std::io::Result<()>>,
    stop_outbox: tokio::sync::watch::Sender<bool>,
    outbox: JoinHandle<()>,
    /// The intent reconciler, unless `RECONCILE_INTERVAL_SECONDS=0`.
    reconciler: Option<JoinHandle<()>>,
    /// The MIS change-feed follower, when the MIS is configured.
    feed: Option<JoinHandle<()>>,
    /// The daily retention job: anonymisation after a deletion request, old rows removed.
    retention: JoinHandle<()>,
    /// The visit reminders, unless `REMINDER_HOURS_BEFORE=0`.
    reminders: Option<JoinHandle<()>>,
    /// The cluster's subscriber: the directory snapshot and the schedule memory kept in
    /// step with the other replicas.
    cluster: JoinHandle<()>,
}

/// Creates the database when missing and applies pending migrations.
pub async fn prepare_database(config: &Config) -> anyhow::Result<()> {
    db::create_database_if_missing(&config.database_url).await?;
    let applied = db::run_migrations(&config.database_url).await?;
    if !applied.is_empty() {
        tracing::info!(migrations = ?applied, "applied migrations");
    }
    Ok(())
}

/// Prepares the database, binds `config.bind_addr` (port 0 picks a free one) and serves.
pub async fn start(config: Config) -> anyhow::Result<RunningServer> {
    prepare_database(&config).await?;
    let listener = TcpListener::bind(config.bind_addr)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", config.bind_addr))?;
    let state = App::new(config).await?;
    start_with(state, listener).await
}

/// Serves an already built state on `listener`.
pub async fn start_with(state: AppState, listener: TcpListener) -> anyhow::Result<RunningServer> {
    let addr = listener.local_addr()?;
    let app = router::build(state.clone()).into_make_service_with_connect_info::<SocketAddr>();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = stopped.await;
            })
            .await
    });
    // The SMS outbox worker lives as long as the server; it finishes its batch on stop.
    let (stop_outbox, outbox_stopped) = tokio::sync::watch::channel(false);
    let settings = crate::domain::booking::outbox::OutboxSettings {
        retry_base: state.config.sms_retry_base,
        status_poll: state.config.sms_status_poll,
        ..Default::default()
    };
    let outbox = crate::domain::booking::outbox::spawn(
        state.booking.clone(),
        settings,
        outbox_stopped.clone(),
    );
    // The reconciler settles booking intents a crash or a lost MIS answer left pending.
    let reconciler = (!state.config.reconcile_interval.is_zero()).then(|| {
        crate::domain::booking::reconcile::spawn(
            state.booking.clone(),
            state.config.reconcile_interval,
            state.config.intent_stale_after,
            outbox_stopped.clone(),
        )
    });
    // The change feed: what the clinic's front desk does in the MIS reaches the cabinet.
    let feed = (state.config.infoclinica_url.is_some()
        && !state.config.change_feed_interval.is_zero())
    .then(|| {
        crate::domain::booking::feed::spawn(
            state.booking.clone(),
            state.config.change_feed_interval,
            outbox_stopped.clone(),
        )
    });
    // Reminders before visits: every replica looks, the database lets one queue each.
    let reminders = (state.config.reminder_hours_before > 0).then(|| {
        crate::domain::booking::reminders::spawn(
            state.booking.clone(),
            state.config.reminder_hours_before,
            state.config.reminder_interval,
            outbox_stopped.clone(),
        )
    });
    // The directory snapshot is built, and the replicas' messages heard, from here on.
    let cluster = crate::domain::cluster::spawn(
        state.redis.clone(),
        state.booking.schedule.clone(),
        state.booking.directory.clone(),
        state.config.directory_reload,
        outbox_stopped.clone(),
    );
    // Retention: personal data erased after the grace of a deletion request, and rows past
    // their period removed or blanked; daily, one replica at a time.
    let retention = crate::domain::retention::spawn(
        state.db.clone(),
        state.config.retention_policy(),
        state.booking.clock.clone(),
        outbox_stopped,
    );
    Ok(RunningServer {
        addr,
        state,
        stop,
        task,
        stop_outbox,
        outbox,
        reconciler,
        feed,
        retention,
        reminders,
        cluster,
    })
}

impl RunningServer {
    /// Stops accepting connections, lets requests in flight finish, and returns.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        let _ = self.stop.send(());
        self.task.await??;
        let _ = self.stop_outbox.send(true);
        self.outbox.await?;
        if let Some(reconciler) = self.reconciler {
            reconciler.await?;
        }
        if let Some(feed) = self.feed {
            feed.await?;
        }
        self.retention.await?;
        if let Some(reminders) = self.reminders {
            reminders.await?;
        }
        self.cluster.await?;
        Ok(())
    }
}

/// Resolves on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
