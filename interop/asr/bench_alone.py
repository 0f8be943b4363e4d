"""The engines alone, on exactly the PCM mediaseal-asr prepared (scripts/bench-asr.sh).

    .asr-venv/bin/python interop/asr/bench_alone.py --engine whisper|pocketsphinx \
        --manifest M --pcm DIR --out R.jsonl

whisper: faster-whisper called in this process with the settings mediaseal-asr's sidecar uses
(int8, word timestamps, language en, the same CPU thread count, and the sidecar's own decoding
options and VAD rule, imported from whisper_sidecar.py); CPU is this process's
time.process_time() around each transcription, model load excluded.
pocketsphinx: pocketsphinx_continuous run on each raw file with the same model and flags as
mediaseal-asr; CPU is the reaped child's user + system time.
Writes one JSON line per channel in the format asr-bench reads.
"""

import argparse
import json
import os
import resource
import subprocess
import time

MODEL_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", ".asr-venv", "models", "whisper-base")
PS_MODEL = "/usr/share/pocketsphinx/model/en-us"


def channels_of(manifest, pcm_dir):
    for item in manifest:
        for channel in range(len(item["channels"])):
            yield item["id"], channel, os.path.join(pcm_dir, f"{item['id']}.ch{channel}.raw")


def whisper(args, manifest, out):
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import numpy as np
    from faster_whisper import WhisperModel

    model = WhisperModel(args.model, device="cpu", compute_type="int8", cpu_threads=args.threads, local_files_only=True)

    from whisper_sidecar import decoding_options

    def transcribe(audio):
        segments, _ = model.transcribe(
            audio, language="en", word_timestamps=True, **decoding_options(audio)
        )
        segments = [s for s in segments if s.text.strip()]
        text = " ".join(s.text.strip() for s in segments)
        return text, [[w.word.strip() for w in s.words] or s.text.split() for s in segments]

    transcribe(np.zeros(16000, dtype=np.float32))  # warm-up, as in asr-bench
    for item_id, channel, path in channels_of(manifest, args.pcm):
        audio = np.fromfile(path, dtype="<i2").astype(np.float32) / 32768.0
        cpu, wall = time.process_time(), time.perf_counter()
        text, sentences = transcribe(audio)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        out.write(json.dumps({
            "id": item_id, "channel": channel, "engine": "whisper-ct2:base", "mode": "engine alone",
            "hypothesis": text, "sentences": sentences, "audio_seconds": len(audio) / 16000,
            "cpu_seconds": cpu, "wall_seconds": wall,
        }) + "\n")


def pocketsphinx(args, manifest, out):
    for item_id, channel, path in channels_of(manifest, args.pcm):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        wall = time.perf_counter()
        output = subprocess.run(
            ["pocketsphinx_continuous", "-infile", path, "-time", "yes", "-logfn", "/dev/null",
             "-hmm", f"{PS_MODEL}/en-us", "-lm", f"{PS_MODEL}/en-us.lm.bin", "-dict", f"{PS_MODEL}/cmudict-en-us.dict"],
            stdout=subprocess.PIPE, check=True, text=True,
        ).stdout
        wall = time.perf_counter() - wall
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        words = []
        for line in output.splitlines():
            parts = line.split()
            if len(parts) != 4 or not all("." in p for p in parts[1:]):
                continue
            word = parts[0]
            if word.startswith(("<", "[", "++")):
                continue
            words.append(word.split("(")[0])
        out.write(json.dumps({
            "id": item_id, "channel": channel, "engine": "pocketsphinx:en-us", "mode": "engine alone",
            "hypothesis": " ".join(words), "audio_seconds": os.path.getsize(path) / 32000,
            "cpu_seconds": (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime),
            "wall_seconds": wall,
        }) + "\n")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--engine", choices=["whisper", "pocketsphinx"], required=True)
    parser.add_argument("--manifest", required=True)
    parser.add_argument("--pcm", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--model", default=os.path.normpath(MODEL_DIR))
    # As one of mediaseal's sidecars: its share of the cores, one sidecar per core up to four.
    cores = os.cpu_count() or 2
    parser.add_argument("--threads", type=int, default=max(1, cores // min(cores, 4)))
    args = parser.parse_args()
    with open(args.manifest) as f:
        manifest = json.load(f)
    with open(args.out, "w") as out:
        (whisper if args.engine == "whisper" else pocketsphinx)(args, manifest, out)


if __name__ == "__main__":
    main()
