//! Framing SIP messages on a byte stream (TCP, TLS): headers end at the first empty line, the
//! body is exactly Content-Length bytes (RFC 3261 §18.3), and CRLF keep-alives between
//! messages (RFC 5626 §3.5.1) are skipped: never a message, never an error. Each double CRLF
//! ("ping") is counted so the shell can answer it with one CRLF ("pong",
//! [`StreamFramer::take_pings`]).
//!
//! A framing error means the stream can no longer be trusted to be aligned on a message
//! boundary: the shell should answer if it can and close the connection. A message that frames
//! but fails validation is reported without losing alignment, so the connection can stay up.

use super::parse::{Head, find_head_end, leading_crlf, parse_head};
use super::{ParseError, ParseLimits, SipMessage};

/// Why a stream can no longer be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// The header section grew past the message size limit without ending.
    #[error("header section exceeds {limit} bytes")]
    HeadersTooLarge {
        /// The limit.
        limit: usize,
    },
    /// A message on a stream must carry Content-Length (RFC 3261 §18.3).
    #[error("message on a stream transport has no Content-Length header")]
    MissingContentLength,
    /// Headers plus Content-Length exceed the message size limit.
    #[error("message of {size} bytes exceeds the {limit}-byte limit")]
    TooLarge {
        /// Declared size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The head could not be split into lines (bad UTF-8, malformed header line, bad
    /// Content-Length).
    #[error("unreadable message head: {0}")]
    BadHead(ParseError),
}

/// Accumulates stream bytes and yields whole messages.
///
/// ```
/// use mediaseal_sip::message::{ParseLimits, StreamFramer};
///
/// let mut framer = StreamFramer::new(ParseLimits::default());
/// let msg = b"\r\n\r\nOPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK1\r\n\
///     From: <sip:c@d>;tag=1\r\nTo: <sip:a@b>\r\nCall-ID: x\r\nCSeq: 1 OPTIONS\r\n\
///     Content-Length: 0\r\n\r\n";
/// let (first, second) = msg.split_at(40);
/// framer.push(first);
/// assert!(framer.next_message().is_none());
/// framer.push(second);
/// assert!(matches!(framer.next_message(), Some(Ok(Ok(_)))));
/// assert!(framer.next_message().is_none());
/// ```
#[derive(Debug)]
pub struct StreamFramer {
    buf: Vec<u8>,
    limits: ParseLimits,
    failed: bool,
    /// Line ends seen since the last message (a ping is two), kept across reads so a ping
    /// split over two segments still counts.
    line_ends: u8,
    /// Pings not yet taken.
    pings: usize,
}

impl StreamFramer {
    /// A framer with the given limits.
    pub fn new(limits: ParseLimits) -> Self {
        Self {
            buf: Vec::new(),
            limits,
            failed: false,
            line_ends: 0,
            pings: 0,
        }
    }

    /// Double-CRLF keep-alives ("pings", RFC 5626 §3.5.1) seen between messages since the last
    /// call: answer each with one CRLF ("pong") on the same connection. Only what
    /// [`StreamFramer::next_message`] has consumed counts, so call this after draining it.
    pub fn take_pings(&mut self) -> usize {
        std::mem::take(&mut self.pings)
    }

    /// Appends bytes read from the stream.
    pub fn push(&mut self, bytes: &[u8]) {
        if !self.failed {
            self.buf.extend_from_slice(bytes);
        }
    }

    /// Bytes buffered but not yet returned as a message.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// The next complete message: `None` when more bytes are needed, `Some(Err(_))` when the
    /// stream is unusable (close it), `Some(Ok(Err(_)))` for a well-framed message that
    /// failed validation (answer 400 if it was a request; the stream stays aligned), and
    /// `Some(Ok(Ok(message)))` otherwise.
    #[allow(clippy::type_complexity)]
    pub fn next_message(&mut self) -> Option<Result<Result<SipMessage, ParseError>, FrameError>> {
        if self.failed {
            return None;
        }
        let skip = leading_crlf(&self.buf);
        for b in self.buf.drain(..skip) {
            if b == b'\n' {
                self.line_ends += 1;
                if self.line_ends == 2 {
                    self.line_ends = 0;
                    self.pings = self.pings.saturating_add(1);
                }
            }
        }
        if !self.buf.is_empty() {
            // A message starts here: a lone CRLF before it was no ping.
            self.line_ends = 0;
        }
        let limit = self.limits.max_message_size;
        let Some((_, body_offset)) = find_head_end(&self.buf) else {
            if self.buf.len() > limit {
                return Some(Err(self.fail(FrameError::HeadersTooLarge { limit })));
            }
            return None;
        };
        let head: Head = match parse_head(
            self.buf.get(..body_offset).unwrap_or_default(),
            &self.limits,
        ) {
            Ok(h) => h,
            Err(e) => return Some(Err(self.fail(FrameError::BadHead(e)))),
        };
        let Some(len) = head.content_length else {
            return Some(Err(self.fail(FrameError::MissingContentLength)));
        };
        let size = body_offset.saturating_add(len);
        if size > limit {
            return Some(Err(self.fail(FrameError::TooLarge { size, limit })));
        }
        if self.buf.len() < size {
            return None;
        }
        let body = self.buf.get(body_offset..size).unwrap_or_default().to_vec();
        self.buf.drain(..size);
        Some(Ok(SipMessage::from_head(head, body)))
    }

