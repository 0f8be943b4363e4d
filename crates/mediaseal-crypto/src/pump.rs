//! Moves bytes from a reader through a transform into a writer in bounded memory, optionally with
//! reading and writing on their own thread so that I/O overlaps the cipher work.

use std::io::{self, Read, Write};
use std::sync::mpsc;

/// Number of chunk buffers in flight when I/O runs on its own thread: one being read, one being
/// transformed, one being written.
const BUFFERS_IN_FLIGHT: usize = 3;

/// How the input is cut and who does the work.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PumpConfig {
    /// Bytes of input handed to the transform at a time (the last chunk may be shorter).
    pub(crate) chunk: usize,
    /// Read and write on a separate thread while the transform runs.
    pub(crate) overlap_io: bool,
}

/// A failure while pumping: either the I/O or the transform.
#[derive(Debug)]
pub(crate) enum PumpError<E> {
    Io(io::Error),
    Transform(E),
}

/// One chunk of input and the transform's output for it.
struct Job {
    input: Vec<u8>,
    output: Vec<u8>,
    last: bool,
}

/// Reads until `buf` is full or the reader is exhausted; returns the number of bytes read.
pub(crate) fn read_full(reader: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// Reads chunks with one byte of lookahead, so every chunk knows whether it is the last.
struct ChunkReader<R> {
    reader: R,
    carry: Option<u8>,
    done: bool,
}

impl<R: Read> ChunkReader<R> {
    fn new(reader: R) -> Self {
        Self {
            reader,
            carry: None,
            done: false,
        }
    }

    /// Fills `buf` (resized to `chunk`) and says whether it is the final chunk. After the final
    /// chunk, returns `None`. An empty input yields exactly one empty, final chunk.
    fn next(&mut self, buf: &mut Vec<u8>, chunk: usize) -> io::Result<Option<bool>> {
        if self.done {
            return Ok(None);
        }
        buf.resize(chunk, 0);
        let mut filled = 0;
        if let Some(b) = self.carry.take() {
            buf[0] = b;
            filled = 1;
        }
        filled += read_full(&mut self.reader, &mut buf[filled..])?;
        buf.truncate(filled);
        let last = if filled < chunk {
            true
        } else {
            let mut probe = [0u8; 1];
            let got = read_full(&mut self.reader, &mut probe)?;
            if got == 1 {
                self.carry = Some(probe[0]);
            }
            got == 0
        };
        self.done = last;
        Ok(Some(last))
    }
}

/// Runs `transform(input, output, last)` over every chunk of `reader` and writes each `output`
/// to `writer` in order. `output` arrives holding whatever the previous chunk left in it, and the
/// transform sets its length: reusing the length means resizing costs nothing in the steady state,
/// where clearing and refilling would zero every output byte once more before the cipher writes it.
pub(crate) fn pump<R, W, E, F>(
    reader: R,
    mut writer: W,
    config: PumpConfig,
    mut transform: F,
) -> Result<W, PumpError<E>>
where
    R: Read + Send,
    W: Write + Send,
    E: Send,
    F: FnMut(&[u8], &mut Vec<u8>, bool) -> Result<(), E>,
{
    let chunk = config.chunk.max(1);
    if !config.overlap_io {
        let mut chunks = ChunkReader::new(reader);
        let mut input = Vec::with_capacity(chunk);
        let mut output = Vec::with_capacity(chunk + 64);
        while let Some(last) = chunks.next(&mut input, chunk).map_err(PumpError::Io)? {
            transform(&input, &mut output, last).map_err(PumpError::Transform)?;
            writer.write_all(&output).map_err(PumpError::Io)?;
        }
        writer.flush().map_err(PumpError::Io)?;
        return Ok(writer);
    }

    std::thread::scope(|scope| {
        let (to_transform, jobs) = mpsc::sync_channel::<Job>(BUFFERS_IN_FLIGHT);
        let (to_io, done) = mpsc::sync_channel::<Job>(BUFFERS_IN_FLIGHT);
        let io_thread = scope.spawn(move || -> io::Result<W> {
            let mut chunks = ChunkReader::new(reader);
            let mut free: Vec<Job> = (0..BUFFERS_IN_FLIGHT)
                .map(|_| Job {
                    input: Vec::with_capacity(chunk),
                    output: Vec::with_capacity(chunk + 64),
                    last: false,
                })
                .collect();
            let mut in_flight = 0usize;
            let mut exhausted = false;
            loop {
                while !exhausted && let Some(mut job) = free.pop() {
                    match chunks.next(&mut job.input, chunk)? {
                        Some(last) => {
                            job.last = last;
                            exhausted = last;
                            if to_transform.send(job).is_err() {
                                // The transform failed and hung up; its error is reported instead.
                                return Ok(writer);
                            }
                            in_flight += 1;
                        }
                        None => exhausted = true,
                    }
                }
                if in_flight == 0 {
                    break;
                }
                let Ok(job) = done.recv() else {
                    return Ok(writer);
                };
                in_flight -= 1;
                writer.write_all(&job.output)?;
                free.push(job);
            }
            drop(to_transform);
            writer.flush()?;
            Ok(writer)
        });

        let mut failure = None;
        for mut job in jobs.iter() {
            if let Err(e) = transform(&job.input, &mut job.output, job.last) {
                failure = Some(e);
                break;
            }
            if to_io.send(job).is_err() {
                break;
            }
        }
        drop(to_io);
        drop(jobs);
        let io_result = match io_thread.join() {
            Ok(result) => result,
            Err(panic) => std::panic::resume_unwind(panic),
        };
        match (failure, io_result) {
            (Some(e), _) => Err(PumpError::Transform(e)),
            (None, Err(e)) => Err(PumpError::Io(e)),
            (None, Ok(writer)) => Ok(writer),
        }
    })
}

/// One chunk of a positioned source: bytes `offset..offset + len` of the input.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Span {
    pub(crate) offset: u64,
    pub(crate) len: usize,
    pub(crate) last: bool,
}

