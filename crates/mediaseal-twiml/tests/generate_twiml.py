"""Writes TwiML documents made by Twilio's own helper library into testdata/twiml/.

Run once, from the repository root, and commit the output:

    .venv/bin/python crates/mediaseal-twiml/tests/generate_twiml.py

The Rust test `tests/helper_library.rs` parses every file and checks the structure it expects;
the files are data, so the tests need neither Python nor the twilio package. Files named
`refused_<code>_*.xml` are documents the helper library happily writes but Twilio (and so
mediaseal) refuses with that error code.
"""

import pathlib
import sys

import twilio
from twilio.twiml.voice_response import Dial, Gather, Number, Sip, VoiceResponse

OUT = pathlib.Path(__file__).resolve().parents[3] / "testdata" / "twiml"


def seed004_secure_dial():
    # The document from seed 004 ("Secure Media"), verbatim in shape.
    r = VoiceResponse()
    d = Dial()
    d.sip("sip:jack@example.com;secure=true")
    r.append(d)
    return r


def dial_sip_all_attributes():
    r = VoiceResponse()
    d = Dial(
        action="/dial-done",
        method="GET",
        timeout=20,
        time_limit=600,
        caller_id="+14155550100",
        record="record-from-answer-dual",
        trim="do-not-trim",
        recording_status_callback="https://hooks.example.com/recording",
        recording_status_callback_method="GET",
        recording_status_callback_event="in-progress completed absent",
        answer_on_bridge=True,
        hangup_on_star=True,
        ring_tone="uk",
    )
    d.sip(
        "sip:agent@pbx.example.com:5071;transport=tls?X-Account=12345&X-Reason=pin%20reset",
        username="mediaseal",
        password="s3cret-Pa55",
        url="https://app.example.com/whisper",
        method="GET",
        status_callback_event="initiated ringing answered completed",
        status_callback="https://app.example.com/leg-status",
        status_callback_method="GET",
    )
    r.append(d)
    r.say("The other party hung up. Goodbye.")
    return r


def dial_numbers():
    r = VoiceResponse()
    r.dial("415-123-4567")
    d = Dial(caller_id="+14155550199", record=True)
    d.number("+14155550100", send_digits="wwww1928#")
    d.number(
        "+442071838750",
        url="/screen",
        method="GET",
        status_callback_event="answered completed",
        status_callback="/number-status",
    )
    r.append(d)
    return r


def gather_pin():
    r = VoiceResponse()
    g = Gather(
        input="dtmf",
        action="/pin",
        method="POST",
        timeout=10,
        finish_on_key="#",
        num_digits=6,
        action_on_empty_result=True,
    )
    g.say("Please enter your six digit PIN, then press pound.", voice="alice", language="en-GB")
    g.play("https://media.example.com/beep.wav")
    g.pause(length=2)
    r.append(g)
    r.say("We did not receive any input.")
    r.redirect("/menu", method="GET")
    return r


def gather_defaults():
    r = VoiceResponse()
    g = Gather()
    g.say("Enter your account number.")
    r.append(g)
    return r


def record_voicemail():
    r = VoiceResponse()
    r.say("Leave a message after the beep.", voice="Polly.Joanna", loop=1)
    r.record(
        action="https://app.example.com/voicemail",
        method="POST",
        timeout=3,
        finish_on_key="*",
        max_length=120,
        play_beep=False,
        trim="trim-silence",
        recording_status_callback="/recording-status",
        recording_status_callback_method="POST",
        recording_status_callback_event="completed absent",
        transcribe=False,
    )
    r.hangup()
    return r


def play_say_pause():
    r = VoiceResponse()
    r.play("https://media.example.com/hold.mp3", loop=0)
    r.play(digits="ww1234#")
    r.say("Hello & welcome <to> \"mediaseal\"", voice="Google.en-US-Standard-C", language="en-US", loop=2)
    r.pause(length=3)
    return r


def reject_busy():
    r = VoiceResponse()
    r.reject(reason="busy")
    return r


def reject_default():
    r = VoiceResponse()
    r.reject()
    return r


def redirect_get():
    r = VoiceResponse()
    r.redirect("../next?step=2", method="GET")
    return r


def empty():
    return VoiceResponse()


def refused_13212_dial_timeout():
    r = VoiceResponse()
    r.dial("+14155550100", timeout="soon")
    return r


def refused_12200_unknown_attribute():
    r = VoiceResponse()
    r.say("hi", colour="blue")
    return r


def refused_12200_conference():
    r = VoiceResponse()
    d = Dial()
    d.conference("room-1")
    r.append(d)
    return r


def refused_12200_speech():
    r = VoiceResponse()
    r.gather(input="speech")
    return r


def refused_12200_ssml():
    r = VoiceResponse()
    s = r.say("Your code is")
    s.say_as("1234", interpret_as="digits")
    return r


def refused_13250_two_sips():
    r = VoiceResponse()
    d = Dial()
    d.sip("sip:a@example.com")
    d.sip("sip:b@example.com")
    r.append(d)
    return r


def refused_13243_sip_uri():
    r = VoiceResponse()
    d = Dial()
    d.sip("jack@example.com")
    r.append(d)
    return r


def refused_13320_gather_nested_dial():
    r = VoiceResponse()
    g = Gather()
    g.append(Dial("+14155550100"))
    r.append(g)
    return r


DOCUMENTS = [
    seed004_secure_dial,
    dial_sip_all_attributes,
    dial_numbers,
    gather_pin,
    gather_defaults,
    record_voicemail,
    play_say_pause,
    reject_busy,
    reject_default,
    redirect_get,
    empty,
    refused_13212_dial_timeout,
    refused_12200_unknown_attribute,
    refused_12200_conference,
    refused_12200_speech,
    refused_12200_ssml,
    refused_13250_two_sips,
    refused_13243_sip_uri,
    refused_13320_gather_nested_dial,
]


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    for make in DOCUMENTS:
        path = OUT / f"{make.__name__}.xml"
        path.write_text(str(make()) + "\n", encoding="utf-8")
        print(path.relative_to(OUT.parents[1]))
    (OUT / "GENERATOR").write_text(
        f"twilio-python {twilio.__version__}, python {sys.version.split()[0]}; "
        "crates/mediaseal-twiml/tests/generate_twiml.py\n",
        encoding="utf-8",
    )


if __name__ == "__main__":
    main()
