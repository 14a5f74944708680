//! `get_time`: the current time as RFC 3339, in UTC or an IANA time zone. The time zone
//! database is compiled in (jiff's bundled tzdb), so results do not depend on the host.

use jiff::Timestamp;
use jiff::tz::TimeZone;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::json;

use super::{CallToolResult, Tool, ToolContext, ToolError, ToolInfo, ToolResult};

/// Tells the time.
pub struct GetTime;

/// Arguments of `get_time`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GetTimeArgs {
    /// An IANA time zone such as `Europe/Paris`; UTC when omitted.
    #[serde(default)]
    pub timezone: Option<String>,
}

impl Tool for GetTime {
    type Args = GetTimeArgs;

    fn info(&self) -> ToolInfo {
        ToolInfo::new(
            "get_time",
            "Returns the current time as an RFC 3339 timestamp, in UTC or the given IANA time zone.",
        )
        .title("Current time")
        .read_only()
    }

    async fn call(&self, _ctx: ToolContext, args: GetTimeArgs) -> ToolResult {
        // Whole seconds: sub-second digits are noise to a model and to a person.
        let now = Timestamp::from_second(Timestamp::now().as_second()).expect("the current time is in range");
        let (zone_name, zone) = match args.timezone.as_deref().map(str::trim) {
            None | Some("") => ("UTC".to_owned(), TimeZone::UTC),
            Some(name) => {
                let zone = TimeZone::get(name).map_err(|_| {
                    ToolError::failed(format!("Unknown time zone `{name}`: use an IANA name such as Europe/Paris"))
                })?;
                (name.to_owned(), zone)
            }
        };
        let offset = zone.to_offset(now);
        let time = now.display_with_offset(offset).to_string();
        let mut result = CallToolResult::text(time.clone());
        result.structured_content = Some(json!({ "time": time, "timezone": zone_name }));
        Ok(result)
    }
}
