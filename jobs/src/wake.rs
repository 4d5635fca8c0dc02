//! Waking idle apalis workers on a fixed interval.
//!
//! apalis-core 1.0's `IntervalStrategy` re-arms its timer after it fires without
//! polling it, so no waker is registered for the next tick; a worker whose fetch
//! then finds nothing can sleep until its 30 s heartbeat (we saw queued runs wait
//! that long). This strategy always leaves a polled timer behind.

use apalis::prelude::{PollSnapshot, PollStrategy};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::time::Sleep;

pub(crate) struct EveryInterval {
    every: Duration,
    timer: Pin<Box<Sleep>>,
}

impl EveryInterval {
    pub(crate) fn new(every: Duration) -> Self {
        Self {
            every,
            timer: Box::pin(tokio::time::sleep(every)),
        }
    }
}

impl PollStrategy for EveryInterval {
    fn poll_drive(&mut self, cx: &mut Context<'_>, _snapshot: &PollSnapshot) -> Poll<Option<()>> {
        if self.timer.as_mut().poll(cx).is_pending() {
            return Poll::Pending;
        }
        let next = tokio::time::Instant::now() + self.every;
        self.timer.as_mut().reset(next);
        // Poll the re-armed timer so it holds this task's waker for the next tick.
        let _ = self.timer.as_mut().poll(cx);
        Poll::Ready(Some(()))
    }
}

impl Clone for EveryInterval {
    fn clone(&self) -> Self {
        Self::new(self.every)
    }
}
