"""mediaseal Whisper sidecar: faster-whisper kept warm behind a pipe protocol.

mediaseal-asr embeds this file and runs it as `python -I -B -c <this file> --model DIR ...` from
the pinned venv that scripts/setup-asr.sh builds. It exists so that Rust never links Python and
the recogniser never sees a file: audio arrives on stdin, results leave on stdout, and nothing is
written anywhere else.

Protocol (all integers little-endian):

  sidecar -> parent, once, after the model loaded:
      {"ready": true, "protocol": 1, "model": DIR, "faster_whisper": VER, "memory_locked": BOOL}\n

  parent -> sidecar, per request:
      b"MSA1" | u32 header_len | header JSON | u32 sample_count | sample_count x s16le mono 16 kHz
      header: {"id": N, "language": "en"|null, "word_timestamps": bool, "prompt": str|null,
               "beam_size": N}
      (the other decoding options are DECODING's, plus decoding_options()'s VAD rule)

  sidecar -> parent, per request, one line:
      {"id": N, "ok": true, "language": "en", "duration": S,
       "segments": [{"start", "end", "text", "avg_logprob", "no_speech_prob",
                     "words": [{"word", "start", "end", "probability"}]}]}\n
   or {"id": N, "ok": false, "error": "<exception type>: <message, truncated>"}\n

  EOF on stdin ends the sidecar with status 0. A malformed frame ends it with status 2, since
  the stream can no longer be trusted to be in step.

No-disk and no-leak measures taken here (the parent adds a read-only working directory, a
minimal environment with HF_HUB_OFFLINE=1, and `ulimit -c 0` before exec):
  - RLIMIT_CORE 0 and PR_SET_DUMPABLE 0 before any audio is read, so a crash leaves no core;
  - mlockall(MCL_CURRENT | MCL_FUTURE) when RLIMIT_MEMLOCK allows it, so audio and text are not
    swapped out (reported as memory_locked in the ready line);
  - the protocol stream is a private duplicate of fd 1; fd 1 itself is pointed at stderr, so a
    stray print from a library can never corrupt the protocol or reach the parent as data;
  - tqdm's cross-process lock is disabled, so not even a POSIX semaphore appears in /dev/shm;
  - logging stays at WARNING and no progress bars are enabled, so no text is ever printed;
  - the request buffers are overwritten with zeros once the answer is written (best effort:
    intermediate copies inside numpy/CTranslate2 are freed but not wiped).
"""

import ctypes
import json
import math
import os
import resource
import struct
import sys

# onnxruntime (loaded for the VAD) otherwise writes a telemetry database and device id under
# ~/.cache/Microsoft; set before anything can load it (bench_alone.py gets it by importing this).
os.environ["ORT_DISABLE_TELEMETRY"] = "1"

MAGIC = b"MSA1"
MAX_HEADER = 64 * 1024
# Four hours of 16 kHz audio: anything longer is a framing error, not a recording.
MAX_SAMPLES = 4 * 3600 * 16000
PR_SET_DUMPABLE = 4
MCL_CURRENT = 1
MCL_FUTURE = 2
MEMLOCK_NEEDED = 4 << 30

# Decoding options (docs/ASR.md, "Decoding options"; bench_alone.py imports them so the engine
# alone is measured with the same ones). No default prompt: a digit-priming initial prompt
# helped Whisper base write spoken digits one by one, but on silence it "transcribed" the prompt
# itself, fictitious account number included.
DECODING = {
    # Beam 2: the encoder, not the search, dominates the cost. Greedy (1) saved 15-20 % CPU
    # against beam 5 at the same telephone WER and cards found, but glued digits to letters
    # ("453i148003436467") on tests/whisper.rs's voice; beams 3 and 5 cost more for nothing.
    "beam_size": 2,
    # With earlier text as the next window's prompt, one window's errors carry on, and a window
    # of silence after digits turned into a loop of digits.
    "condition_on_previous_text": False,
    # Skips a silent stretch of more than 1 s around a segment that looks hallucinated (the
    # "Thank you." Whisper writes for the other party's turn on a dual-channel call's side).
    "hallucination_silence_threshold": 1.0,
    # Off here; decoding_options() turns it on for channels that are mostly silence.
    "vad_filter": False,
}

# Silero VAD (bundled with faster-whisper) on a channel with less than this share of speech,
# i.e. one side of a dual-channel call: Whisper then decodes the speech without the other
# party's half of the call (about 30 % less CPU on those channels, and no "Thank you." written
# into the silence). At the default threshold 0.5 it missed the first 2-3 s of telephone-band
# synthetic speech (customer-side WER 35-46 %); at 0.3 with 1 s of padding it kept every word.
# Mostly-speech channels are decoded whole, so a VAD miss cannot cut words there.
VAD_BELOW_SPEECH_SHARE = 0.6
VAD_PARAMETERS = {"threshold": 0.3, "speech_pad_ms": 1000, "min_silence_duration_ms": 2000}


def decoding_options(audio, beam_size=None):
    """DECODING for one channel of float32 16 kHz audio (bench_alone.py calls this too)."""
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    options = dict(DECODING)
    if beam_size:
        options["beam_size"] = int(beam_size)
    if len(audio):
        chunks = get_speech_timestamps(audio, VadOptions(**VAD_PARAMETERS))
        speech = sum(chunk["end"] - chunk["start"] for chunk in chunks)
        if speech < VAD_BELOW_SPEECH_SHARE * len(audio):
            options["vad_filter"] = True
            options["vad_parameters"] = dict(VAD_PARAMETERS)
    return options


