//! When an escalation policy sends what: pure arithmetic on milliseconds
//! since the firing (or the acknowledgement), so it is tested without a
//! clock. A step that fell due while the notifier was down is sent once when
//! it is back: the steps missed together become one send, to every channel
//! any of them named, and nothing is lost.

use pantau_config::EscalationConfig;

/// A policy with its durations in milliseconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub name: String,
    pub repeat_every: Option<i64>,
    /// `(after, channels)`, ascending.
    pub steps: Vec<(i64, Vec<String>)>,
    pub remind_every: Option<i64>,
}

fn ms(d: pantau_config::types::EscalationDelay) -> i64 {
    i64::try_from(d.get().as_millis()).unwrap_or(i64::MAX)
}

/// What one send of an escalation covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Due {
    /// The latest step time covered (ms since the start): part of the
    /// deliveries' idempotency key, so each send has its own.
    pub at: i64,
    /// The channels to notify, each once, in order.
    pub channels: Vec<String>,
    /// The next step after this one (ms since the start), if any.
    pub next: Option<i64>,
}

fn push_unique(out: &mut Vec<String>, names: &[String]) {
    for n in names {
        if !out.contains(n) {
            out.push(n.clone());
        }
    }
}

/// The first multiple of `every` strictly after `t`.
fn next_multiple(every: i64, t: i64) -> i64 {
    (t.max(0) / every).saturating_add(1).saturating_mul(every)
}

impl Policy {
    pub fn new(c: &EscalationConfig) -> Self {
        Self {
            name: c.name.clone(),
            repeat_every: c.repeat_every.map(ms),
            steps: c.steps.iter().map(|s| (ms(s.after), s.channels.clone())).collect(),
            remind_every: c.remind_every.map(ms),
        }
    }

    /// The first step (repeat or step) strictly after `t`, while nobody acknowledged.
    pub fn next_escalation(&self, t: i64) -> Option<i64> {
        let repeat = self.repeat_every.map(|r| next_multiple(r, t));
        let step = self.steps.iter().map(|(a, _)| *a).find(|a| *a > t);
        match (repeat, step) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The first reminder strictly after `t` since the acknowledgement.
    pub fn next_reminder(&self, t: i64) -> Option<i64> {
        self.remind_every.map(|r| next_multiple(r, t))
    }

    /// The unacknowledged steps from `from` (a step time that is due) up to
    /// `now`, both since the firing, as one send to `base` (the route's
    /// channels) and the steps' channels. A repeat goes to every channel
    /// reached so far; a step alone to its own channels.
    pub fn escalation_due(&self, from: i64, now: i64, base: &[String]) -> Due {
        let now = now.max(from);
        let mut at = from;
        let mut repeated = false;
        if let Some(r) = self.repeat_every {
            let last = now / r * r;
            if last >= from && last > 0 {
                repeated = true;
                at = at.max(last);
            }
        }
        let mut channels = Vec::new();
        for (after, _) in &self.steps {
            if (from..=now).contains(after) {
                at = at.max(*after);
            }
        }
        if repeated {
            push_unique(&mut channels, base);
            for (after, names) in &self.steps {
                if *after <= at {
                    push_unique(&mut channels, names);
                }
            }
        } else {
            for (after, names) in &self.steps {
                if (from..=at).contains(after) {
                    push_unique(&mut channels, names);
                }
            }
        }
        Due {
            at,
            channels,
            next: self.next_escalation(at),
        }
    }

    /// The reminders from `from` up to `now` since the acknowledgement, as
    /// one send to `base`.
    pub fn reminder_due(&self, from: i64, now: i64, base: &[String]) -> Due {
        let at = match self.remind_every {
            Some(r) => (now.max(from) / r * r).max(from),
            None => from,
        };
        Due {
            at,
            channels: base.to_vec(),
            next: self.next_reminder(at),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: i64 = 60_000;

    fn names(n: &[&str]) -> Vec<String> {
        n.iter().map(|s| (*s).to_owned()).collect()
    }

    /// "Notify A; if not acknowledged within 10 min, repeat every 10 min;
    /// after 30 min also notify B; remind every 4 h once acknowledged."
    fn oncall() -> Policy {
        Policy {
            name: "oncall".into(),
            repeat_every: Some(10 * MIN),
            steps: vec![(30 * MIN, names(&["b"])), (45 * MIN, names(&["c"]))],
            remind_every: Some(240 * MIN),
        }
    }

    #[test]
    fn steps_follow_the_policy() {
        let p = oncall();
        let base = names(&["a"]);
        assert_eq!(p.next_escalation(0), Some(10 * MIN));
        let d = p.escalation_due(10 * MIN, 10 * MIN, &base);
        assert_eq!((d.at, d.channels, d.next), (10 * MIN, names(&["a"]), Some(20 * MIN)));
        // A repeat and a step at once: one send to both.
        let d = p.escalation_due(30 * MIN, 30 * MIN, &base);
        assert_eq!(
            (d.at, d.channels, d.next),
            (30 * MIN, names(&["a", "b"]), Some(40 * MIN))
        );
        // A step alone goes to its own channels.
        let d = p.escalation_due(45 * MIN, 45 * MIN, &base);
        assert_eq!((d.at, d.channels, d.next), (45 * MIN, names(&["c"]), Some(50 * MIN)));
        let d = p.escalation_due(50 * MIN, 50 * MIN, &base);
        assert_eq!(d.channels, names(&["a", "b", "c"]));
    }

    #[test]
    fn steps_missed_while_down_become_one_send_and_none_is_lost() {
        let p = oncall();
        let base = names(&["a"]);
        // Due at 10 min, back at 37 min: the repeats at 10, 20, 30 and the step
        // to b are one send at 30 min; the next is 40 min.
        let d = p.escalation_due(10 * MIN, 37 * MIN, &base);
        assert_eq!(
            (d.at, d.channels, d.next),
            (30 * MIN, names(&["a", "b"]), Some(40 * MIN))
        );
        // Without repeats, a missed step still goes out.
        let steps_only = Policy {
            repeat_every: None,
            ..oncall()
        };
        assert_eq!(steps_only.next_escalation(0), Some(30 * MIN));
        let d = steps_only.escalation_due(30 * MIN, 50 * MIN, &base);
        assert_eq!((d.at, d.channels, d.next), (45 * MIN, names(&["b", "c"]), None));
    }

    #[test]
    fn reminders_repeat_the_route() {
        let p = oncall();
        let base = names(&["a"]);
        assert_eq!(p.next_reminder(0), Some(240 * MIN));
        let d = p.reminder_due(240 * MIN, 500 * MIN, &base);
        assert_eq!((d.at, d.channels, d.next), (480 * MIN, names(&["a"]), Some(720 * MIN)));
        let none = Policy {
            remind_every: None,
            ..oncall()
        };
        assert_eq!(none.next_reminder(0), None);
    }
}
