//! SRTP (placeholder, being written).
