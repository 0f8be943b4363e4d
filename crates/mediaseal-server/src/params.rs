//! Form and query parameters as Twilio clients send them (parsed by `mediaseal-wire`); a bad one
//! becomes a 400 with code 20001 naming it.

pub use mediaseal_wire::params::{ParamError, Params};

use mediaseal_service::egress::{WebhookPolicy, bounded};

/// An optional webhook URL: well formed ([`Params::url`]), and with a host the webhook policy
/// allows when the host is a literal (`127.1`, `[::1]`, `localhost`; names are checked when the
/// callback is delivered, on the addresses they resolve to).
pub fn webhook_url<'a>(
    params: &'a Params,
    name: &str,
    policy: &WebhookPolicy,
) -> Result<Option<&'a str>, ParamError> {
    let Some((raw, url)) = params.parsed_url(name)? else {
        return Ok(None);
    };
    policy.check_url(&url).map_err(|e| {
        let host = url.host_str().unwrap_or_default();
        ParamError::invalid(
            name,
            format!("the host '{}' is refused: {e}", bounded(host, 100)),
        )
    })?;
    Ok(Some(raw))
}
