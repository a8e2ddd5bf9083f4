//! The bounded span queue between the OTLP receivers and the span writer.
//!
//! Memory is bounded by counting spans, not requests: a request is admitted
//! only if the spans already queued (including the batch being written) plus
//! its own stay within `capacity`. An empty queue admits any one request, so
//! a request larger than the capacity is not refused forever; memory is then
//! bounded by `capacity` + the largest request the receivers accept.
//! A refused request is answered with the protocol's retry signal.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::{Mutex, mpsc, watch};
use tokio::time::Instant;

use crate::otlp::span_row::SpanRow;

/// Why a request was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The writer is behind: retry later.
    Full { queued: usize, capacity: usize },
    /// The collector is shutting down.
    Closed,
}

/// The receivers' side (cheap to clone).
#[derive(Clone)]
pub struct SpanQueue {
    tx: mpsc::UnboundedSender<Vec<SpanRow>>,
    queued: Arc<AtomicUsize>,
    capacity: usize,
}

/// The writers' side, shared by every writer task: one gathers a batch
/// while another writes its own.
pub struct SpanQueueReceiver {
    rx: Mutex<mpsc::UnboundedReceiver<Vec<SpanRow>>>,
    queued: Arc<AtomicUsize>,
    closing: AtomicBool,
}

pub fn span_queue(capacity: usize) -> (SpanQueue, SpanQueueReceiver) {
    let (tx, rx) = mpsc::unbounded_channel();
    let queued = Arc::new(AtomicUsize::new(0));
    (
        SpanQueue {
            tx,
            queued: queued.clone(),
            capacity,
        },
        SpanQueueReceiver {
            rx: Mutex::new(rx),
            queued,
            closing: AtomicBool::new(false),
        },
    )
}

impl SpanQueue {
    /// Queues `rows` if there is room (see the module doc for "room").
    pub fn try_push(&self, rows: Vec<SpanRow>) -> Result<(), Refused> {
        let n = rows.len();
        if n == 0 {
            return Ok(());
        }
        let mut current = self.queued.load(Ordering::Acquire);
        loop {
            if current > 0 && current + n > self.capacity {
                return Err(Refused::Full {
                    queued: current,
                    capacity: self.capacity,
                });
            }
            match self.queued.compare_exchange_weak(
                current,
                current + n,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => break,
                Err(actual) => current = actual,
            }
        }
        if self.tx.send(rows).is_err() {
            self.queued.fetch_sub(n, Ordering::AcqRel);
            return Err(Refused::Closed);
        }
        Ok(())
    }

    /// Spans queued or being written right now.
    pub fn queued(&self) -> usize {
        self.queued.load(Ordering::Acquire)
    }
}

impl SpanQueueReceiver {
    /// The next batch: waits for spans, then gathers more until `size`
    /// spans or `timeout` after the first. Once `stop` is true the queue is
    /// closed to new spans and drained; `None` when it is empty.
    pub async fn next_batch(
        &self,
        size: usize,
        timeout: Duration,
        stop: &mut watch::Receiver<bool>,
    ) -> Option<Vec<SpanRow>> {
        let mut rx = self.rx.lock().await;
        let mut batch = loop {
            if self.is_closing() {
                break rx.recv().await?;
            }
            tokio::select! {
                v = rx.recv() => break v?,
                _ = stop.wait_for(|s| *s) => {
                    // Refuse new spans, then drain what is queued.
                    rx.close();
                    self.closing.store(true, Ordering::Release);
                }
            }
        };
        let deadline = Instant::now() + timeout;
        while batch.len() < size {
            let more = tokio::select! {
                v = rx.recv() => v,
                _ = tokio::time::sleep_until(deadline) => break,
            };
            match more {
                Some(rows) => batch.extend(rows),
                None => break,
            }
        }
        Some(batch)
    }

    /// Whether shutdown has begun (the queue refuses new spans).
    pub fn is_closing(&self) -> bool {
        self.closing.load(Ordering::Acquire)
    }

    /// Frees the room of `n` spans once they are written (or given up on).
    pub fn release(&self, n: usize) {
        self.queued.fetch_sub(n, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;

    fn rows(n: usize) -> Vec<SpanRow> {
        (0..n)
            .map(|i| SpanRow {
                trace_id: format!("{i:032x}"),
                span_id: format!("{i:016x}"),
                parent_span_id: None,
                service: "s".into(),
                operation: "op".into(),
                kind: 0,
                start_time: Utc::now(),
                duration_us: 1,
                status_code: 0,
                attributes: serde_json::json!({}),
            })
            .collect()
    }

    #[test]
    fn refuses_when_full_and_admits_again_after_release() {
        let (queue, receiver) = span_queue(10);
        assert_eq!(queue.try_push(rows(6)), Ok(()));
        assert_eq!(queue.try_push(rows(4)), Ok(()));
        assert_eq!(
            queue.try_push(rows(1)),
            Err(Refused::Full {
                queued: 10,
                capacity: 10
            })
        );
        receiver.release(6);
        assert_eq!(queue.try_push(rows(5)), Ok(()));
        assert_eq!(queue.queued(), 9);
    }

    #[test]
    fn an_empty_queue_admits_an_oversized_request() {
        let (queue, _receiver) = span_queue(3);
        assert_eq!(queue.try_push(rows(5)), Ok(()));
        assert!(matches!(queue.try_push(rows(1)), Err(Refused::Full { .. })));
    }

    #[test]
    fn a_closed_queue_refuses() {
        let (queue, receiver) = span_queue(3);
        drop(receiver);
        assert_eq!(queue.try_push(rows(1)), Err(Refused::Closed));
        assert_eq!(queue.queued(), 0);
    }
}
