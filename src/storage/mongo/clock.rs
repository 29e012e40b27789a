//! The server's clock, as seen from this instance.
//!
//! The reconciler decides that an operation was abandoned from its age, and a lock's lease ends
//! at a time. If each instance stamped documents with its own clock, an instance whose clock
//! runs five minutes ahead would see every other instance's fresh operation as five minutes
//! old, and undo it. So every time the MongoDB adapter writes or compares goes through this
//! clock: the local clock corrected by the offset to the server's `hello.localTime`, measured at
//! start-up and at every reconciler pass (the round trip's midpoint is taken as the moment the
//! server read its clock, so the error is at most half a round trip).

use std::sync::atomic::{AtomicI64, Ordering};

use chrono::{DateTime, Utc};
use mongodb::bson::doc;
use mongodb::Database;

/// Local time plus the last measured offset to the server's clock.
#[derive(Debug, Default)]
pub struct ServerClock {
    offset_ms: AtomicI64,
    /// A simulated error of the local clock (tests only; zero otherwise).
    skew: chrono::Duration,
}

impl ServerClock {
    /// A clock whose local readings are off by `skew` (zero outside tests).
    pub fn new(skew: chrono::Duration) -> Self {
        Self {
            offset_ms: AtomicI64::new(0),
            skew,
        }
    }

    fn local(&self) -> DateTime<Utc> {
        Utc::now() + self.skew
    }

    /// The server's time now, as best known.
    pub fn now(&self) -> DateTime<Utc> {
        self.local() + chrono::Duration::milliseconds(self.offset_ms.load(Ordering::Relaxed))
    }

    /// Measures the offset with one `hello`; keeps the old one if the server does not say.
    pub async fn sync(&self, db: &Database) -> mongodb::error::Result<()> {
        let sent = self.local();
        let reply = db.run_command(doc! { "hello": 1 }).await?;
        let received = self.local();
        if let Ok(server) = reply.get_datetime("localTime") {
            let midpoint = sent + (received - sent) / 2;
            let offset = server.timestamp_millis() - midpoint.timestamp_millis();
            self.offset_ms.store(offset, Ordering::Relaxed);
        }
        Ok(())
    }
}
