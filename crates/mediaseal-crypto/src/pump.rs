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
/// to `writer` in order. `output` arrives cleared; the transform appends to it.
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
            output.clear();
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
            job.output.clear();
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
}