/// Cuts `start..start + len` into chunks of `chunk` bytes (the last may be shorter). Empty input
/// is one empty, final chunk, as with [`pump`].
pub(crate) fn spans(start: u64, len: u64, chunk: usize) -> impl Iterator<Item = Span> {
    let chunk = chunk.max(1) as u64;
    let count = len.div_ceil(chunk).max(1);
    (0..count).map(move |i| {
        let offset = i * chunk;
        Span {
            offset: start + offset,
            // At most `chunk`, which is a usize.
            len: (len - offset).min(chunk) as usize,
            last: i + 1 == count,
        }
    })
}

/// One positioned chunk's buffers: scratch for its input, and its output.
struct SpanJob {
    input: Vec<u8>,
    output: Vec<u8>,
}

/// Like [`pump`], but for a source the transform reads itself at known offsets (a regular file
/// read with `pread`, so the workers read their own parts in parallel instead of one thread
/// reading for all). `transform(span, input_scratch, output)` fills the scratch as it likes and
/// sets the output's length. With `overlap_io`, a second thread writes while the next chunk is
/// transformed.
pub(crate) fn pump_spans<W, E, F>(
    spans: impl Iterator<Item = Span>,
    mut writer: W,
    overlap_io: bool,
    mut transform: F,
) -> Result<W, PumpError<E>>
where
    W: Write + Send,
    E: Send,
    F: FnMut(Span, &mut Vec<u8>, &mut Vec<u8>) -> Result<(), E>,
{
    if !overlap_io {
        let mut job = SpanJob {
            input: Vec::new(),
            output: Vec::new(),
        };
        for span in spans {
            transform(span, &mut job.input, &mut job.output).map_err(PumpError::Transform)?;
            writer.write_all(&job.output).map_err(PumpError::Io)?;
        }
        writer.flush().map_err(PumpError::Io)?;
        return Ok(writer);
    }
    std::thread::scope(|scope| {
        let (to_writer, written) = mpsc::sync_channel::<SpanJob>(BUFFERS_IN_FLIGHT);
        let (give_back, free) = mpsc::sync_channel::<SpanJob>(BUFFERS_IN_FLIGHT);
        for _ in 0..BUFFERS_IN_FLIGHT {
            // Cannot fail: the channel has room for every buffer and its receiver is alive.
            let _ = give_back.send(SpanJob {
                input: Vec::new(),
                output: Vec::new(),
            });
        }
        let writer_thread = scope.spawn(move || -> io::Result<W> {
            for job in written.iter() {
                writer.write_all(&job.output)?;
                // Once the last chunk has been handed over nobody takes buffers back; the chunks
                // still queued must be written all the same.
                let _ = give_back.send(job);
            }
            writer.flush()?;
            Ok(writer)
        });
        let mut failure = None;
        for span in spans {
            // The writer hands every buffer back unless it failed, and then it has hung up.
            let Ok(mut job) = free.recv() else { break };
            if let Err(e) = transform(span, &mut job.input, &mut job.output) {
                failure = Some(e);
                break;
            }
            if to_writer.send(job).is_err() {
                break;
            }
        }
        drop(to_writer);
        drop(free);
        let io_result = match writer_thread.join() {
            Ok(result) => result,
            Err(panic) => std::panic::resume_unwind(panic),
        };
        match (failure, io_result) {
            (Some(e), _) => Err(PumpError::Transform(e)),
            (None, Err(e)) => Err(PumpError::Io(e)),
            (None, Ok(writer)) => Ok(writer),
        }
    })
}

/// Reads exactly `buf.len()` bytes at `offset`; a file that ends early is reported as having
/// changed while it was read.
pub(crate) fn read_exact_at(file: &std::fs::File, buf: &mut [u8], offset: u64) -> io::Result<()> {
    use std::os::unix::fs::FileExt;
    file.read_exact_at(buf, offset).map_err(|e| {
        if e.kind() == io::ErrorKind::UnexpectedEof {
            io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the input file shrank while it was being read",
            )
        } else {
            e
        }
    })
}