def harden():
    """No core dumps, no ptrace by unprivileged peers, no swapping when permitted."""
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
    soft, _hard = resource.getrlimit(resource.RLIMIT_MEMLOCK)
    # MCL_FUTURE under a small limit would make later allocations fail, so only lock when the
    # limit leaves room for the model and its working memory.
    if soft != resource.RLIM_INFINITY and soft < MEMLOCK_NEEDED:
        return False
    return libc.mlockall(MCL_CURRENT | MCL_FUTURE) == 0


def parse_args(argv):
    args = {"model": None, "compute_type": "int8", "cpu_threads": 0}
    i = 0
    while i < len(argv):
        key = argv[i]
        if i + 1 >= len(argv):
            raise SystemExit(f"whisper_sidecar: {key} needs a value")
        value = argv[i + 1]
        if key == "--model":
            args["model"] = value
        elif key == "--compute-type":
            args["compute_type"] = value
        elif key == "--cpu-threads":
            args["cpu_threads"] = int(value)
        else:
            raise SystemExit(f"whisper_sidecar: unknown argument {key}")
        i += 2
    if not args["model"]:
        raise SystemExit("whisper_sidecar: --model DIR is required")
    return args


def read_exact(stream, buf):
    """Fill buf from stream; False on EOF before the first byte, error on EOF after it."""
    view = memoryview(buf)
    got = 0
    while got < len(buf):
        n = stream.readinto(view[got:])
        if not n:
            if got == 0:
                return False
            raise EOFError(f"stream ended after {got} of {len(buf)} bytes")
        got += n
    return True


def write_all(stream, data):
    view = memoryview(data)
    while view:
        n = stream.write(view)
        view = view[n:]


def transcribe(model, np, header, pcm):
    audio = np.frombuffer(pcm, dtype="<i2").astype(np.float32)
    audio *= 1.0 / 32768.0
    try:
        language = header.get("language") or None
        options = decoding_options(audio, header.get("beam_size"))
        options["initial_prompt"] = header.get("prompt") or None
        segments, info = model.transcribe(
            audio,
            language=language,
            word_timestamps=bool(header.get("word_timestamps", True)),
            log_progress=False,
            **options,
        )
        out = []
        for seg in segments:
            words = []
            for w in seg.words or []:
                words.append(
                    {
                        "word": w.word,
                        "start": round(float(w.start), 3),
                        "end": round(float(w.end), 3),
                        "probability": round(float(w.probability), 4),
                    }
                )
            avg = float(seg.avg_logprob)
            out.append(
                {
                    "start": round(float(seg.start), 3),
                    "end": round(float(seg.end), 3),
                    "text": seg.text,
                    "avg_logprob": round(avg, 4) if math.isfinite(avg) else None,
                    "no_speech_prob": round(float(seg.no_speech_prob), 4),
                    "words": words,
                }
            )
        return {
            "id": header.get("id"),
            "ok": True,
            "language": info.language,
            "duration": round(float(info.duration), 3),
            "segments": out,
        }
    finally:
        audio.fill(0.0)


def main():
    memory_locked = harden()
    args = parse_args(sys.argv[1:])

    # The protocol gets its own duplicate of stdout; fd 1 becomes stderr for everybody else.
    proto_out = os.fdopen(os.dup(1), "wb", buffering=0)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    proto_in = sys.stdin.buffer

    import logging

    logging.getLogger("faster_whisper").setLevel(logging.WARNING)

    # tqdm (imported by faster-whisper even with progress off) would create a POSIX named
    # semaphore in /dev/shm for cross-process bar locking; this process has no such peers.
    from tqdm.std import TqdmDefaultWriteLock

    TqdmDefaultWriteLock.mp_lock = None

    import numpy as np
    import faster_whisper
    from faster_whisper import WhisperModel

    model = WhisperModel(
        args["model"],
        device="cpu",
        compute_type=args["compute_type"],
        cpu_threads=args["cpu_threads"],
        local_files_only=True,
    )
    # Loads the VAD model now, so no request pays for it.
    decoding_options(np.zeros(16000, dtype=np.float32))
    ready = {
        "ready": True,
        "protocol": 1,
        "model": args["model"],
        "faster_whisper": faster_whisper.__version__,
        "memory_locked": bool(memory_locked),
    }
    write_all(proto_out, json.dumps(ready).encode() + b"\n")

    head = bytearray(8)
    while True:
        if not read_exact(proto_in, memoryview(head)[:4]):
            return 0
        if bytes(head[:4]) != MAGIC:
            sys.stderr.write("whisper_sidecar: bad frame magic, stopping\n")
            return 2
        read_exact(proto_in, memoryview(head)[:4])
        (header_len,) = struct.unpack("<I", head[:4])
        if header_len > MAX_HEADER:
            sys.stderr.write("whisper_sidecar: frame header too long, stopping\n")
            return 2
        header_bytes = bytearray(header_len)
        read_exact(proto_in, header_bytes)
        header = json.loads(header_bytes)
        read_exact(proto_in, memoryview(head)[:4])
        (samples,) = struct.unpack("<I", head[:4])
        if samples > MAX_SAMPLES:
            sys.stderr.write("whisper_sidecar: frame too long, stopping\n")
            return 2
        pcm = bytearray(samples * 2)
        read_exact(proto_in, pcm)
        try:
            reply = transcribe(model, np, header, pcm)
        except Exception as exc:  # the request fails, the sidecar stays up
            message = str(exc)[:300]
            reply = {"id": header.get("id"), "ok": False, "error": f"{type(exc).__name__}: {message}"}
        line = json.dumps(reply, ensure_ascii=False).encode() + b"\n"
        write_all(proto_out, line)
        # Best-effort wipe of this request's plaintext held by this process.
        pcm[:] = bytes(len(pcm))
        line = None
        reply = None


if __name__ == "__main__":
    sys.exit(main())
