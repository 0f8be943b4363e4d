//! Receiving a socket's waiting datagrams with one `recvmmsg(2)` instead of a `recvfrom(2)`
//! each.
//!
//! The relay's sockets are registered edge-triggered (mio), so a readable socket has to be read
//! until the kernel says it is empty. With `recvfrom` that costs one extra call per wakeup, the
//! one that returns `EAGAIN`: at 50 packets per second per socket a wakeup almost always finds
//! one datagram, so that empty read was a third of the relay's system calls per packet. A
//! non-blocking `recvmmsg` that returns fewer datagrams than it had room for has emptied the
//! queue (anything arriving later raises a new edge), so a wakeup costs one receive call.
//!
//! The same [`RecvBatch`] serves the relay threads and the plain forwarder of the relay
//! benchmark, so that anchor keeps the relay's socket strategy.

use std::io::{self, IoSliceMut};
use std::net::SocketAddr;
use std::os::fd::AsRawFd;

use nix::errno::Errno;
use nix::sys::socket::{MsgFlags, MultiHeaders, SockaddrStorage, recvmmsg};

/// Datagrams taken per call; more than a relay socket holds at the loads it is built for.
pub const RECV_BATCH: usize = 8;
/// Room for one datagram: larger than any RTP packet on a path with a 1500-byte MTU.
pub const DATAGRAM_BUF: usize = 2048;

/// One received datagram's place in the batch.
#[derive(Clone, Copy, Debug, Default)]
struct Received {
    len: usize,
    source: Option<SocketAddr>,
}

/// Buffers and headers for [`RECV_BATCH`] datagrams, reused for every call.
///
/// The kernel writes each source address's length into the reused headers, and the next call
/// offers that length as the room for the address. A thread's sockets all share one address
/// family (the relay binds them to the one media address), so the length always fits; a
/// source that did not would come back without an address and be dropped, never misread.
pub struct RecvBatch {
    headers: MultiHeaders<SockaddrStorage>,
    bufs: Box<[[u8; DATAGRAM_BUF]; RECV_BATCH]>,
    received: [Received; RECV_BATCH],
    count: usize,
}

impl std::fmt::Debug for RecvBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecvBatch").finish_non_exhaustive()
    }
}

impl Default for RecvBatch {
    fn default() -> Self {
        Self::new()
    }
}

impl RecvBatch {
    /// Allocates the buffers once.
    pub fn new() -> Self {
        Self {
            headers: MultiHeaders::preallocate(RECV_BATCH, None),
            bufs: Box::new([[0; DATAGRAM_BUF]; RECV_BATCH]),
            received: [Received::default(); RECV_BATCH],
            count: 0,
        }
    }