/// Fails if `file` holds more than `end` bytes now: it grew while it was being read, and sealing
/// only the part seen would silently drop the rest.
pub(crate) fn check_not_grown(file: &std::fs::File, end: u64) -> io::Result<()> {
    use std::os::unix::fs::FileExt;
    let mut probe = [0u8; 1];
    match file.read_at(&mut probe, end)? {
        0 => Ok(()),
        _ => Err(io::Error::other(
            "the input file grew while it was being read; seal it once it is complete",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(data: &[u8], chunk: usize, overlap_io: bool) -> (Vec<u8>, Vec<(usize, bool)>) {
        let mut seen = Vec::new();
        let out = pump(
            data,
            Vec::new(),
            PumpConfig { chunk, overlap_io },
            |input, output, last| {
                seen.push((input.len(), last));
                output.clear();
                output.extend(input.iter().map(|b| b ^ 0x55));
                Ok::<(), ()>(())
            },
        )
        .map_err(|_| ())
        .unwrap();
        (out, seen)
    }

    #[test]
    fn every_split_marks_exactly_one_last_chunk() {
        let data: Vec<u8> = (0..1000u32).map(|i| i as u8).collect();
        for len in [0usize, 1, 9, 10, 11, 999, 1000] {
            for overlap in [false, true] {
                let (out, seen) = run(&data[..len], 10, overlap);
                let expected: Vec<u8> = data[..len].iter().map(|b| b ^ 0x55).collect();
                assert_eq!(out, expected);
                assert_eq!(seen.iter().filter(|(_, last)| *last).count(), 1);
                assert!(seen.last().unwrap().1);
                let expected_chunks = if len == 0 { 1 } else { len.div_ceil(10) };
                assert_eq!(seen.len(), expected_chunks, "len {len}");
            }
        }
    }

    #[test]
    fn transform_errors_stop_the_pump() {
        let data = [0u8; 100];
        for overlap_io in [false, true] {
            let mut calls = 0;
            let result = pump(
                &data[..],
                Vec::new(),
                PumpConfig {
                    chunk: 10,
                    overlap_io,
                },
                |_, _, _| {
                    calls += 1;
                    if calls == 3 { Err("boom") } else { Ok(()) }
                },
            );
            assert!(matches!(result, Err(PumpError::Transform("boom"))));
        }
    }

    #[test]
    fn spans_cover_the_input_once_and_mark_the_last() {
        for (len, chunk) in [(0u64, 10usize), (1, 10), (10, 10), (11, 10), (95, 10)] {
            let all: Vec<Span> = spans(5, len, chunk).collect();
            assert_eq!(all.iter().map(|s| s.len as u64).sum::<u64>(), len);
            assert_eq!(all.iter().filter(|s| s.last).count(), 1);
            assert!(all.last().unwrap().last);
            assert_eq!(all[0].offset, 5);
        }
    }

    /// A writer slower than the transform, so chunks queue up behind it.
    struct Slow(Vec<u8>);

    impl Write for Slow {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            std::thread::sleep(std::time::Duration::from_millis(2));
            self.0.extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// Regression: the writer used to stop once the transform side had hung up, dropping the
    /// chunks still queued (the last 8 MiB of a 1 GiB file).
    #[test]
    fn span_pump_writes_every_queued_chunk_behind_a_slow_writer() {
        let data: Vec<u8> = (0..2000u32).map(|i| (i % 251) as u8).collect();
        let out = pump_spans(
            spans(0, 2000, 100),
            Slow(Vec::new()),
            true,
            |span, _, output| {
                output.clear();
                output.extend_from_slice(
                    &data[span.offset as usize..span.offset as usize + span.len],
                );
                Ok::<(), ()>(())
            },
        )
        .map_err(|_| ())
        .unwrap();
        assert_eq!(out.0, data);
    }

    #[test]
    fn span_pump_writes_in_order_and_stops_on_errors() {
        let data: Vec<u8> = (0..1000u32).map(|i| i as u8).collect();
        for overlap_io in [false, true] {
            let out = pump_spans(
                spans(0, 1000, 64),
                Vec::new(),
                overlap_io,
                |span, _, output| {
                    output.clear();
                    output.extend_from_slice(
                        &data[span.offset as usize..span.offset as usize + span.len],
                    );
                    Ok::<(), ()>(())
                },
            )
            .map_err(|_| ())
            .unwrap();
            assert_eq!(out, data);
            let mut calls = 0;
            let result = pump_spans(spans(0, 1000, 64), Vec::new(), overlap_io, |_, _, _| {
                calls += 1;
                if calls == 3 { Err("boom") } else { Ok(()) }
            });
            assert!(matches!(result, Err(PumpError::Transform("boom"))));
        }
    }
}
