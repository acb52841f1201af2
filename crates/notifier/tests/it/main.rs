//! The notifier against real servers on loopback: local HTTP sinks that
//! check each provider's request shape (`providers`, and the channels of
//! issue #20 in `channels`), a real SMTP server (aiosmtpd),
//! nats-server with JetStream, and PostgreSQL; each delivery's outcome told
//! on the bus (`outcomes`).

mod alertmanager;
mod channels;
mod datadog;
mod delivery;
mod email;
mod escalation;
mod escalation_nats;
mod example;
mod harness;
mod nats;
mod outcomes;
mod providers;
mod store;