    fn fail(&mut self, e: FrameError) -> FrameError {
        self.failed = true;
        self.buf.clear();
        e
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(body: &str) -> String {
        format!(
            "MESSAGE sip:a@b SIP/2.0\r\nv: SIP/2.0/TLS h;branch=z9hG4bK1\r\nf: <sip:c@d>;tag=1\r\n\
             t: <sip:a@b>\r\ni: x\r\nCSeq: 1 MESSAGE\r\nl: {}\r\n\r\n{body}",
            body.len()
        )
    }

    #[test]
    fn frames_back_to_back_messages_byte_by_byte() {
        let stream = format!("{}\r\n\r\n{}", msg("hello"), msg("world!"));
        let mut f = StreamFramer::new(ParseLimits::default());
        let mut bodies = Vec::new();
        for b in stream.as_bytes() {
            f.push(std::slice::from_ref(b));
            while let Some(m) = f.next_message() {
                bodies.push(m.unwrap().unwrap().body().to_vec());
            }
        }
        assert_eq!(bodies, [b"hello".to_vec(), b"world!".to_vec()]);
        assert_eq!(f.buffered(), 0);
    }

    #[test]
    fn double_crlf_pings_are_counted_and_never_a_message() {
        let mut f = StreamFramer::new(ParseLimits::default());
        // Two pings, the second split over reads, then a message, then a ping.
        for part in ["\r\n\r\n", "\r\n", "\r", "\n"] {
            f.push(part.as_bytes());
            assert!(f.next_message().is_none());
        }
        assert_eq!(f.take_pings(), 2);
        assert_eq!(f.take_pings(), 0, "taken once");
        f.push(format!("{}\r\n\r\n", msg("hi")).as_bytes());
        assert_eq!(f.next_message().unwrap().unwrap().unwrap().body(), b"hi");
        assert!(f.next_message().is_none());
        assert_eq!(f.take_pings(), 1);
        // A single CRLF before a message is not a ping.
        f.push(format!("\r\n{}", msg("x")).as_bytes());
        assert!(matches!(f.next_message(), Some(Ok(Ok(_)))));
        assert_eq!(f.take_pings(), 0);
        assert_eq!(f.buffered(), 0);
    }

    #[test]
    fn missing_length_and_oversize_close_the_stream() {
        let mut f = StreamFramer::new(ParseLimits::default());
        f.push(msg("x").replace("l: 1\r\n", "").as_bytes());
        assert_eq!(
            f.next_message(),
            Some(Err(FrameError::MissingContentLength))
        );
        assert_eq!(f.next_message(), None);

        let mut f = StreamFramer::new(ParseLimits {
            max_message_size: 300,
            max_headers: 10,
        });
        f.push(msg("x").replace("l: 1", "l: 100000").as_bytes());
        assert!(matches!(
            f.next_message(),
            Some(Err(FrameError::TooLarge { .. }))
        ));

        let mut f = StreamFramer::new(ParseLimits {
            max_message_size: 64,
            max_headers: 10,
        });
        f.push(&[b'A'; 100]);
        assert_eq!(
            f.next_message(),
            Some(Err(FrameError::HeadersTooLarge { limit: 64 }))
        );
    }

    #[test]
    fn invalid_but_framed_message_keeps_alignment() {
        let mut f = StreamFramer::new(ParseLimits::default());
        let bad = msg("ab").replace("CSeq: 1 MESSAGE", "CSeq: 1 INVITE");
        f.push(format!("{bad}{}", msg("ok")).as_bytes());
        assert!(matches!(
            f.next_message(),
            Some(Ok(Err(ParseError::CSeqMethodMismatch { .. })))
        ));
        assert_eq!(f.next_message().unwrap().unwrap().unwrap().body(), b"ok");
    }
}
