//! The SIP REST surface (`/2010-04-01/Accounts/{AC}/SIP/…`) in Twilio's shapes: Domains,
//! CredentialLists with Credentials, IpAccessControlLists with IpAddresses, and the
//! `Auth/Calls` mappings; passwords sealed and never shown; owner/parent access only.

mod support;

use axum::http::{Method, StatusCode};
use mediaseal_store::model::SipListKind;
use support::{Creds, TestApp};

const SUFFIX: &str = "sip.example.test";

async fn app() -> TestApp {
    TestApp::with_config(|c| c.sip_domain_suffix = Some(SUFFIX.to_owned())).await
}

fn base(account: &str) -> String {
    format!("/2010-04-01/Accounts/{account}/SIP")
}

/// A domain name no other test (or run, on a shared database) uses.
fn unique(label: &str) -> String {
    format!(
        "{label}-{}.{SUFFIX}",
        &mediaseal_server::sid::new_sid("XX")[2..14]
    )
}

#[tokio::test]
async fn domains_are_created_fetched_listed_updated_and_deleted() {
    let app = app().await;
    let a = app.account().await;
    let c = Creds::of(&a);
    let b = base(&a.sid);
    let name = unique("Acme");
    let r = app
        .post_form(
            &format!("{b}/Domains.json"),
            &c,
            &[
                ("DomainName", &name),
                ("FriendlyName", "Acme office"),
                ("VoiceUrl", "https://app.example.com/voice"),
                ("VoiceMethod", "GET"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let d = r.json();
    let sid = d["sid"].as_str().unwrap().to_owned();
    assert!(sid.starts_with("SD") && sid.len() == 34);
    assert_eq!(d["domain_name"], name.to_ascii_lowercase());
    assert_eq!(d["secure"], false, "Secure defaults to false");
    assert_eq!(d["voice_method"], "GET");
    assert_eq!(d["voice_fallback_method"], "POST");
    assert_eq!(d["voice_url"], "https://app.example.com/voice");
    assert!(d["auth_type"].is_null());
    assert_eq!(d["account_sid"], a.sid.as_str());
    assert_eq!(d["api_version"], "2010-04-01");
    assert_eq!(d["uri"], format!("{b}/Domains/{sid}.json"));
    assert_eq!(
        d["subresource_uris"]["credential_list_mappings"],
        format!("{b}/Domains/{sid}/CredentialListMappings.json")
    );
    assert!(d["date_created"].as_str().unwrap().ends_with("+0000"));

    // The name is the service's: taken for everyone, and it must carry the suffix.
    let other = app.account().await;
    let r = app
        .post_form(
            &format!("{}/Domains.json", base(&other.sid)),
            &Creds::of(&other),
            &[("DomainName", &name)],
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{:?}", r.body);
    for bad in ["acme.example.org", SUFFIX, "bad_label.sip.example.test", ""] {
        let r = app
            .post_form(&format!("{b}/Domains.json"), &c, &[("DomainName", bad)])
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}: {:?}", r.body);
        assert!(r.json()["message"].as_str().unwrap().contains("DomainName"));
    }
    let r = app.post_form(&format!("{b}/Domains.json"), &c, &[]).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    // Webhooks follow the webhook policy; unimplemented features are refused, not ignored.
    for (k, v) in [
        ("VoiceUrl", "http://10.1.2.3/voice"),
        ("VoiceMethod", "PUT"),
        ("SipRegistration", "maybe"),
        ("Secure", "maybe"),
    ] {
        let r = app
            .post_form(
                &format!("{b}/Domains.json"),
                &c,
                &[("DomainName", &unique("x")), (k, v)],
            )
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{k}={v}: {:?}", r.body);
    }

    let uri = format!("{b}/Domains/{sid}.json");
    let r = app.get(&uri, &c).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["friendly_name"], "Acme office");

    let r = app
        .post_form(
            &uri,
            &c,
            &[
                ("Secure", "true"),
                ("VoiceUrl", ""),
                ("VoiceFallbackUrl", "https://app.example.com/fallback"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let d = r.json();
    assert_eq!(d["secure"], true);
    assert!(d["voice_url"].is_null(), "an empty URL clears it");
    assert_eq!(d["voice_fallback_url"], "https://app.example.com/fallback");
    assert_eq!(d["friendly_name"], "Acme office", "unchanged");

    // A second domain; pages of one.
    let second = unique("beta");
    let r = app
        .post_form(&format!("{b}/Domains.json"), &c, &[("DomainName", &second)])
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let r = app.get(&format!("{b}/Domains.json?PageSize=1"), &c).await;
    assert_eq!(r.status, StatusCode::OK);
    let page = r.json();
    assert_eq!(page["domains"].as_array().unwrap().len(), 1);
    assert_eq!(page["domains"][0]["domain_name"], second);
    let next = page["next_page_uri"].as_str().unwrap().to_owned();
    let page2 = app.get(&next, &c).await.json();
    assert_eq!(page2["domains"][0]["sid"], sid.as_str());
    assert!(page2["next_page_uri"].is_null());

    let r = app.delete(&uri, &c).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(app.get(&uri, &c).await.status, StatusCode::NOT_FOUND);
    assert_eq!(app.delete(&uri, &c).await.status, StatusCode::NOT_FOUND);
    // The name is free again.
    let r = app
        .post_form(&format!("{b}/Domains.json"), &c, &[("DomainName", &name)])
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
}

#[tokio::test]
async fn credentials_follow_twilios_rules_and_passwords_never_come_back() {
    let app = app().await;
    let a = app.account().await;
    let c = Creds::of(&a);
    let b = base(&a.sid);
    let r = app
        .post_form(
            &format!("{b}/CredentialLists.json"),
            &c,
            &[("FriendlyName", "staff")],
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let list = r.json();
    let cl = list["sid"].as_str().unwrap().to_owned();
    assert!(cl.starts_with("CL"));
    assert_eq!(
        list["subresource_uris"]["credentials"],
        format!("{b}/CredentialLists/{cl}/Credentials.json")
    );
    let creds_uri = format!("{b}/CredentialLists/{cl}/Credentials.json");
    for weak in [
        "short1A",
        "alllowercase123",
        "ALLUPPERCASE123",
        "NoDigitsHereAtAll",
    ] {
        let r = app
            .post_form(&creds_uri, &c, &[("Username", "alice"), ("Password", weak)])
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{weak}");
        let text = String::from_utf8_lossy(&r.body).into_owned();
        assert!(text.contains("Password") && !text.contains(weak), "{text}");
    }
    let r = app
        .post_form(
            &creds_uri,
            &c,
            &[("Username", "a:b"), ("Password", "Str0ngPassword")],
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let password = "Str0ngPassword-42";
    let r = app
        .post_form(
            &creds_uri,
            &c,
            &[("Username", "alice"), ("Password", password)],
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let body = String::from_utf8_lossy(&r.body).into_owned();
    assert!(
        !body.contains(password) && !body.contains("password"),
        "{body}"
    );
    let cred = r.json();
    let cr = cred["sid"].as_str().unwrap().to_owned();
    assert!(cr.starts_with("CR"));
    assert_eq!(cred["username"], "alice");
    assert_eq!(cred["credential_list_sid"], cl.as_str());
    let r = app
        .post_form(
            &creds_uri,
            &c,
            &[("Username", "alice"), ("Password", password)],
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "one username per list");

    // Stored sealed; the service's key opens it for this credential only.
    let stored = app
        .state
        .meta
        .sip_credential(&a.sid, &cl, &cr)
        .await
        .unwrap()
        .unwrap();
    assert!(!stored.password_sealed.contains(password));
    let key = app.state.sip_passwords.clone().unwrap();
    assert_eq!(
        key.open(&cr, &stored.password_sealed).unwrap().as_str(),
        password
    );
    assert!(
        key.open(
            "CR00000000000000000000000000000000",
            &stored.password_sealed
        )
        .is_err()
    );
    assert!(!format!("{stored:?}").contains(&stored.password_sealed));

    let item = format!("{b}/CredentialLists/{cl}/Credentials/{cr}.json");
    let r = app
        .post_form(&item, &c, &[("Password", "N3wPasswordValue")])
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let stored = app
        .state
        .meta
        .sip_credential(&a.sid, &cl, &cr)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        key.open(&cr, &stored.password_sealed).unwrap().as_str(),
        "N3wPasswordValue"
    );
    let r = app.get(&creds_uri, &c).await;
    assert_eq!(r.json()["credentials"][0]["sid"], cr.as_str());
    assert!(!String::from_utf8_lossy(&r.body).contains("N3wPasswordValue"));

    let r = app
        .post_form(
            &format!("{b}/CredentialLists/{cl}.json"),
            &c,
            &[("FriendlyName", "renamed")],
        )
        .await;
    assert_eq!(r.json()["friendly_name"], "renamed");
    let r = app.get(&format!("{b}/CredentialLists.json"), &c).await;
    assert_eq!(r.json()["credential_lists"][0]["friendly_name"], "renamed");

    assert_eq!(app.delete(&item, &c).await.status, StatusCode::NO_CONTENT);
    assert_eq!(app.get(&item, &c).await.status, StatusCode::NOT_FOUND);
    assert_eq!(
        app.delete(&format!("{b}/CredentialLists/{cl}.json"), &c)
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(app.get(&creds_uri, &c).await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn ip_access_control_lists_hold_addresses_and_ranges() {
    let app = app().await;
    let a = app.account().await;
    let c = Creds::of(&a);
    let b = base(&a.sid);
    let r = app
        .post_form(
            &format!("{b}/IpAccessControlLists.json"),
            &c,
            &[("FriendlyName", "office")],
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let al = r.json()["sid"].as_str().unwrap().to_owned();
    assert!(al.starts_with("AL"));
    let addrs = format!("{b}/IpAccessControlLists/{al}/IpAddresses.json");
    let r = app
        .post_form(
            &addrs,
            &c,
            &[
                ("FriendlyName", "lan"),
                ("IpAddress", "192.0.2.0"),
                ("CidrPrefixLength", "24"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let ip = r.json();
    assert_eq!(ip["ip_address"], "192.0.2.0");
    assert_eq!(ip["cidr_prefix_length"], 24);
    assert_eq!(ip["ip_access_control_list_sid"], al.as_str());
    let ip_sid = ip["sid"].as_str().unwrap().to_owned();
    let r = app
        .post_form(
            &addrs,
            &c,
            &[("FriendlyName", "v6"), ("IpAddress", "2001:db8::1")],
        )
        .await;
    assert_eq!(
        r.json()["cidr_prefix_length"],
        128,
        "one address by default"
    );
    for (ipa, len) in [("192.0.2.0/24", "24"), ("nope", "32"), ("192.0.2.1", "33")] {
        let r = app
            .post_form(
                &addrs,
                &c,
                &[
                    ("FriendlyName", "x"),
                    ("IpAddress", ipa),
                    ("CidrPrefixLength", len),
                ],
            )
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{ipa}/{len}");
    }
    let item = format!("{b}/IpAccessControlLists/{al}/IpAddresses/{ip_sid}.json");
    let r = app
        .post_form(&item, &c, &[("CidrPrefixLength", "16")])
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["cidr_prefix_length"], 16);
    assert_eq!(r.json()["ip_address"], "192.0.2.0");
    let r = app.get(&addrs, &c).await;
    assert_eq!(r.json()["ip_addresses"].as_array().unwrap().len(), 2);
    assert_eq!(app.delete(&item, &c).await.status, StatusCode::NO_CONTENT);
    let r = app.get(&format!("{b}/IpAccessControlLists.json"), &c).await;
    assert_eq!(r.json()["ip_access_control_lists"][0]["sid"], al.as_str());
}

#[tokio::test]
async fn auth_calls_mappings_decide_what_the_sip_edge_sees() {
    let app = app().await;
    let a = app.account().await;
    let c = Creds::of(&a);
    let b = base(&a.sid);
    let name = unique("mapped");
    let sd = app
        .post_form(&format!("{b}/Domains.json"), &c, &[("DomainName", &name)])
        .await
        .json()["sid"]
        .as_str()
        .unwrap()
        .to_owned();
    let cl = app
        .post_form(
            &format!("{b}/CredentialLists.json"),
            &c,
            &[("FriendlyName", "staff")],
        )
        .await
        .json()["sid"]
        .as_str()
        .unwrap()
        .to_owned();
    app.post_form(
        &format!("{b}/CredentialLists/{cl}/Credentials.json"),
        &c,
        &[("Username", "carol"), ("Password", "Carol-Passw0rd")],
    )
    .await;
    let al = app
        .post_form(
            &format!("{b}/IpAccessControlLists.json"),
            &c,
            &[("FriendlyName", "lan")],
        )
        .await
        .json()["sid"]
        .as_str()
        .unwrap()
        .to_owned();
    app.post_form(
        &format!("{b}/IpAccessControlLists/{al}/IpAddresses.json"),
        &c,
        &[
            ("FriendlyName", "lan"),
            ("IpAddress", "198.51.100.0"),
            ("CidrPrefixLength", "24"),
        ],
    )
    .await;

    // Nothing mapped: the edge sees a domain nobody may call.
    let auth = app.state.meta.sip_domain_auth(&sd).await.unwrap();
    assert!(auth.credentials.is_empty() && auth.ip_addresses.is_empty());

    let cl_maps = format!("{b}/Domains/{sd}/Auth/Calls/CredentialListMappings.json");
    let al_maps = format!("{b}/Domains/{sd}/Auth/Calls/IpAccessControlListMappings.json");
    let r = app
        .post_form(&cl_maps, &c, &[("CredentialListSid", &cl)])
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let m = r.json();
    assert_eq!(m["sid"], cl.as_str());
    assert_eq!(m["friendly_name"], "staff");
    assert_eq!(m["account_sid"], a.sid.as_str());
    let r = app
        .post_form(&cl_maps, &c, &[("CredentialListSid", &cl)])
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    // A list SID of the wrong kind, or nobody's.
    let r = app
        .post_form(&cl_maps, &c, &[("CredentialListSid", &al)])
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = app
        .post_form(
            &al_maps,
            &c,
            &[(
                "IpAccessControlListSid",
                "AL00000000000000000000000000000000",
            )],
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = app
        .post_form(&al_maps, &c, &[("IpAccessControlListSid", &al)])
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);

    // Another account's list cannot be mapped, even by SID.
    let other = app.account().await;
    let theirs = app
        .post_form(
            &format!("{}/CredentialLists.json", base(&other.sid)),
            &Creds::of(&other),
            &[("FriendlyName", "theirs")],
        )
        .await
        .json()["sid"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = app
        .post_form(&cl_maps, &c, &[("CredentialListSid", &theirs)])
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);

    let d = app.get(&format!("{b}/Domains/{sd}.json"), &c).await.json();
    assert_eq!(d["auth_type"], "IP_ACL,CREDENTIAL_LIST");
    let list = app.get(&cl_maps, &c).await.json();
    assert_eq!(list["contents"][0]["sid"], cl.as_str());
    // The older path is the same mapping.
    let legacy = app
        .get(&format!("{b}/Domains/{sd}/CredentialListMappings.json"), &c)
        .await
        .json();
    assert_eq!(legacy["credential_list_mappings"][0]["sid"], cl.as_str());

    let auth = app.state.meta.sip_domain_auth(&sd).await.unwrap();
    assert_eq!(auth.credentials.len(), 1);
    assert_eq!(auth.credentials[0].username, "carol");
    assert_eq!(auth.ip_addresses.len(), 1);
    assert_eq!(auth.ip_addresses[0].ip_address, "198.51.100.0");
    assert_eq!(
        app.state
            .meta
            .sip_domain_by_name(&name)
            .await
            .unwrap()
            .unwrap()
            .sid,
        sd
    );

    let one = format!("{b}/Domains/{sd}/Auth/Calls/IpAccessControlListMappings/{al}.json");
    assert_eq!(app.get(&one, &c).await.json()["friendly_name"], "lan");
    assert_eq!(app.delete(&one, &c).await.status, StatusCode::NO_CONTENT);
    assert_eq!(app.get(&one, &c).await.status, StatusCode::NOT_FOUND);
    // Deleting a list unmaps it.
    assert_eq!(
        app.delete(&format!("{b}/CredentialLists/{cl}.json"), &c)
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    let auth = app.state.meta.sip_domain_auth(&sd).await.unwrap();
    assert!(auth.credentials.is_empty() && auth.ip_addresses.is_empty());
    assert!(
        app.get(&cl_maps, &c).await.json()["contents"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    let kinds = app
        .state
        .meta
        .list_sip_mappings(&a.sid, &sd, SipListKind::Credential.into(), None, 10)
        .await
        .unwrap();
    assert!(kinds.is_empty());
}

#[tokio::test]
async fn registration_mappings_and_the_sip_registration_flag() {
    let app = app().await;
    let a = app.account().await;
    let c = Creds::of(&a);
    let b = base(&a.sid);
    let name = unique("reg");
    let r = app
        .post_form(
            &format!("{b}/Domains.json"),
            &c,
            &[("DomainName", &name), ("SipRegistration", "true")],
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert_eq!(r.json()["sip_registration"], true);
    let sd = r.json()["sid"].as_str().unwrap().to_owned();
    let cl = app
        .post_form(
            &format!("{b}/CredentialLists.json"),
            &c,
            &[("FriendlyName", "phones")],
        )
        .await
        .json()["sid"]
        .as_str()
        .unwrap()
        .to_owned();
    app.post_form(
        &format!("{b}/CredentialLists/{cl}/Credentials.json"),
        &c,
        &[("Username", "alice"), ("Password", "Alice-Passw0rd")],
    )
    .await;

    let maps = format!("{b}/Domains/{sd}/Auth/Registrations/CredentialListMappings.json");
    let r = app
        .post_form(&maps, &c, &[("CredentialListSid", &cl)])
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let m = r.json();
    assert_eq!(m["sid"], cl.as_str());
    assert_eq!(m["friendly_name"], "phones");
    assert_eq!(m["account_sid"], a.sid.as_str());
    let r = app
        .post_form(&maps, &c, &[("CredentialListSid", &cl)])
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    let r = app
        .post_form(
            &maps,
            &c,
            &[("CredentialListSid", "CL00000000000000000000000000000000")],
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        app.get(&maps, &c).await.json()["contents"][0]["sid"],
        cl.as_str()
    );

    // A registration mapping lets the list register, not call.
    let auth = app.state.meta.sip_domain_auth(&sd).await.unwrap();
    assert!(auth.credentials.is_empty());
    assert_eq!(auth.registration_credentials.len(), 1);
    assert_eq!(auth.registration_credentials[0].username, "alice");
    assert!(
        app.get(
            &format!("{b}/Domains/{sd}/Auth/Calls/CredentialListMappings.json"),
            &c
        )
        .await
        .json()["contents"]
            .as_array()
            .unwrap()
            .is_empty()
    );

    let one = format!("{b}/Domains/{sd}/Auth/Registrations/CredentialListMappings/{cl}.json");
    assert_eq!(app.get(&one, &c).await.json()["friendly_name"], "phones");
    // The flag turns off and on again by update.
    let r = app
        .post_form(
            &format!("{b}/Domains/{sd}.json"),
            &c,
            &[("SipRegistration", "false")],
        )
        .await;
    assert_eq!(r.json()["sip_registration"], false);
    assert!(
        !app.state
            .meta
            .sip_domain(&a.sid, &sd)
            .await
            .unwrap()
            .unwrap()
            .sip_registration
    );
    assert_eq!(app.delete(&one, &c).await.status, StatusCode::NO_CONTENT);
    assert_eq!(app.get(&one, &c).await.status, StatusCode::NOT_FOUND);
    let auth = app.state.meta.sip_domain_auth(&sd).await.unwrap();
    assert!(auth.registration_credentials.is_empty());
}

/// Every SIP endpoint × {owner, parent, subaccount, unrelated account, bad credentials}: the
/// owner and its parent succeed; the others get what a missing resource gets.
#[tokio::test]
async fn access_matrix_for_sip_resources() {
    let app = app().await;
    let owner = app.account().await;
    let child = app.subaccount(&owner).await;
    let other = app.account().await;
    let parent = app.account().await;
    let owned = app.subaccount(&parent).await;
    let _ = owner;
    let c = Creds::of(&owned);
    let b = base(&owned.sid);
    let sid_of = |r: support::Resp| r.json()["sid"].as_str().unwrap().to_owned();
    let sd = sid_of(
        app.post_form(
            &format!("{b}/Domains.json"),
            &c,
            &[("DomainName", &unique("m"))],
        )
        .await,
    );
    let cl = sid_of(
        app.post_form(
            &format!("{b}/CredentialLists.json"),
            &c,
            &[("FriendlyName", "l")],
        )
        .await,
    );
    let cr = sid_of(
        app.post_form(
            &format!("{b}/CredentialLists/{cl}/Credentials.json"),
            &c,
            &[("Username", "u"), ("Password", "Passw0rdPassw0rd")],
        )
        .await,
    );
    let al = sid_of(
        app.post_form(
            &format!("{b}/IpAccessControlLists.json"),
            &c,
            &[("FriendlyName", "l")],
        )
        .await,
    );
    let ip = sid_of(
        app.post_form(
            &format!("{b}/IpAccessControlLists/{al}/IpAddresses.json"),
            &c,
            &[("FriendlyName", "l"), ("IpAddress", "192.0.2.1")],
        )
        .await,
    );
    app.post_form(
        &format!("{b}/Domains/{sd}/Auth/Calls/CredentialListMappings.json"),
        &c,
        &[("CredentialListSid", &cl)],
    )
    .await;
    app.post_form(
        &format!("{b}/Domains/{sd}/Auth/Calls/IpAccessControlListMappings.json"),
        &c,
        &[("IpAccessControlListSid", &al)],
    )
    .await;
    let reads = [
        format!("{b}/Domains.json"),
        format!("{b}/Domains/{sd}.json"),
        format!("{b}/Domains/{sd}/Auth/Calls/CredentialListMappings.json"),
        format!("{b}/Domains/{sd}/Auth/Calls/CredentialListMappings/{cl}.json"),
        format!("{b}/Domains/{sd}/Auth/Calls/IpAccessControlListMappings.json"),
        format!("{b}/Domains/{sd}/Auth/Calls/IpAccessControlListMappings/{al}.json"),
        format!("{b}/CredentialLists.json"),
        format!("{b}/CredentialLists/{cl}.json"),
        format!("{b}/CredentialLists/{cl}/Credentials.json"),
        format!("{b}/CredentialLists/{cl}/Credentials/{cr}.json"),
        format!("{b}/IpAccessControlLists.json"),
        format!("{b}/IpAccessControlLists/{al}.json"),
        format!("{b}/IpAccessControlLists/{al}/IpAddresses.json"),
        format!("{b}/IpAccessControlLists/{al}/IpAddresses/{ip}.json"),
    ];
    let grandchild = app.subaccount(&owned).await;
    let cases = [
        (Creds::of(&owned), StatusCode::OK),
        (Creds::of(&parent), StatusCode::OK),
        (Creds::of(&grandchild), StatusCode::NOT_FOUND),
        (Creds::of(&other), StatusCode::NOT_FOUND),
        (Creds::of(&child), StatusCode::NOT_FOUND),
        (
            Creds::Basic(owned.sid.clone(), "wrong".to_owned()),
            StatusCode::UNAUTHORIZED,
        ),
    ];
    for uri in &reads {
        for (who, expected) in &cases {
            let r = app.get(uri, who).await;
            assert_eq!(r.status, *expected, "GET {uri} as {who:?}");
        }
    }
    // Writes by strangers change nothing and look like 404s.
    for (who, expected) in &cases[2..] {
        for (method, uri, form) in [
            (
                Method::POST,
                format!("{b}/Domains/{sd}.json"),
                vec![("Secure", "true")],
            ),
            (
                Method::POST,
                format!("{b}/CredentialLists/{cl}/Credentials/{cr}.json"),
                vec![("Password", "Other-Passw0rd1")],
            ),
            (
                Method::DELETE,
                format!("{b}/IpAccessControlLists/{al}.json"),
                vec![],
            ),
            (
                Method::POST,
                format!("{b}/Domains.json"),
                vec![("DomainName", "z.sip.example.test")],
            ),
        ] {
            let r = if method == Method::DELETE {
                app.delete(&uri, who).await
            } else {
                app.post_form(&uri, who, &form).await
            };
            assert_eq!(r.status, *expected, "{method} {uri} as {who:?}");
        }
    }
    let d = app.get(&format!("{b}/Domains/{sd}.json"), &c).await.json();
    assert_eq!(d["secure"], false);
    // The parent may act on its subaccount's resources.
    let r = app
        .post_form(
            &format!("{b}/Domains/{sd}.json"),
            &Creds::of(&parent),
            &[("Secure", "true")],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
}
