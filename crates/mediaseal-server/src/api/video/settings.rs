//! `/v1/RecordingSettings/Default` and `/v1/CompositionSettings/Default`: two independent
//! singletons per account (seed 001: encrypting recordings and encrypting compositions are
//! separate choices).
//!
//! A POST replaces the settings: `FriendlyName` is required every time, as Twilio requires it,
//! and parameters left out go back to their defaults (off, none).

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use mediaseal_store::video::{SettingsKind, VideoSettings};
use serde::Serialize;

use crate::api::Authed;
use crate::clock::now_us;
use crate::error::{ApiError, ApiResult};
use crate::params::Params;
use crate::state::AppState;

fn path(kind: SettingsKind) -> &'static str {
    match kind {
        SettingsKind::Recording => "/v1/RecordingSettings/Default",
        SettingsKind::Composition => "/v1/CompositionSettings/Default",
    }
}

/// Video recording or composition settings as the API shows them (fields in alphabetical order,
/// as clients have always seen them).
#[derive(Debug, Serialize)]
pub(crate) struct VideoSettingsResource {
    account_sid: String,
    aws_credentials_sid: Option<String>,
    aws_s3_url: Option<String>,
    aws_storage_enabled: bool,
    encryption_enabled: bool,
    encryption_key_sid: Option<String>,
    friendly_name: Option<String>,
    url: String,
}

impl VideoSettingsResource {
    fn from_record(base: &str, s: &VideoSettings) -> Self {
        Self {
            account_sid: s.account_sid.clone(),
            aws_credentials_sid: s.aws_credentials_sid.clone(),
            aws_s3_url: s.aws_s3_url.clone(),
            aws_storage_enabled: s.aws_storage_enabled,
            encryption_enabled: s.encryption_enabled,
            encryption_key_sid: s.encryption_key_sid.clone(),
            friendly_name: s.friendly_name.clone(),
            url: format!("{base}{}", path(s.kind)),
        }
    }
}

/// The account's settings of `kind`, or the defaults.
pub(crate) async fn current(
    st: &AppState,
    account_sid: &str,
    kind: SettingsKind,
) -> ApiResult<VideoSettings> {
    Ok(st
        .meta
        .video_settings(account_sid, kind)
        .await?
        .unwrap_or_else(|| VideoSettings::default_for(account_sid, kind)))
}

async fn get(
    st: AppState,
    auth: Authed,
    kind: SettingsKind,
) -> ApiResult<Json<VideoSettingsResource>> {
    let settings = current(&st, auth.principal.sid(), kind).await?;
    Ok(Json(VideoSettingsResource::from_record(
        &auth.base_url,
        &settings,
    )))
}

async fn post(
    st: AppState,
    auth: Authed,
    body: &Bytes,
    kind: SettingsKind,
) -> ApiResult<Json<VideoSettingsResource>> {
    let account = auth.principal.sid().to_owned();
    let form = Params::from_form(body);
    let friendly_name = form.required("FriendlyName")?;
    if friendly_name.chars().count() > 255 {
        return Err(ApiError::bad_param(
            "FriendlyName",
            "longer than 255 characters",
        ));
    }
    let encryption_enabled = form.boolean("EncryptionEnabled")?.unwrap_or(false);
    let encryption_key_sid = match form.get("EncryptionKeySid").filter(|v| !v.is_empty()) {
        None => None,
        Some(_) => {
            let sid = form.sid("EncryptionKeySid", "CR")?.unwrap_or_default();
            match st.meta.public_key(sid).await? {
                Some(k) if k.account_sid == account => Some(k.sid),
                _ => {
                    return Err(ApiError::bad_param(
                        "EncryptionKeySid",
                        format!(
                            "no public key {sid} belongs to account {account}; create one at /v1/Credentials/PublicKeys"
                        ),
                    ));
                }
            }
        }
    };
    if encryption_enabled && encryption_key_sid.is_none() {
        return Err(ApiError::bad_param(
            "EncryptionKeySid",
            "is required when EncryptionEnabled is true",
        ));
    }
    let aws_storage_enabled = form.boolean("AwsStorageEnabled")?.unwrap_or(false);
    let aws_s3_url = form.url("AwsS3Url")?.map(str::to_owned);
    let aws_credentials_sid = form.sid("AwsCredentialsSid", "CR")?.map(str::to_owned);
    if aws_storage_enabled && (aws_s3_url.is_none() || aws_credentials_sid.is_none()) {
        return Err(ApiError::bad_param(
            "AwsStorageEnabled",
            "true needs AwsS3Url and AwsCredentialsSid",
        ));
    }
    let now = now_us();
    let before = st.meta.video_settings(&account, kind).await?;
    let settings = VideoSettings {
        account_sid: account.clone(),
        kind,
        friendly_name: Some(friendly_name.to_owned()),
        encryption_enabled,
        encryption_key_sid,
        aws_storage_enabled,
        aws_s3_url,
        aws_credentials_sid,
        date_created: before.map_or(now, |b| b.date_created),
        date_updated: now,
    };
    st.meta.put_video_settings(&settings).await?;
    tracing::info!(account = %account, kind = kind.as_str(), encryption = encryption_enabled, "video settings changed");
    Ok(Json(VideoSettingsResource::from_record(
        &auth.base_url,
        &settings,
    )))
}

pub(crate) async fn get_recording(
    State(st): State<AppState>,
    auth: Authed,
) -> ApiResult<Json<VideoSettingsResource>> {
    get(st, auth, SettingsKind::Recording).await
}

pub(crate) async fn post_recording(
    State(st): State<AppState>,
    auth: Authed,
    body: Bytes,
) -> ApiResult<Json<VideoSettingsResource>> {
    post(st, auth, &body, SettingsKind::Recording).await
}

pub(crate) async fn get_composition(
    State(st): State<AppState>,
    auth: Authed,
) -> ApiResult<Json<VideoSettingsResource>> {
    get(st, auth, SettingsKind::Composition).await
}

pub(crate) async fn post_composition(
    State(st): State<AppState>,
    auth: Authed,
    body: Bytes,
) -> ApiResult<Json<VideoSettingsResource>> {
    post(st, auth, &body, SettingsKind::Composition).await
}
