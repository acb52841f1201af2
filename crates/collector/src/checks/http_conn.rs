//! The connection of one direct HTTP check ([`super::http_direct`]): it
//! carries one request and is closed by dropping it.
//!
//! To an address written in the URL, the socket is made here ([`Conn::eager`]) and
//! the request is written as soon as `connect` returns, before the reactor
//! has reported the socket writable: to a near server the handshake is
//! usually done by then, and when it is not the write says so (`EAGAIN`) and
//! the check waits for writability as before. A failed handshake surfaces as
//! the write's error (`ECONNREFUSED` for a refused one), which the check
//! classifies as it did a failed `connect`. Against a loopback nginx at
//! saturation this saves, per check, one `getsockopt(SO_ERROR)` and one trip
//! through the reactor (`make bench-collector`, see the README).
//!
//! Either way the socket is closed with a reset (`SO_LINGER` 0), as HAProxy
//! closes its health checks' connections: by then the answer has been read
//! (the request said `connection: close`, so the server is closing too) or
//! the check has given up on it, so nothing is lost, and neither side keeps
//! the connection in `TIME_WAIT`. A collector checking
//! one server hundreds of times a second would otherwise hold its local
//! ports for a minute each.

use std::io::{self, IoSlice};
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper_util::rt::TokioIo;
use socket2::{Domain, Protocol, SockAddr, SockRef, Socket, Type};
use tokio::net::TcpStream;

/// A check's connection.
pub(super) enum Conn {
    /// To an address in the URL.
    Eager(TokioIo<TcpStream>),
    /// To a name, through hyper-util's connector (which resolves it).
    Resolved(TokioIo<TcpStream>),
}

impl Conn {
    /// Starts connecting to `addr` (`TCP_NODELAY`, `SO_LINGER` 0, non-blocking
    /// and close-on-exec from creation); errors that `connect` reports at once
    /// are returned here, the others by the first write.
    pub(super) fn eager(addr: SocketAddr) -> io::Result<Self> {
        let socket = Socket::new(
            Domain::for_address(addr),
            Type::STREAM.nonblocking(),
            Some(Protocol::TCP),
        )?;
        socket.set_tcp_nodelay(true)?;
        socket.set_linger(Some(Duration::ZERO))?;
        match socket.connect(&SockAddr::from(addr)) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
            Err(e) => return Err(e),
        }
        Ok(Self::Eager(TokioIo::new(TcpStream::from_std(socket.into())?)))
    }

    /// A connection the connector made to a name, set to close with a
    /// reset as [`Conn::eager`]'s does.
    pub(super) fn resolved(io: TokioIo<TcpStream>) -> io::Result<Self> {
        SockRef::from(io.inner()).set_linger(Some(Duration::ZERO))?;
        Ok(Self::Resolved(io))
    }

    fn io(&mut self) -> &mut TokioIo<TcpStream> {
        match self {
            Self::Eager(io) | Self::Resolved(io) => io,
        }
    }
}

impl hyper::rt::Read for Conn {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(self.io()).poll_read(cx, buf)
    }
}

impl hyper::rt::Write for Conn {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.poll_write_vectored(cx, &[IoSlice::new(buf)])
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(self.io()).poll_flush(cx)
    }

    /// Nothing: hyper shuts a `connection: close` exchange's write side
    /// first, one system call for nothing before the drop's `close`.
    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        if let Self::Eager(io) = &*self {
            // First without asking the reactor, which has not reported a
            // socket just connected writable yet, though it usually is.
            // `MSG_NOSIGNAL`: no SIGPIPE from a connection already reset.
            match SockRef::from(io.inner()).send_vectored_with_flags(bufs, libc::MSG_NOSIGNAL) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                done => return Poll::Ready(done),
            }
        }
        Pin::new(self.io()).poll_write_vectored(cx, bufs)
    }
}
