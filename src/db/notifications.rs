//! `LISTEN` on a dedicated connection of the service role (a pooled connection would lose its
//! registrations to the next request), reconnecting for as long as the service runs.

use std::time::Duration;

use futures::{StreamExt, stream};
use tokio::task::JoinHandle;
use tokio_postgres::{AsyncMessage, NoTls};

use super::Db;

/// What a listener hears.
#[derive(Debug, PartialEq, Eq)]
pub enum ListenEvent {
    /// Listening (again): notifications sent from now on will arrive.
    Listening,
    /// A notification's payload.
    Notification(String),
    /// The connection is gone; notifications are missed until the next `Listening`.
    Lost,
}

/// Stops the listener when dropped.
pub struct Listener(JoinHandle<()>);

impl Drop for Listener {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Db {
    /// Listens on `channel` until the returned [`Listener`] is dropped, calling `on_event` for
    /// every event. After a lost connection it tries again every `retry` interval.
    pub fn listen(
        &self,
        channel: &'static str,
        retry: Duration,
        on_event: impl Fn(ListenEvent) + Send + Sync + 'static,
    ) -> Listener {
        let config = self.config.clone();
        Listener(tokio::spawn(async move {
            loop {
                match listen_once(&config, channel, &on_event).await {
                    Ok(()) => tracing::warn!(channel, "notification connection closed"),
                    Err(e) => tracing::warn!(channel, error = %e, "notification connection failed"),
                }
                on_event(ListenEvent::Lost);
                tokio::time::sleep(retry).await;
            }
        }))
    }
}

async fn listen_once(
    config: &tokio_postgres::Config,
    channel: &str,
    on_event: &(impl Fn(ListenEvent) + Send + Sync),
) -> Result<(), tokio_postgres::Error> {
    let (client, mut connection) = config.connect(NoTls).await?;
    let (tx, mut messages) = futures::channel::mpsc::unbounded();
    // The connection must be polled for the client to work; it also yields the notifications.
    let driver = tokio::spawn(async move {
        let mut stream = stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(message) = stream.next().await {
            let failed = message.is_err();
            if tx.unbounded_send(message).is_err() || failed {
                break;
            }
        }
    });
    let _stop_driver = AbortOnDrop(driver);
    // The channel name is ours, a constant: no quoting of input involved.
    client.batch_execute(&format!("LISTEN {channel}")).await?;
    on_event(ListenEvent::Listening);
    while let Some(message) = messages.next().await {
        match message? {
            AsyncMessage::Notification(n) if n.channel() == channel => {
                on_event(ListenEvent::Notification(n.payload().to_owned()));
            }
            _ => {}
        }
    }
    Ok(())
}

struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
