//! `http_steps` targets and the `http` proxy/resolve options to and from
//! protobuf, beside [`crate::proto`]'s mapping of the other types.

use pantau_proto::v1::{self, extract::From as X};

use super::{Extract, HttpOptions, HttpStepsTarget, RawStep, RawTarget};
use crate::proto::{ConvertError, condition_at, condition_to_proto};

fn nonempty(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_owned())
}

/// `proxy`, `resolve` and `dns_server` as protobuf sends them, into `c`.
pub(crate) fn options_from_proto(
    c: &mut RawTarget,
    proxy: &str,
    resolve: &std::collections::HashMap<String, String>,
    dns_server: &str,
) {
    c.proxy = nonempty(proxy);
    c.resolve = resolve.clone().into_iter().collect();
    c.dns_server = nonempty(dns_server);
}

/// `proxy`, `resolve` and `dns_server` for protobuf.
pub(crate) fn options_to_proto(o: &HttpOptions) -> (String, std::collections::HashMap<String, String>, String) {
    (
        o.proxy.as_ref().map(ToString::to_string).unwrap_or_default(),
        o.resolve.iter().map(|(h, ip)| (h.clone(), ip.to_string())).collect(),
        o.dns_server.map(|a| a.to_string()).unwrap_or_default(),
    )
}

/// An `HttpStepsSpec` into `c`'s fields; a value protobuf can hold but the
/// target cannot (a status code above 65535, an empty extraction) is refused
/// naming the field.
pub(crate) fn from_proto(c: &mut RawTarget, x: &v1::HttpStepsSpec) -> Result<(), ConvertError> {
    c.headers = x.headers.clone().into_iter().collect();
    c.follow_redirects = x.follow_redirects;
    c.verify_tls = x.verify_tls;
    c.reuse_connection = x.reuse_connection;
    crate::proto::set_tls_files(c, x.tls.as_ref());
    options_from_proto(c, &x.proxy, &x.resolve, &x.dns_server);
    // Refuse a hostile count before converting every step.
    if x.steps.len() > super::MAX_STEPS {
        return Err(ConvertError {
            field: "spec.http_steps.steps".into(),
            reason: format!("{} steps: must have at most {}", x.steps.len(), super::MAX_STEPS),
        });
    }
    c.steps = x
        .steps
        .iter()
        .enumerate()
        .map(|(i, s)| step_from_proto(i, s))
        .collect::<Result<_, _>>()?;
    Ok(())
}

fn step_from_proto(i: usize, s: &v1::HttpStep) -> Result<RawStep, ConvertError> {
    let key = format!("spec.http_steps.steps[{i}]");
    let bad = |field: &str, reason: String| ConvertError {
        field: format!("{key}.{field}"),
        reason,
    };
    Ok(RawStep {
        name: nonempty(&s.name),
        method: nonempty(&s.method),
        url: nonempty(&s.url),
        headers: s.headers.clone().into_iter().collect(),
        body: nonempty(&s.body),
        expected_status: s
            .expected_status
            .iter()
            .map(|n| u16::try_from(*n).map_err(|_| bad("expected_status", format!("{n} is not a status code"))))
            .collect::<Result<_, _>>()?,
        conditions: s
            .conditions
            .iter()
            .enumerate()
            .map(|(j, c)| condition_at(&format!("{key}.conditions[{j}]"), c))
            .collect::<Result<_, _>>()?,
        extract: s
            .extract
            .iter()
            .map(|(name, e)| {
                let e = match &e.from {
                    Some(X::Json(p)) => Extract::Json(p.clone()),
                    Some(X::Header(h)) => Extract::Header(h.clone()),
                    Some(X::Regex(r)) => Extract::Regex(r.clone()),
                    None => {
                        return Err(bad(
                            &format!("extract.{}", crate::types::quote(name)),
                            "is empty: set one of json, header, regex".into(),
                        ));
                    }
                };
                Ok((name.clone(), e))
            })
            .collect::<Result<_, _>>()?,
    })
}

