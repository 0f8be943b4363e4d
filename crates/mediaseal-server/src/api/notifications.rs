//! Debugger notifications (api/2010-04-01 `Notifications`): where the encryption fallback and
//! failure rules of seed 000 leave their trace.

use axum::Json;
use axum::extract::{Path, State};
use mediaseal_store::model::{Cursor, Notification};
use serde::Serialize;

use super::{Authed, json_sid};
use crate::auth::accessible_account;
use crate::clock::rfc2822;
use crate::error::{ApiError, ApiResult};
use crate::paging::{Envelope2010, Page, PageRequest, envelope_2010};
use crate::state::AppState;

/// A notification as the API shows it (fields in alphabetical order, as clients have always seen
/// them).
#[derive(Debug, Serialize)]
pub(crate) struct NotificationResource {
    account_sid: String,
    api_version: &'static str,
    call_sid: Option<String>,
    date_created: String,
    date_updated: String,
    error_code: String,
    log: String,
    message_date: String,
    message_text: String,
    more_info: String,
    request_method: Option<String>,
    request_url: Option<String>,
    resource_sid: Option<String>,
    sid: String,
    uri: String,
}

impl NotificationResource {
    fn from_record(n: &Notification) -> Self {
        Self {
            account_sid: n.account_sid.clone(),
            api_version: "2010-04-01",
            call_sid: n.call_sid.clone(),
            date_created: rfc2822(n.date_created),
            date_updated: rfc2822(n.date_created),
            error_code: n.error_code.to_string(),
            log: n.log_level.to_string(),
            message_date: rfc2822(n.date_created),
            message_text: n.message_text.clone(),
            more_info: n.more_info.clone(),
            request_method: n.request_method.clone(),
            request_url: n.request_url.clone(),
            resource_sid: n.resource_sid.clone(),
            sid: n.sid.clone(),
            uri: format!(
                "/2010-04-01/Accounts/{}/Notifications/{}.json",
                n.account_sid, n.sid
            ),
        }
    }
}

pub(crate) async fn list(
    State(st): State<AppState>,
    auth: Authed,
    Path(account_sid): Path<String>,
) -> ApiResult<Json<Envelope2010<NotificationResource>>> {
    let account = accessible_account(&st, &auth.principal, &account_sid, &auth.path).await?;
    let req = PageRequest::from_params(&auth.query, 1000)?;
    let rows = st
        .meta
        .list_notifications(&account.sid, req.cursor.as_ref(), req.fetch_limit())
        .await?;
    let page = Page::cut(rows, &req, |n| Cursor {
        date_created: n.date_created,
        sid: n.sid.clone(),
    });
    let path = auth.path.clone();
    Ok(Json(envelope_2010(
        "notifications",
        &path,
        &page,
        &req,
        &auth.query,
        &[],
        NotificationResource::from_record,
    )))
}

pub(crate) async fn fetch(
    State(st): State<AppState>,
    auth: Authed,
    Path((account_sid, file)): Path<(String, String)>,
) -> ApiResult<Json<NotificationResource>> {
    let account = accessible_account(&st, &auth.principal, &account_sid, &auth.path).await?;
    let sid = json_sid(&file, "NO", &auth.path)?;
    let n = st
        .meta
        .notification(&account.sid, sid)
        .await?
        .ok_or_else(|| ApiError::not_found(&auth.path))?;
    Ok(Json(NotificationResource::from_record(&n)))
}
