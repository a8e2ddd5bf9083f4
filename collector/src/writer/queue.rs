//! The bounded span queue between the OTLP receivers and the span writer.
//!
//! Memory is bounded by bytes and by spans: a request is admitted only if
//! what is already queued (including the batches being written) plus its
//! own stays within both `capacity_bytes` and `capacity_spans`. The bytes
//! are those of the converted rows and, once per request, of the resources
//! they share (see [`SpanRow::size_bytes`]). An empty queue admits any one
//! request, so a request larger than the capacity is not refused forever;
//! memory is then bounded by the capacity + the largest request the
//! receivers accept. A refused request is answered with the protocol's
//! retry signal.
//!
//! An admitted request gets an [`Ack`]: it resolves once the batch holding
//! its rows has been written (committed, or given up on), with how many of
//! them were not stored, so a receiver answers its sender only then.

use std::sync::Arc;
use std::sync::Mutex as SyncMutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::{Mutex, mpsc, oneshot, watch};
use tokio::time::Instant;

use crate::otlp::span_row::SpanRow;

/// Why a request was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The writer is behind: retry later. What is queued now.
    Full { spans: usize, bytes: usize },
    /// The collector is shutting down.
    Closed,
}

/// What the queue holds, and may hold.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Occupancy {
    pub spans: usize,
    pub bytes: usize,
}

/// What became of a request's rows once their batch was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Written {
    /// Rows Postgres refused, or that could not be written before shutdown.
    pub not_stored: usize,
}

/// Resolves when the request's rows are written; an error if the writer
/// stopped without writing them.
pub type Ack = oneshot::Receiver<Written>;

/// The rows of one request, with the bytes they were admitted for.
struct Chunk {
    rows: Vec<SpanRow>,
    bytes: usize,
    ack: oneshot::Sender<Written>,
}

/// A batch for the writer: the rows, the room to give back when done, and
/// whom to tell (one ack per request, in row order).
pub struct Batch {
    pub rows: Vec<SpanRow>,
    pub bytes: usize,
    acks: Vec<(usize, oneshot::Sender<Written>)>,
}

impl Batch {
    /// Tells each request how many of its rows were not stored; `not_stored`
    /// are indices into `rows`.
    pub fn acknowledge(&mut self, not_stored: &[usize]) {
        let mut start = 0;
        for (len, ack) in self.acks.drain(..) {
            let end = start + len;
            let lost = not_stored
                .iter()
                .filter(|&&i| i >= start && i < end)
                .count();
            // The receiver may have stopped waiting (its sender timed out).
            let _ = ack.send(Written { not_stored: lost });
            start = end;
        }
    }
}

/// The receivers' side (cheap to clone).
#[derive(Clone)]
pub struct SpanQueue {
    tx: mpsc::UnboundedSender<Chunk>,
    queued: Arc<SyncMutex<Occupancy>>,
    capacity: Occupancy,
}

/// The writers' side, shared by every writer task: one gathers a batch
/// while another writes its own.
pub struct SpanQueueReceiver {
    rx: Mutex<mpsc::UnboundedReceiver<Chunk>>,
    queued: Arc<SyncMutex<Occupancy>>,
    closing: AtomicBool,
}