/// The protobuf form; secrets as they are (mask the configuration first).
pub(crate) fn to_proto(x: &HttpStepsTarget) -> v1::HttpStepsSpec {
    let (proxy, resolve, dns_server) = options_to_proto(&x.options);
    v1::HttpStepsSpec {
        steps: x
            .steps
            .iter()
            .map(|s| v1::HttpStep {
                name: s.name.clone().unwrap_or_default(),
                method: s.method.clone().unwrap_or_default(),
                url: s.url.clone(),
                headers: s.headers.clone().into_iter().collect(),
                body: s.body.clone().unwrap_or_default(),
                expected_status: s.expected_status.iter().map(|n| u32::from(*n)).collect(),
                conditions: s.conditions.iter().map(condition_to_proto).collect(),
                extract: s
                    .extract
                    .iter()
                    .map(|(n, e)| {
                        let from = match e {
                            Extract::Json(p) => X::Json(p.clone()),
                            Extract::Header(h) => X::Header(h.clone()),
                            Extract::Regex(r) => X::Regex(r.clone()),
                        };
                        (n.clone(), v1::Extract { from: Some(from) })
                    })
                    .collect(),
            })
            .collect(),
        headers: x.headers.clone().into_iter().collect(),
        follow_redirects: x.follow_redirects,
        verify_tls: x.verify_tls,
        reuse_connection: x.reuse_connection,
        tls: crate::proto::tls_files_to_proto(&x.tls),
        proxy,
        resolve,
        dns_server,
    }
}

#[cfg(test)]
mod tests {
    use pantau_proto::v1::{self, target::Spec};

    use crate::proto::{spec_to_proto, target_from_proto};
    use crate::{CheckType, RawStep, RawTarget};

    fn steps_target() -> RawTarget {
        let mut r = RawTarget::new("flow", CheckType::HttpSteps);
        let mut login = RawStep {
            name: Some("login".into()),
            method: Some("POST".into()),
            url: Some("http://127.0.0.1:1/login".into()),
            ..RawStep::default()
        };
        login
            .extract
            .insert("token".into(), crate::Extract::Json("$.token".into()));
        let mut me = RawStep {
            url: Some("http://127.0.0.1:1/me".into()),
            ..RawStep::default()
        };
        me.headers.insert("authorization".into(), "Bearer {{token}}".into());
        r.steps = vec![login, me];
        r.proxy = Some("socks5://127.0.0.1:1080".into());
        r
    }

    fn target(spec: Spec) -> v1::Target {
        v1::Target {
            id: "flow".into(),
            spec: Some(spec),
            ..Default::default()
        }
    }

    #[test]
    fn a_steps_target_travels_in_the_protobuf_and_back() {
        let parsed = steps_target().parse("t").unwrap();
        let spec = spec_to_proto(&parsed);
        let back = target_from_proto(&target(spec)).unwrap();
        assert_eq!(back, parsed);
        // An http target's proxy and resolve too.
        let mut h = RawTarget::new("h", CheckType::Http);
        h.url = Some("https://api.internal/".into());
        h.proxy = Some("http://127.0.0.1:3128".into());
        h.resolve.insert("api.internal".into(), "127.0.0.1".into());
        let parsed = h.parse("t").unwrap();
        let back = target_from_proto(&target(spec_to_proto(&parsed))).unwrap();
        assert_eq!(back.spec, parsed.spec);
    }

    #[test]
    fn hostile_protobuf_steps_are_refused_naming_the_field() {
        let Spec::HttpSteps(good) = spec_to_proto(&steps_target().parse("t").unwrap()) else {
            panic!()
        };
        let cases: Vec<(fn(&mut v1::HttpStepsSpec), &str)> = vec![
            (|s| s.steps.clear(), "target.steps"),
            (
                |s| s.steps = vec![s.steps[0].clone(); 1000],
                "target.spec.http_steps.steps",
            ),
            (
                |s| s.steps[0].expected_status = vec![70_000],
                "steps[0].expected_status",
            ),
            (
                |s| s.steps[1].expected_status = vec![99],
                "target.steps[1].expected_status",
            ),
            (
                |s| {
                    s.steps[0].extract.insert("x".into(), v1::Extract { from: None });
                },
                "target.spec.http_steps.steps[0].extract.x",
            ),
            (
                |s| {
                    s.steps[1].headers.insert("authorization".into(), "{{nope}}".into());
                },
                "target.steps[1].headers.authorization",
            ),
            (|s| s.steps[0].url = "x".repeat(100_000), "target.steps[0].url"),
            (
                |s| s.steps[0].conditions = vec![v1::Condition { condition: None }],
                "target.spec.http_steps.steps[0].conditions[0]",
            ),
            (|s| s.proxy = "smtp://x".into(), "target.proxy"),
        ];
        for (i, (edit, key)) in cases.into_iter().enumerate() {
            let mut s = good.clone();
            edit(&mut s);
            let e = target_from_proto(&target(Spec::HttpSteps(s))).unwrap_err().to_string();
            assert!(e.contains(key), "case {i}: `{}` lacks {key}", &e[..e.len().min(400)]);
        }
        // The kind must agree with the spec.
        let mut t = target(Spec::HttpSteps(good));
        t.kind = v1::CheckKind::Http.into();
        assert!(target_from_proto(&t).unwrap_err().to_string().contains("target.kind"));
    }
}
