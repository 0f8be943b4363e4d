//! Who gets in, and with what media: the secure-media policy (seed 004), authentication, and
//! `<Reject>`/`<Hangup>`, against the running edge with real peers: a Python `ssl` caller
//! (`interop/voice/uac.py`) for TLS and SDES variants, SIPp 3.6.1 for UDP/TCP. None of the
//! refused calls may reach the application: the test HTTP server must see no webhook.

mod support;

use support::*;

const KEY: &str = "KEY";

fn crypto(line: &str) -> Vec<String> {
    vec!["--crypto".into(), line.replace("KEY", KEY)]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_32_is_answered_with_32_and_its_32_bit_srtcp_tags_are_accepted() {
    let _serial = serial().await;
    let certs = certs();
    let app = App::start().await;
    app.set(
        "/voice",
        "<Response><Say>This call is secured.</Say><Pause length=\"1\"/></Response>",
    );
    let edge = start_edge(EdgeOptions::new(&certs, 30000)).await;
    edge.domain("secure", true, &app.url("/voice"));
    let mut args = uac_tls(&edge, &certs, &ruri("secure"));
    args.extend(crypto("1 AES_CM_128_HMAC_SHA1_32 inline:KEY"));
    let wav = certs.dir.path().join("heard.wav");
    args.extend([
        "--media-seconds".into(),
        "2".into(),
        "--rtcp32".into(),
        "--wait-bye".into(),
        "15".into(),
        "--record-out".into(),
        wav.display().to_string(),
        "--x-header".into(),
        "X-Account: 42".into(),
    ]);
    let r = uac(&args).await;
    assert_eq!(r["final"], 200, "{r}");
    assert_eq!(r["answer_proto"], "RTP/SAVP");
    let answer = r["answer_crypto"].as_array().expect("answer crypto");
    assert_eq!(answer.len(), 1, "{r}");
    let line = answer[0].as_str().expect("line");
    assert!(
        line.starts_with("1 AES_CM_128_HMAC_SHA1_32 inline:"),
        "{line}"
    );
    // Our key differs from the caller's.
    let offered = r["offer_crypto"][0].as_str().expect("offer");
    assert_ne!(
        line.split("inline:").nth(1),
        offered.split("inline:").nth(1)
    );
    assert!(
        r["got_bye"].as_bool().expect("bool"),
        "the edge hangs up at the end: {r}"
    );
    assert!(r["rtcp32_sent"].as_u64().expect("n") >= 1);
    // The <Say> prompt arrived, SRTP-protected with the negotiated _32 keys, as speech.
    assert!(r["rx_packets"].as_u64().expect("n") > 50, "{r}");
    assert_eq!(r["rx_auth_fail"], 0, "{r}");
    let (speech, _, _) = read_wav(&wav, 0);
    let loud = speech.iter().filter(|s| s.unsigned_abs() > 2000).count();
    assert!(
        loud > 800,
        "espeak-ng speech should be audible ({loud} loud samples)"
    );
    // The caller's SRTP and its 32-bit-tag SRTCP all authenticated.
    edge.wait_metric("relay counters", |m| m.relay_received >= 90)
        .await;
    let m = edge.handle.metrics();
    assert_eq!(m.srtp_auth_failures, 0, "{m:#?}");
    assert_eq!(m.srtp_replays, 0);
    // One webhook, with Twilio's parameters and the SIP ones, signed.
    let hooks = app.hooks_to("/voice");
    assert_eq!(hooks.len(), 1, "{hooks:#?}");
    let h = &hooks[0];
    assert_eq!(h.param("SipDomain"), Some("secure.sip.mediaseal.test"));
    assert_eq!(h.param("SipSourceIp"), Some("127.0.0.1"));
    assert_eq!(h.param("SipHeader_X-Account"), Some("42"));
    assert_eq!(h.param("CallStatus"), Some("ringing"));
    assert_eq!(h.param("Direction"), Some("inbound"));
    assert_eq!(h.param("AccountSid"), Some(ACCOUNT));
    assert_eq!(h.param("To"), Some("sip:alice@secure.sip.mediaseal.test"));
    assert_eq!(h.param("From"), Some("sip:bob@127.0.0.1"));
    assert!(
        h.param("CallSid")
            .is_some_and(|s| s.starts_with("CA") && s.len() == 34)
    );
    assert!(h.param("SipCallId").is_some_and(|s| !s.is_empty()));
    assert!(h.param("SipDomainSid").is_some_and(|s| s.starts_with("SD")));
    verify_signature_with_twilio_python(h).await;
    edge.handle.shutdown().await;
}

/// The helper library's `RequestValidator` accepts the edge's `X-Twilio-Signature`.
async fn verify_signature_with_twilio_python(h: &Hook) {
    let params: serde_json::Map<String, serde_json::Value> = h
        .params
        .iter()
        .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
        .collect();
    let script = "import json,sys\nfrom twilio.request_validator import RequestValidator\n\
                  d=json.load(sys.stdin)\n\
                  print(RequestValidator(d['token']).validate(d['url'], d['params'], d['sig']))\n";
    let input = serde_json::json!({
        "token": AUTH_TOKEN, "url": h.url, "params": params,
        "sig": h.signature.clone().expect("signed"),
    });
    let mut child = tokio::process::Command::new(python())
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("python");
    use tokio::io::AsyncWriteExt;
    let mut stdin = child.stdin.take().expect("stdin");
    stdin
        .write_all(input.to_string().as_bytes())
        .await
        .expect("write");
    drop(stdin);
    let out = child.wait_with_output().await.expect("python runs");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "True",
        "twilio RequestValidator rejected the signature"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secure_domain_refuses_what_seed_004_refuses_without_fetching_the_webhook() {
    let _serial = serial().await;
    let certs = certs();
    let app = App::start().await;
    let edge = start_edge(EdgeOptions::new(&certs, 30200)).await;
    edge.domain("secure", true, &app.url("/voice"));
    let aes256 = "1 AES_256_CM_HMAC_SHA1_80 inline:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLQ==";
    let cases: Vec<(&str, Vec<String>, &str)> = vec![
        (
            "MKI",
            crypto("1 AES_CM_128_HMAC_SHA1_80 inline:KEY|2^20|1:4"),
            "mki_not_supported",
        ),
        (
            "session parameter",
            crypto("1 AES_CM_128_HMAC_SHA1_80 inline:KEY UNENCRYPTED_SRTCP"),
            "session_parameter",
        ),
        (
            "another suite",
            vec!["--crypto".into(), aes256.into()],
            "unsupported_crypto_suite",
        ),
        (
            "plain RTP over TLS",
            vec!["--proto".into(), "RTP/AVP".into()],
            "plain_rtp_on_secure_domain",
        ),
    ];
    for (name, extra, label) in &cases {
        let mut args = uac_tls(&edge, &certs, &ruri("secure"));
        args.extend(extra.iter().cloned());
        let r = uac(&args).await;
        assert_eq!(r["final"], 488, "{name}: {r}");
        let warning = r["warning"].as_str().unwrap_or_default();
        assert!(
            warning.starts_with("3"),
            "{name}: Warning says why: {warning:?}"
        );
        edge.wait_metric(label, |m| {
            m.policy_rejections.get(*label).copied().unwrap_or(0) >= 1
        })
        .await;
    }
    let m = edge.handle.metrics();
    assert_eq!(m.policy_rejections.values().sum::<u64>(), 4, "{m:#?}");
    assert_eq!(m.webhooks, 0);
    assert!(app.hooks().is_empty(), "no webhook for refused calls");
    edge.handle.shutdown().await;
}

fn sipp_scenario(
    dir: &std::path::Path,
    name: &str,
    domain: &str,
    proto: &str,
    crypto: &str,
    expect: u16,
) -> std::path::PathBuf {
    let crypto_line = if crypto.is_empty() {
        String::new()
    } else {
        format!("a=crypto:{crypto}\n")
    };
    let xml = format!(
        r#"<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="{name}">
  <send retrans="500">
    <![CDATA[
INVITE sip:[service]@{domain} SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: sipp <sip:sipp@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
To: <sip:[service]@{domain}>
Call-ID: [call_id]
CSeq: 1 INVITE
Contact: <sip:sipp@[local_ip]:[local_port];transport=[transport]>
Max-Forwards: 70
Content-Type: application/sdp
Content-Length: [len]

v=0
o=sipp 1 1 IN IP[local_ip_type] [local_ip]
s=-
c=IN IP[media_ip_type] [media_ip]
t=0 0
m=audio [media_port] {proto} 0
a=rtpmap:0 PCMU/8000
{crypto_line}
    ]]>
  </send>
  <recv response="100" optional="true"/>
  <recv response="{expect}"/>
  <send>
    <![CDATA[
ACK sip:[service]@{domain} SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch-3]
From: sipp <sip:sipp@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
To: <sip:[service]@{domain}>[peer_tag_param]
Call-ID: [call_id]
CSeq: 1 ACK
Max-Forwards: 70
Content-Length: 0

    ]]>
  </send>
</scenario>
"#
    );
    let p = dir.join(format!("{name}.xml"));
    std::fs::write(&p, xml).expect("scenario");
    p
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secure_domain_over_udp_or_tcp_is_forbidden_and_srtp_to_a_plain_domain_is_refused() {
    let _serial = serial().await;
    let certs = certs();
    let app = App::start().await;
    let edge = start_edge(EdgeOptions::new(&certs, 30400)).await;
    edge.domain("secure", true, &app.url("/voice"));
    edge.domain("plain", false, &app.url("/voice"));
    let target = edge.handle.sip_addr().expect("sip addr");
    let key = "AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR";
    let secure = format!("secure.{SUFFIX}");
    let plain = format!("plain.{SUFFIX}");
    let s403 = sipp_scenario(
        certs.dir.path(),
        "secure403",
        &secure,
        "RTP/SAVP",
        &format!("1 {key}"),
        403,
    );
    for transport in ["u1", "t1"] {
        let (ok, err) = sipp(&s403, transport, target, "alice").await;
        assert!(ok, "SIPp over {transport} expected 403: {err}");
    }
    let s488 = sipp_scenario(
        certs.dir.path(),
        "plain488",
        &plain,
        "RTP/SAVP",
        &format!("1 {key}"),
        488,
    );
    let (ok, err) = sipp(&s488, "u1", target, "alice").await;
    assert!(
        ok,
        "SIPp expected 488 for SRTP to a non-secure domain: {err}"
    );
    let m = edge.handle.metrics();
    assert_eq!(
        m.policy_rejections.get("insecure_signalling"),
        Some(&2),
        "{m:#?}"
    );
    assert_eq!(
        m.policy_rejections.get("srtp_on_non_secure_domain"),
        Some(&1),
        "{m:#?}"
    );
    assert!(app.hooks().is_empty(), "no webhook for refused calls");
    edge.handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_allowed_callers_reach_the_application() {
    let _serial = serial().await;
    let certs = certs();
    let app = App::start().await;
    app.set("/voice", "<Response><Hangup/></Response>");
    let edge = start_edge(EdgeOptions::new(&certs, 30600)).await;
    edge.domain_with_credentials("auth", &app.url("/voice"), "carol", "s3cret-pass");
    // A domain with neither an IP range nor credentials admits nobody.
    let mut closed = edge.domain("closed", false, &app.url("/voice"));
    closed.ip_ranges.clear();
    edge.directory.insert(closed);
    let base = |domain: &str| {
        vec![
            "--transport".to_owned(),
            "udp".to_owned(),
            "--port".to_owned(),
            edge.sip_port().to_string(),
            "--ruri".to_owned(),
            ruri(domain),
            "--proto".to_owned(),
            "RTP/AVP".to_owned(),
        ]
    };
    // No credentials: a challenge (SHA-256 preferred, MD5 offered).
    let r = uac(&base("auth")).await;
    assert_eq!(r["final"], 401, "{r}");
    // Wrong password.
    let mut args = base("auth");
    args.extend([
        "--user".into(),
        "carol".into(),
        "--password".into(),
        "wrong".into(),
    ]);
    let r = uac(&args).await;
    assert_eq!(
        r["responses"].as_array().expect("codes").last(),
        Some(&serde_json::json!(403)),
        "{r}"
    );
    let challenges = r["challenges"].as_array().expect("challenges");
    // The default: one MD5 challenge, as Twilio's (`--sip-digest` adds SHA-256).
    assert_eq!(challenges.len(), 1, "{challenges:?}");
    assert!(
        challenges[0]
            .as_str()
            .unwrap_or("")
            .contains("algorithm=MD5"),
        "{challenges:?}"
    );
    // Unknown user.
    let mut args = base("auth");
    args.extend([
        "--user".into(),
        "mallory".into(),
        "--password".into(),
        "x".into(),
    ]);
    let r = uac(&args).await;
    assert_eq!(r["final"], 403, "{r}");
    // Not in any ACL, no credential list.
    let r = uac(&base("closed")).await;
    assert_eq!(r["final"], 403, "{r}");
    // No such domain, and a host outside the suffix.
    let r = uac(&base("nope")).await;
    assert_eq!(r["final"], 404, "{r}");
    assert!(
        app.hooks().is_empty(),
        "refused callers never reach the webhook"
    );
    // The right password gets in; the webhook names the user.
    let mut args = base("auth");
    args.extend([
        "--user".into(),
        "carol".into(),
        "--password".into(),
        "s3cret-pass".into(),
        "--wait-bye".into(),
        "5".into(),
    ]);
    let r = uac(&args).await;
    assert_eq!(r["final"], 200, "{r}");
    assert!(
        r["got_bye"].as_bool().expect("bool"),
        "<Hangup/> sends BYE: {r}"
    );
    let hooks = app.hooks_to("/voice");
    assert_eq!(hooks.len(), 1);
    assert_eq!(hooks[0].param("SipUsername"), Some("carol"));
    let m = edge.handle.metrics();
    assert!(
        m.refusals.get("challenged").copied().unwrap_or(0) >= 3,
        "{m:#?}"
    );
    assert_eq!(m.refusals.get("bad_credentials"), Some(&2), "{m:#?}");
    assert_eq!(m.refusals.get("not_allowed"), Some(&1), "{m:#?}");
    assert_eq!(m.refusals.get("unknown_domain"), Some(&1), "{m:#?}");
    edge.handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reject_and_hangup_give_the_expected_sip_responses() {
    let _serial = serial().await;
    let certs = certs();
    let app = App::start().await;
    app.set("/busy", "<Response><Reject reason=\"busy\"/></Response>");
    app.set("/reject", "<Response><Reject/></Response>");
    app.set("/hangup", "<Response><Hangup/></Response>");
    app.set(
        "/redirect",
        "<Response><Pause length=\"1\"/><Redirect>/busy</Redirect></Response>",
    );
    let edge = start_edge(EdgeOptions::new(&certs, 30800)).await;
    for name in ["busy", "reject", "hangup", "redirect"] {
        edge.domain(name, false, &app.url(&format!("/{name}")));
    }
    let call = |domain: &str| {
        vec![
            "--transport".to_owned(),
            "udp".to_owned(),
            "--port".to_owned(),
            edge.sip_port().to_string(),
            "--ruri".to_owned(),
            ruri(domain),
            "--proto".to_owned(),
            "RTP/AVP".to_owned(),
            "--wait-bye".to_owned(),
            "5".to_owned(),
        ]
    };
    let r = uac(&call("busy")).await;
    assert_eq!(r["final"], 486, "{r}");
    assert_eq!(
        r["responses"],
        serde_json::json!([100, 180, 486]),
        "180 before the webhook: {r}"
    );
    let r = uac(&call("reject")).await;
    assert_eq!(r["final"], 603, "{r}");
    let r = uac(&call("hangup")).await;
    assert_eq!(r["final"], 200, "{r}");
    assert!(r["got_bye"].as_bool().expect("bool"), "200 then BYE: {r}");
    // <Pause> and <Redirect> keep the call ringing; the redirected document rejects it.
    let r = uac(&call("redirect")).await;
    assert_eq!(r["final"], 486, "{r}");
    assert_eq!(app.hooks_to("/busy").len(), 2);
    edge.handle.shutdown().await;
}