    /// Takes up to [`RECV_BATCH`] waiting datagrams from `socket` without blocking, each
    /// into the first `limit` bytes of its buffer (the rest stays free for what the caller
    /// appends, such as an SRTP tag). Returns how many arrived: 0 when none was waiting.
    /// A count below [`RECV_BATCH`] means the socket's queue is empty. A datagram longer
    /// than `limit` is discarded (it cannot be a packet the relay accepts), as is one whose
    /// source address cannot be read.
    pub fn recv(&mut self, socket: &impl AsRawFd, limit: usize) -> io::Result<usize> {
        self.count = 0;
        let limit = limit.min(DATAGRAM_BUF);
        let mut slices: [[IoSliceMut<'_>; 1]; RECV_BATCH] = self
            .bufs
            .each_mut()
            .map(|b| [IoSliceMut::new(&mut b[..limit])]);
        let results = match recvmmsg(
            socket.as_raw_fd(),
            &mut self.headers,
            slices.iter_mut(),
            MsgFlags::MSG_DONTWAIT,
            None,
        ) {
            Ok(r) => r,
            Err(Errno::EAGAIN) => return Ok(0),
            Err(e) => return Err(io::Error::from(e)),
        };
        let mut count = 0;
        for (slot, msg) in self.received.iter_mut().zip(results) {
            count += 1;
            let truncated = msg.flags.contains(MsgFlags::MSG_TRUNC);
            *slot = Received {
                len: if truncated { 0 } else { msg.bytes },
                source: if truncated {
                    None
                } else {
                    msg.address.as_ref().and_then(socket_addr)
                },
            };
        }
        self.count = count;
        Ok(count)
    }

    /// The `i`th datagram of the last [`recv`](Self::recv): its whole buffer (the datagram
    /// is at the start), its length and its source. `None` for a discarded datagram or an
    /// index beyond the count.
    pub fn datagram(&mut self, i: usize) -> Option<(&mut [u8; DATAGRAM_BUF], usize, SocketAddr)> {
        if i >= self.count {
            return None;
        }
        let r = *self.received.get(i)?;
        let source = r.source?;
        let buf = self.bufs.get_mut(i)?;
        Some((buf, r.len, source))
    }
}

fn socket_addr(storage: &SockaddrStorage) -> Option<SocketAddr> {
    if let Some(v4) = storage.as_sockaddr_in() {
        return Some(SocketAddr::V4((*v4).into()));
    }
    // nix checks the family and that the kernel's length covers the whole address. An IPv4
    // source on a dual-stack socket arrives v4-mapped and stays v6, as with `recv_from`.
    storage
        .as_sockaddr_in6()
        .map(|v6| SocketAddr::V6((*v6).into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::UdpSocket;

    fn pair() -> (UdpSocket, UdpSocket) {
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        rx.set_nonblocking(true).unwrap();
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        (rx, tx)
    }

    #[test]
    fn an_empty_socket_gives_no_datagrams() {
        let (rx, _tx) = pair();
        let mut batch = RecvBatch::new();
        assert_eq!(batch.recv(&rx, 1500).unwrap(), 0);
        assert!(batch.datagram(0).is_none());
    }

    #[test]
    fn queued_datagrams_come_in_order_with_their_source_and_a_short_batch_means_empty() {
        let (rx, tx) = pair();
        let to = rx.local_addr().unwrap();
        for i in 0..3u8 {
            tx.send_to(&[i; 5], to).unwrap();
        }
        let mut batch = RecvBatch::new();
        let mut got = Vec::new();
        for _ in 0..100 {
            let n = batch.recv(&rx, 1500).unwrap();
            for i in 0..n {
                let (buf, len, source) = batch.datagram(i).unwrap();
                assert_eq!(source, tx.local_addr().unwrap());
                got.push(buf[..len].to_vec());
            }
            if got.len() == 3 {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert_eq!(got, vec![vec![0u8; 5], vec![1u8; 5], vec![2u8; 5]]);
        assert_eq!(batch.recv(&rx, 1500).unwrap(), 0);
    }

    #[test]
    fn more_than_a_batch_takes_two_calls_and_the_first_is_full() {
        let (rx, tx) = pair();
        let to = rx.local_addr().unwrap();
        let total = RECV_BATCH + 3;
        for i in 0..total {
            tx.send_to(&[u8::try_from(i).unwrap(); 3], to).unwrap();
        }
        let mut batch = RecvBatch::new();
        assert_eq!(batch.recv(&rx, 1500).unwrap(), RECV_BATCH);
        let (buf, len, _) = batch.datagram(RECV_BATCH - 1).unwrap();
        assert_eq!(&buf[..len], &[u8::try_from(RECV_BATCH - 1).unwrap(); 3]);
        assert_eq!(batch.recv(&rx, 1500).unwrap(), 3);
    }

    #[test]
    fn an_oversized_datagram_is_discarded_not_truncated() {
        let (rx, tx) = pair();
        let to = rx.local_addr().unwrap();
        tx.send_to(&[7u8; 300], to).unwrap();
        tx.send_to(&[8u8; 100], to).unwrap();
        let mut batch = RecvBatch::new();
        assert_eq!(batch.recv(&rx, 200).unwrap(), 2);
        assert!(
            batch.datagram(0).is_none(),
            "a cut packet must not be handed on"
        );
        let (buf, len, _) = batch.datagram(1).unwrap();
        assert_eq!(&buf[..len], &[8u8; 100]);
    }
}