pub fn span_queue(capacity: Occupancy) -> (SpanQueue, SpanQueueReceiver) {
    let (tx, rx) = mpsc::unbounded_channel();
    let queued = Arc::new(SyncMutex::new(Occupancy::default()));
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
    /// Queues `rows`, which hold `bytes`, if there is room (see the module doc).
    pub fn try_push(&self, rows: Vec<SpanRow>, bytes: usize) -> Result<Ack, Refused> {
        let spans = rows.len();
        let (ack, acked) = oneshot::channel();
        if spans == 0 {
            let _ = ack.send(Written { not_stored: 0 });
            return Ok(acked);
        }
        {
            let mut queued = self.queued.lock().unwrap_or_else(|p| p.into_inner());
            let empty = queued.spans == 0;
            if !empty
                && (queued.spans + spans > self.capacity.spans
                    || queued.bytes + bytes > self.capacity.bytes)
            {
                return Err(Refused::Full {
                    spans: queued.spans,
                    bytes: queued.bytes,
                });
            }
            queued.spans += spans;
            queued.bytes += bytes;
        }
        if self.tx.send(Chunk { rows, bytes, ack }).is_err() {
            self.release(spans, bytes);
            return Err(Refused::Closed);
        }
        Ok(acked)
    }

    fn release(&self, spans: usize, bytes: usize) {
        release(&self.queued, spans, bytes);
    }

    /// What is queued or being written right now.
    pub fn queued(&self) -> Occupancy {
        *self.queued.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn release(queued: &SyncMutex<Occupancy>, spans: usize, bytes: usize) {
    let mut queued = queued.lock().unwrap_or_else(|p| p.into_inner());
    queued.spans = queued.spans.saturating_sub(spans);
    queued.bytes = queued.bytes.saturating_sub(bytes);
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
    ) -> Option<Batch> {
        let mut rx = self.rx.lock().await;
        let first = loop {
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
        let mut batch = Batch {
            acks: vec![(first.rows.len(), first.ack)],
            rows: first.rows,
            bytes: first.bytes,
        };
        let deadline = Instant::now() + timeout;
        while batch.rows.len() < size {
            let more = tokio::select! {
                v = rx.recv() => v,
                _ = tokio::time::sleep_until(deadline) => break,
                // At shutdown, write what there is now: its senders are waiting.
                _ = stop.wait_for(|s| *s), if !self.is_closing() => break,
            };
            match more {
                Some(chunk) => {
                    batch.acks.push((chunk.rows.len(), chunk.ack));
                    batch.rows.extend(chunk.rows);
                    batch.bytes += chunk.bytes;
                }
                None => break,
            }
        }
        Some(batch)
    }

    /// Whether shutdown has begun (the queue refuses new spans).
    pub fn is_closing(&self) -> bool {
        self.closing.load(Ordering::Acquire)
    }

    /// Frees the room of a batch once it is written (or given up on).
    pub fn release(&self, batch: &Batch) {
        release(&self.queued, batch.rows.len(), batch.bytes);
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
                attributes: "{}".into(),
                resource: None,
                scope: None,
            })
            .collect()
    }

    fn capacity(spans: usize, bytes: usize) -> Occupancy {
        Occupancy { spans, bytes }
    }

    #[test]
    fn refuses_when_full_and_admits_again_after_release() {
        let (queue, receiver) = span_queue(capacity(10, 1 << 20));
        assert!(queue.try_push(rows(6), 60).is_ok());
        assert!(queue.try_push(rows(4), 40).is_ok());
        assert_eq!(
            queue.try_push(rows(1), 10).err(),
            Some(Refused::Full {
                spans: 10,
                bytes: 100
            })
        );
        receiver.release(&Batch {
            rows: rows(6),
            bytes: 60,
            acks: vec![],
        });
        assert!(queue.try_push(rows(5), 50).is_ok());
        assert_eq!(queue.queued(), capacity(9, 90));
    }

    #[test]
    fn bytes_bound_the_queue_whatever_the_span_count() {
        let (queue, _receiver) = span_queue(capacity(1_000_000, 1000));
        assert!(queue.try_push(rows(1), 900).is_ok());
        assert_eq!(
            queue.try_push(rows(1), 200).err(),
            Some(Refused::Full {
                spans: 1,
                bytes: 900
            })
        );
        assert!(queue.try_push(rows(1), 100).is_ok());
    }

    #[test]
    fn an_empty_queue_admits_an_oversized_request() {
        let (queue, _receiver) = span_queue(capacity(3, 10));
        assert!(queue.try_push(rows(5), 50).is_ok());
        assert!(matches!(
            queue.try_push(rows(1), 1),
            Err(Refused::Full { .. })
        ));
    }

    #[test]
    fn a_closed_queue_refuses() {
        let (queue, receiver) = span_queue(capacity(3, 100));
        drop(receiver);
        assert_eq!(queue.try_push(rows(1), 1).err(), Some(Refused::Closed));
        assert_eq!(queue.queued(), Occupancy::default());
    }

    #[tokio::test]
    async fn each_request_is_told_what_became_of_its_own_rows() {
        let (queue, receiver) = span_queue(capacity(100, 1 << 20));
        let first = queue.try_push(rows(3), 30).unwrap();
        let second = queue.try_push(rows(2), 20).unwrap();
        let (_stop_tx, mut stop) = watch::channel(false);
        let mut batch = receiver
            .next_batch(10, Duration::from_millis(10), &mut stop)
            .await
            .unwrap();
        assert_eq!(batch.rows.len(), 5);
        // Row 1 of the first request and row 0 of the second were refused.
        batch.acknowledge(&[1, 3]);
        assert_eq!(first.await.unwrap(), Written { not_stored: 1 });
        assert_eq!(second.await.unwrap(), Written { not_stored: 1 });
    }
}
