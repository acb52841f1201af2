//! Message text: one minijinja template per channel, a default per channel
//! type, written to read well on a phone (a status line, then one short
//! block per alert, at most ten).

use minijinja::{Environment, UndefinedBehavior};
use pantau_config::{ChannelConfig, ChannelType};

use crate::notification::Notification;

/// The default template. `b` is the channel's bold marker (`*` on Slack,
/// Google Chat and Rocket.Chat, `**` on Discord, Teams and Mattermost,
/// nothing on plain-text channels).
pub const DEFAULT: &str = r#"{% if status == "resolved" %}✅ {{ b }}RESOLVED{{ b }}{% elif status == "acknowledged" %}👀 {{ b }}ACKNOWLEDGED{{ b }}{% else %}{{ "🔴" if severity == "critical" else ("🟠" if severity == "warning" else "🔵") }} {{ b }}{{ severity | upper }}{{ b }}{% endif %} {{ title }}
{% for a in alerts[:10] %}{% if not loop.first %}
{% endif %}{% if alerts | length > 1 %}• {% endif %}{% if a.status != status %}[{{ a.status | upper }}] {% endif %}{{ a.summary or a.name }}
{% if a.description %}{{ a.description }}
{% endif %}{% if a.labels.instance %}on {{ a.labels.instance }}
{% endif %}{% if status == "resolved" and a.ends_at %}resolved {{ a.ends_at }}
{% elif a.starts_at %}since {{ a.starts_at }}
{% endif %}{% if a.actor %}by {{ a.actor }}
{% endif %}{% endfor %}{% if alerts | length > 10 %}…and {{ alerts | length - 10 }} more{% endif %}"#;

/// Why a message could not be rendered.
#[derive(Debug, thiserror::Error)]
#[error("template of channel `{channel}`: {source}")]
pub struct TemplateError {
    pub channel: String,
    #[source]
    pub source: minijinja::Error,
}

/// The compiled templates of every channel.
pub struct Templates {
    env: Environment<'static>,
}

fn bold(kind: ChannelType) -> &'static str {
    match kind {
        ChannelType::Slack | ChannelType::GoogleChat | ChannelType::Rocketchat => "*",
        ChannelType::Discord | ChannelType::Teams | ChannelType::Mattermost => "**",
        ChannelType::Webhook
        | ChannelType::Telegram
        | ChannelType::Whatsapp
        | ChannelType::WhatsappGateway
        | ChannelType::Pagerduty
        | ChannelType::Email
        | ChannelType::Ntfy
        | ChannelType::Gotify
        | ChannelType::Pushover
        | ChannelType::Matrix
        | ChannelType::Opsgenie
        | ChannelType::Signal
        | ChannelType::Sms => "",
    }
}

impl Templates {
    /// Compiles each channel's template (its own, or the default); a template
    /// that does not parse is an error naming the channel.
    pub fn new(channels: &[ChannelConfig]) -> Result<Self, TemplateError> {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Chainable);
        for c in channels {
            let source = c.template.clone().unwrap_or_else(|| DEFAULT.to_owned());
            env.add_template_owned(c.name.clone(), source)
                .map_err(|source| TemplateError {
                    channel: c.name.clone(),
                    source,
                })?;
        }
        Ok(Self { env })
    }

    /// The text of `n` for `channel`.
    pub fn render(&self, channel: &str, kind: ChannelType, n: &Notification) -> Result<String, TemplateError> {
        let err = |source| TemplateError {
            channel: channel.to_owned(),
            source,
        };
        let t = self.env.get_template(channel).map_err(err)?;
        let ctx = minijinja::context! {
            b => bold(kind),
            status => &n.status,
            severity => &n.severity,
            title => &n.title,
            alerts => &n.alerts,
            common_labels => &n.common_labels,
            external_url => &n.external_url,
            source => &n.source,
            key => &n.key,
        };
        t.render(ctx).map(|s| s.trim().to_owned()).map_err(err)
    }
}

#[cfg(test)]
mod tests {
    use pantau_proto::v1::{AlertEvent, AlertState, Severity};

    use super::*;

    fn channel(name: &str, kind: ChannelType, template: Option<&str>) -> ChannelConfig {
        serde_json::from_value(serde_json::json!({
            "name": name, "type": kind.as_str(), "url": "http://127.0.0.1/x", "template": template,
        }))
        .unwrap()
    }

    fn firing() -> Notification {
        let mut e = AlertEvent {
            alert_id: "a1".into(),
            rule_name: "Down".into(),
            summary: "api.example.org is down".into(),
            description: "HTTP 503 from 2 locations".into(),
            starts_at: Some(prost_types::Timestamp {
                seconds: 1_700_000_000,
                nanos: 0,
            }),
            ..Default::default()
        };
        e.labels.insert("instance".into(), "jkt-1".into());
        e.set_state(AlertState::Firing);
        e.set_severity(Severity::Critical);
        Notification::from_event(&e).unwrap()
    }

    #[test]
    fn default_reads_well() {
        let t = Templates::new(&[
            channel("s", ChannelType::Slack, None),
            channel("w", ChannelType::Webhook, None),
        ])
        .unwrap();
        let text = t.render("s", ChannelType::Slack, &firing()).unwrap();
        assert_eq!(
            text,
            "🔴 *CRITICAL* api.example.org is down\napi.example.org is down\nHTTP 503 from 2 locations\non jkt-1\nsince 2023-11-14T22:13:20.000Z"
        );
        let mut resolved = firing();
        resolved.status = "resolved".into();
        let text = t.render("w", ChannelType::Webhook, &resolved).unwrap();
        assert!(text.starts_with("✅ RESOLVED api.example.org is down"), "{text}");
    }

    #[test]
    fn custom_templates_and_their_errors() {
        let t = Templates::new(&[channel(
            "c",
            ChannelType::Telegram,
            Some("{{ severity }}: {{ alerts[0].labels.instance }}"),
        )])
        .unwrap();
        assert_eq!(
            t.render("c", ChannelType::Telegram, &firing()).unwrap(),
            "critical: jkt-1"
        );
        let Err(e) = Templates::new(&[channel("bad", ChannelType::Slack, Some("{% if %}"))]) else {
            panic!("a broken template compiled");
        };
        assert!(e.to_string().starts_with("template of channel `bad`"), "{e}");
    }
}
