//! Debugger notifications (api/2010-04-01 `Notifications`): where the encryption fallback and
//! failure rules of seed 000 leave their trace.

use axum::Json;
use axum::extract::{Path, State};
use mediaseal_store::model::{Cursor, Notification};
use serde_json::{Value, json};

use super::{Authed, json_sid};
use crate::auth::accessible_account;
use crate::clock::rfc2822;
use crate::error::{ApiError, ApiResult};
use crate::paging::{Page, PageRequest, envelope_2010};
use crate::state::AppState;

fn render(n: &Notification) -> Value {
    json!({
        "account_sid": n.account_sid,
        "api_version": "2010-04-01",
        "call_sid": n.call_sid,
        "date_created": rfc2822(n.date_created),
        "date_updated": rfc2822(n.date_created),
        "error_code": n.error_code.to_string(),
        "log": n.log_level.to_string(),
        "message_date": rfc2822(n.date_created),
        "message_text": n.message_text,
        "more_info": n.more_info,
        "request_method": n.request_method,
        "request_url": n.request_url,
        "resource_sid": n.resource_sid,
        "sid": n.sid,
        "uri": format!("/2010-04-01/Accounts/{}/Notifications/{}.json", n.account_sid, n.sid),
    })
}

pub(crate) async fn list(
    State(st): State<AppState>,
    auth: Authed,
    Path(account_sid): Path<String>,
) -> ApiResult<Json<Value>> {
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
        render,
    )))
}

pub(crate) async fn fetch(
    State(st): State<AppState>,
    auth: Authed,
    Path((account_sid, file)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let account = accessible_account(&st, &auth.principal, &account_sid, &auth.path).await?;
    let sid = json_sid(&file, "NO", &auth.path)?;
    let n = st
        .meta
        .notification(&account.sid, sid)
        .await?
        .ok_or_else(|| ApiError::not_found(&auth.path))?;
    Ok(Json(render(&n)))
}
