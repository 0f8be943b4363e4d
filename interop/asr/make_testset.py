"""Generates the ASR benchmark test set from Debian's synthesisers: WAV files + manifest.json.

    .asr-venv/bin/python interop/asr/make_testset.py OUT_DIR

Mono items: one service-call script spoken by several voices (espeak-ng variants, and flite's
slt/rms/awb when flite is installed), each in three conditions:
  clean  16 kHz 16-bit PCM WAV
  tel    telephone channel: sinc 300-3400 band-pass, 8 kHz G.711 mu-law WAV
  noisy  pink noise mixed at 15 dB SNR, then the telephone channel
Dual-channel items: an agent and a customer taking turns, agent left, customer right, each side
through the telephone channel, stereo 8 kHz mu-law WAV.

The references spell digit strings as digits; scoring (mediaseal_asr::score) splits every
number into single digits on both sides. The synthetic audio is the benchmark's own data and is
written to OUT_DIR on purpose; nothing here touches customer audio.

Every run writes the same bytes: the noise is seeded and sox runs repeatable (`-R`). Before
2026-12-03 sox's dither was random, and two generations of the set differed by up to 1.7 points
of WER and 3 of the 20 cards (BENCHMARKS.md).
"""

import json
import os
import shutil
import subprocess
import sys
import wave

import numpy as np

CARD = "4539148803436467"  # Luhn-valid
PHONE = "4155550132"

SCRIPT = (
    "Thank you for calling Acme Bank, my name is Sarah, how can I help you today? "
    "I need to report a lost card. The card number is 4 5 3 9, 1 4 8 8, 0 3 4 3, 6 4 6 7, "
    "and the expiry date is twelve twenty seven. "
    "I have blocked the card and a new one will arrive within five working days. "
    "If you have any questions, call us back on 4 1 5, 5 5 5, 0 1 3 2."
)

AGENT = (
    "Thank you for calling Acme Bank customer service, this is Sarah speaking. "
    "Can I have the card number please? "
    "Thank you. And the expiry date? "
    "I have blocked the card. Is there a phone number where we can reach you?"
)
CUSTOMER = (
    "Hello, I think my card was stolen this morning. "
    "It is 4 5 3 9, 1 4 8 8, 0 3 4 3, 6 4 6 7. "
    "It expires twelve twenty seven. "
    "Yes, my number is 4 1 5, 5 5 5, 0 1 3 2."
)


def run(args, data=b""):
    return subprocess.run(args, input=data, stdout=subprocess.PIPE, check=True).stdout


def have(program):
    return shutil.which(program) is not None


def speak(engine, voice, text):
    """16 kHz mono s16 samples of text."""
    if engine == "espeak-ng":
        wav = run(["espeak-ng", "-v", voice, "-s", "150", "--stdout", text])
    else:
        wav = run(["flite", "-voice", voice, "-t", text, "-o", "/dev/stdout"])
    raw = run(["sox", "-V1", "-R", "-t", "wav", "-", "-t", "raw", "-r", "16000", "-e", "signed", "-b", "16", "-c", "1", "-"], wav)
    return np.frombuffer(raw, dtype="<i2").astype(np.float64)


def pink_noise(n, seed):
    rng = np.random.default_rng(seed)
    spectrum = np.fft.rfft(rng.standard_normal(n))
    freqs = np.arange(len(spectrum), dtype=np.float64)
    freqs[0] = 1.0
    noise = np.fft.irfft(spectrum / np.sqrt(freqs), n)
    return noise / np.sqrt(np.mean(noise**2))


def with_noise(samples, snr_db, seed):
    speech_rms = np.sqrt(np.mean(samples[np.abs(samples) > 100] ** 2))
    noise = pink_noise(len(samples), seed) * speech_rms / (10 ** (snr_db / 20))
    return samples + noise


def to_s16(samples):
    return np.clip(np.round(samples), -32768, 32767).astype("<i2").tobytes()


def write_pcm_wav(path, samples, rate=16000, channels=1):
    with wave.open(path, "wb") as out:
        out.setnchannels(channels)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(to_s16(samples))


def telephone(path, raw16k, channels=1):
    """s16 16 kHz (interleaved) -> band-pass, 8 kHz mu-law WAV at path."""
    run(
        ["sox", "-V1", "-R", "-t", "raw", "-r", "16000", "-e", "signed", "-b", "16", "-c", str(channels), "-",
         "-r", "8000", "-e", "mu-law", "-b", "8", path, "sinc", "300-3400"],
        raw16k,
    )


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    voices = [("espeak-ng", "en-us"), ("espeak-ng", "en-gb-x-rp"), ("espeak-ng", "en-us+f3")]
    if have("flite"):
        voices += [("flite", "slt"), ("flite", "rms"), ("flite", "awb")]
    items = []
    for index, (engine, voice) in enumerate(voices):
        name = f"{engine}-{voice}".replace("+", "_")
        samples = speak(engine, voice, SCRIPT)
        clean = os.path.join(out, f"{name}.clean.wav")
        write_pcm_wav(clean, samples)
        tel = os.path.join(out, f"{name}.tel.wav")
        telephone(tel, to_s16(samples))
        noisy = os.path.join(out, f"{name}.noisy.wav")
        telephone(noisy, to_s16(with_noise(samples, 15.0, seed=index)))
        for condition, path in (("clean", clean), ("tel", tel), ("noisy", noisy)):
            items.append({
                "id": f"{name}.{condition}", "wav": path, "voice": f"{engine} {voice}", "condition": condition,
                "channels": [{"reference": SCRIPT, "card": CARD, "phone": PHONE}],
            })

    calls = [(("espeak-ng", "en-us"), ("espeak-ng", "en-gb-x-rp"))]
    if have("flite"):
        calls = [(("espeak-ng", "en-us"), ("flite", "slt")), (("flite", "rms"), ("flite", "awb"))]
    for index, (agent_voice, customer_voice) in enumerate(calls):
        agent = speak(*agent_voice, AGENT)
        customer = speak(*customer_voice, CUSTOMER)
        gap = 8000  # half a second between turns
        total = len(agent) + gap + len(customer)
        stereo = np.zeros((total, 2))
        stereo[: len(agent), 0] = agent
        stereo[len(agent) + gap :, 1] = customer
        path = os.path.join(out, f"call{index + 1}.dual.wav")
        telephone(path, to_s16(stereo.reshape(-1)), channels=2)
        items.append({
            "id": f"call{index + 1}.dual", "wav": path,
            "voice": f"{agent_voice[0]} {agent_voice[1]} / {customer_voice[0]} {customer_voice[1]}",
            "condition": "dual",
            "channels": [
                {"reference": AGENT, "card": None, "phone": None},
                {"reference": CUSTOMER, "card": CARD, "phone": PHONE},
            ],
        })
    with open(os.path.join(out, "manifest.json"), "w") as manifest:
        json.dump(items, manifest, indent=1)
    print(f"{len(items)} items in {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
