//! [`SealedCallRecorder`] driven directly (no phones) against a real service layer over the
//! embedded store: the edge cases of a call recording's lifecycle that a real call rarely hits.
//! A recording that never got audio (the mixer wrote only its header) is `absent` and stores
//! nothing; an aborted one leaves no row and no object; the stored duration is the mixer's,
//! not a measure of the streamed header.

mod support;

use std::time::Duration;

use mediaseal_call::recording::{Layout, TapTracks};
use mediaseal_call::{CallId, RecordingId, RecordingRequest, RecordingSource};
use mediaseal_media::wav::{Coding, streaming_header};
use mediaseal_store::model::Sealing;
use mediaseal_twiml::Trim;
use mediaseal_voice::{CallRecorder, SealedCallRecorder};
use support::*;

fn request() -> RecordingRequest {
    RecordingRequest {
        call: CallId(1),
        recording: RecordingId(1),
        account_sid: ACCOUNT.to_owned(),
        call_sid: "CA0123456789abcdef0123456789abcdef".to_owned(),
        layout: Layout::Dual,
        tracks: TapTracks::Both,
        source: RecordingSource::DialVerb,
        trim: Trim::DoNotTrim,
        status_callback: None,
    }
}

/// `seconds` of two-channel 8 kHz PCM16 that is never silent.
fn audio(seconds: f64) -> Vec<u8> {
    let frames = (seconds * 8000.0) as usize;
    let mut out = Vec::with_capacity(frames * 4);
    for i in 0..frames {
        let s = ((i % 40) as i16 - 20) * 500 + 1;
        out.extend_from_slice(&s.to_le_bytes());
        out.extend_from_slice(&(-s).to_le_bytes());
    }
    out
}

#[tokio::test]
async fn a_recording_that_got_no_audio_is_absent_and_stores_nothing() {
    let svc = sealed_service().await;
    let recorder = SealedCallRecorder::new(svc.services.clone(), BASE_URL);
    let mut sink = recorder
        .start(&request())
        .await
        .expect("start")
        .expect("a sink: the key is usable");
    sink.write(&streaming_header(Coding::Pcm, 2, 8000))
        .await
        .expect("write");
    let info = sink.finish(Duration::ZERO).await.expect("finish");
    assert!(info.is_none(), "{info:?}");
    let recs = svc.recordings().await;
    assert_eq!(recs.len(), 1, "{recs:#?}");
    assert_eq!(recs[0].status, "absent");
    assert_eq!(recs[0].error_code, Some(16101));
    assert_eq!(recs[0].object_key, None);
    let stored = files_under(&svc.data.path().join("objects"));
    assert!(stored.is_empty(), "{stored:?}");
}

#[tokio::test]
async fn an_aborted_recording_leaves_no_row_and_no_object() {
    let svc = sealed_service().await;
    let recorder = SealedCallRecorder::new(svc.services.clone(), BASE_URL);
    let mut sink = recorder
        .start(&request())
        .await
        .expect("start")
        .expect("sink");
    let mut wav = streaming_header(Coding::Pcm, 2, 8000);
    wav.extend_from_slice(&audio(1.0));
    sink.write(&wav).await.expect("write");
    sink.abort().await;
    let recs = svc.recordings().await;
    assert!(recs.is_empty(), "{recs:#?}");
    let stored = files_under(&svc.data.path().join("objects"));
    assert!(stored.is_empty(), "{stored:?}");
}

#[tokio::test]
async fn the_stored_duration_is_the_mixers_and_the_object_is_sealed_to_the_customer() {
    let svc = sealed_service().await;
    let recorder = SealedCallRecorder::new(svc.services.clone(), BASE_URL);
    let mut sink = recorder
        .start(&request())
        .await
        .expect("start")
        .expect("sink");
    // The header alone first, as the mixer's first write can be, then the audio in pieces.
    let header = streaming_header(Coding::Pcm, 2, 8000);
    sink.write(&header).await.expect("header");
    let pcm = audio(2.6);
    for piece in pcm.chunks(8192) {
        sink.write(piece).await.expect("write");
    }
    let info = sink
        .finish(Duration::from_millis(2600))
        .await
        .expect("finish")
        .expect("completed");
    // 2.6 s rounds to 3; the streamed header measured in whole seconds would say 2.
    assert_eq!(info.duration_secs, 3);
    assert_eq!(
        info.url,
        format!(
            "{BASE_URL}/2010-04-01/Accounts/{ACCOUNT}/Recordings/{}",
            info.sid
        )
    );
    let recs = svc.recordings().await;
    assert_eq!(recs.len(), 1);
    let rec = &recs[0];
    assert_eq!(rec.sid, info.sid);
    assert_eq!(rec.status, "completed");
    assert_eq!(rec.duration, Some(3));
    assert_eq!(rec.sealing, Sealing::Customer);
    assert_eq!(rec.plain_size as usize, header.len() + pcm.len());
    let sealed = svc.object(rec.object_key.as_deref().expect("object"));
    assert_eq!(sealed.len() as i64, rec.sealed_size);
    let envelope =
        mediaseal_crypto::parse_details(rec.encryption_details.as_deref().expect("details"))
            .expect("details");
    let plain = mediaseal_crypto::open_seekable_to_writer(
        std::io::Cursor::new(&sealed),
        Vec::new(),
        &envelope,
        &svc.customer,
    )
    .expect("the customer's key opens it");
    assert_eq!(plain[..header.len()], header[..]);
    assert_eq!(plain[header.len()..], pcm[..]);
}
