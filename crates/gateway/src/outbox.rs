//! A WebSocket client's outbox: its bounded queue and, once connected, its
//! socket. The publisher writes an event straight to the socket when nothing
//! waits before it and the socket takes it at once; only otherwise is the
//! event queued and the client's task woken to write it. At 10,000 clients
//! most deliveries then cost one `send` and no task wake-up, select or
//! queue (before: a wake-up, a poll of four futures and a queue per event
//! per client, about as much CPU as the kernel's send).
//!
//! Order is kept: once anything waits (queued events, a write the socket did
//! not take in full, its error), the publisher only queues, until the
//! client's task has written and flushed everything ([`Queue::pump`]).
//!
//! When the queue is full its oldest event goes (counted), so a slow client
//! never holds back the publisher or the other clients.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker, ready};

use axum::extract::ws::{Message, WebSocket};
use futures::{Sink, Stream};
use tokio::sync::Notify;

use crate::hub::HubEvent;
use crate::metrics as m;

/// One client's queue and socket.
pub struct Queue {
    state: Mutex<State>,
    cap: usize,
    dropped: AtomicU64,
    /// Events handed to the socket, for the one-in-16 latency sample.
    handed: AtomicU64,
    sent: metrics::Counter,
    latency: metrics::Histogram,
    /// Signalled when the client's task must write (a permit is kept if
    /// nobody waits).
    pub ready: Notify,
}

impl std::fmt::Debug for Queue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Queue")
            .field("cap", &self.cap)
            .field("len", &self.len())
            .finish_non_exhaustive()
    }
}

struct State {
    items: VecDeque<Arc<HubEvent>>,
    /// `None` until the client's socket is attached (and in the hub's own
    /// tests, which have none): events are then only queued.
    socket: Option<WebSocket>,
    /// Something waits for the client's task: queued events, a write not
    /// yet flushed, or the socket's error. The publisher only queues then.
    behind: bool,
}

/// What an attempt to write at once did.
enum Offer {
    /// Written and flushed.
    Sent,
    /// Taken by the socket's buffer, not yet flushed.
    Taken,
    /// Not taken: no room, or the socket failed.
    Refused,
}

impl Queue {
    pub(crate) fn new(cap: usize) -> Self {
        Self {
            state: Mutex::new(State {
                items: VecDeque::with_capacity(cap.min(64)),
                socket: None,
                behind: false,
            }),
            cap: cap.max(1),
            dropped: AtomicU64::new(0),
            handed: AtomicU64::new(0),
            sent: metrics::counter!(m::WS_SENT),
            latency: metrics::histogram!(m::WS_LATENCY),
            ready: Notify::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// From now on events go to `socket`, the client's connection.
    pub fn attach(&self, socket: WebSocket) {
        self.lock().socket = Some(socket);
    }

    /// Counts an event handed to the socket (one in 16 timed: enough for the
    /// distribution, cheap at 10,000 clients).
    fn handed(&self, e: &HubEvent) {
        self.sent.increment(1);
        if self.handed.fetch_add(1, Ordering::Relaxed).is_multiple_of(16) {
            self.latency.record(e.received.elapsed().as_secs_f64());
        }
    }

    /// Delivers `e`: at once when nothing waits and the socket takes it,
    /// else queued for the client's task.
    pub(crate) fn push(&self, e: Arc<HubEvent>) {
        let mut st = self.lock();
        let ahead = !st.behind && st.items.is_empty();
        if ahead && let Some(socket) = st.socket.as_mut() {
            match offer(socket, &e) {
                Offer::Sent => {
                    drop(st);
                    self.handed(&e);
                    return;
                }
                Offer::Taken => {
                    st.behind = true;
                    drop(st);
                    self.handed(&e);
                    self.ready.notify_one();
                    return;
                }
                Offer::Refused => st.behind = true,
            }
        }
        if st.items.len() >= self.cap {
            st.items.pop_front();
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
        st.items.push_back(e);
        drop(st);
        self.ready.notify_one();
    }

    /// Writes what is queued and flushes the socket; ready once everything
    /// is out, when the publisher may write at once again. An error is the
    /// socket's: the client is gone.
    pub fn pump(&self, cx: &mut Context<'_>) -> Poll<Result<(), axum::Error>> {
        let mut st = self.lock();
        let State { items, socket, behind } = &mut *st;
        let Some(socket) = socket.as_mut() else {
            return Poll::Ready(Ok(()));
        };
        let mut socket = Pin::new(socket);
        while !items.is_empty() {
            ready!(socket.as_mut().poll_ready(cx))?;
            let Some(e) = items.pop_front() else { break };
            socket.as_mut().start_send(Message::Text(e.json.clone()))?;
            self.handed(&e);
        }
        ready!(socket.as_mut().poll_flush(cx))?;
        *behind = false;
        Poll::Ready(Ok(()))
    }

    /// The client's next message; pending forever without a socket.
    pub fn poll_next(&self, cx: &mut Context<'_>) -> Poll<Option<Result<Message, axum::Error>>> {
        match self.lock().socket.as_mut() {
            Some(socket) => Pin::new(socket).poll_next(cx),
            None => Poll::Pending,
        }
    }

    /// Sends `msg` (a reply, a ping, a close) after what is queued.
    pub async fn send(&self, msg: Message) -> Result<(), axum::Error> {
        let mut msg = Some(msg);
        std::future::poll_fn(|cx| {
            let mut st = self.lock();
            let Some(socket) = st.socket.as_mut() else {
                return Poll::Ready(Ok(()));
            };
            let mut socket = Pin::new(socket);
            ready!(socket.as_mut().poll_ready(cx))?;
            if let Some(m) = msg.take() {
                socket.as_mut().start_send(m)?;
                st.behind = true;
            }
            Poll::Ready(Ok(()))
        })
        .await?;
        std::future::poll_fn(|cx| self.pump(cx)).await
    }

    /// Takes every queued event, oldest first (the hub's tests read the
    /// queue of a member without a socket this way).
    #[cfg(test)]
    pub(crate) fn drain(&self, into: &mut Vec<Arc<HubEvent>>) {
        into.extend(self.lock().items.drain(..));
    }

    /// Events lost to a full queue since the last call.
    pub fn take_dropped(&self) -> u64 {
        self.dropped.swap(0, Ordering::Relaxed)
    }

    /// Events waiting.
    pub fn len(&self) -> usize {
        self.lock().items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Writes `e` to `socket` if that needs no wait. Polled with a waker that
/// does nothing: whatever is left is the client's task's, which is woken.
fn offer(socket: &mut WebSocket, e: &HubEvent) -> Offer {
    let mut cx = Context::from_waker(Waker::noop());
    let mut socket = Pin::new(socket);
    match socket.as_mut().poll_ready(&mut cx) {
        Poll::Ready(Ok(())) => {}
        Poll::Ready(Err(_)) | Poll::Pending => return Offer::Refused,
    }
    if socket.as_mut().start_send(Message::Text(e.json.clone())).is_err() {
        return Offer::Refused;
    }
    match socket.as_mut().poll_flush(&mut cx) {
        Poll::Ready(Ok(())) => Offer::Sent,
        Poll::Ready(Err(_)) | Poll::Pending => Offer::Taken,
    }
}
