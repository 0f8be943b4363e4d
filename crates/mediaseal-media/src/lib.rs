//! Media formats, sans-IO: the bytes of WAV and Matroska files, read and written in memory.
//!
//! Nothing here touches a file, a socket or a clock. Every function takes bytes the caller
//! already holds (typically the first few KiB of a recording, seen through a plaintext tap of
//! the sealing sink) and every reader treats its input as hostile: a malformed header is an
//! error or `None`, never a panic.
//!
//! - [`wav`]: RIFF/WAVE headers (PCM and G.711), durations, and a streaming header for
//!   recorders that do not know the length up front.
//! - [`matroska`]: the EBML head and segment info of Matroska/WebM tracks, and their length
//!   measured from their blocks.
//! - [`mkv_writer`]: a streaming Matroska writer for live tracks (Opus, PCMU, VP8, H.264),
//!   for sinks that cannot seek.
//! - [`g711`]: μ-law and A-law samples.

#![deny(missing_docs)]
#![deny(rustdoc::broken_intra_doc_links)]

pub mod g711;
pub mod matroska;
pub mod mkv_writer;
pub mod wav;
