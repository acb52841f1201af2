//! The web console in a real browser: Debian's headless `chromium` driven
//! through `chromedriver` (started by pantau-testkit) against a real
//! `pantau all`. A screenshot of each page goes to
//! `$CARGO_TARGET_DIR/console-screenshots/`.

use std::net::SocketAddr;
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use pantau_testkit::{ChromeDriver, free_port};
use serde_json::json;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::support::{Pantau, Ports, config_yaml, http, wait_json};

pub(crate) const SOON: Duration = Duration::from_secs(30);

/// A TCP service the test stops and starts: the target `console-web`.
struct Service {
    addr: SocketAddr,
    task: Option<JoinHandle<()>>,
}

impl Service {
    async fn start(addr: SocketAddr) -> Self {
        let listener = TcpListener::bind(addr).await.expect("bind the test service");
        let task = tokio::spawn(async move {
            while let Ok((s, _)) = listener.accept().await {
                drop(s);
            }
        });
        Self { addr, task: Some(task) }
    }

    async fn stop(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
            let _ = t.await;
        }
    }
}

/// The test configuration: the example targets, `console-web`, a rule that
/// fires while it is down, and a public page holding `gateway-healthz` and
/// `console-web` (not `collector-grpc`).
fn config(ports: Ports, dir: &std::path::Path, web: SocketAddr) -> String {
    config_yaml(ports, dir, None)
        // The pages are under test, not the breaker: `console-web` is down for
        // the whole walk through the alert pages, and coming back up must not
        // wait out the default 60 s recovery (on a loaded machine the walk
        // ended inside it, and the row stayed `down` past the wait).
        .replace(
            "  interval: 1s\n",
            "  interval: 1s\n  circuit_breaker:\n    recovery_timeout: 2s\n",
        )
        .replace(
            "  targets:\n",
            &format!("  targets:\n    - id: console-web\n      name: Console web\n      type: tcp\n      address: {web}\n      labels:\n        team: web\n"),
        )
        .replace(
            "alert_engine:\n",
            "alert_engine:\n  rules:\n    - id: console-web-down\n      expr: check_up{target=\"console-web\"} == 0\n      severity: critical\n      message: \"{{ $labels.target }} is down\"\n",
        )
        .replace(
            "gateway:\n",
            "gateway:\n  status_pages:\n    - slug: public\n      title: Example status\n      groups:\n        - name: Services\n          targets: [gateway-healthz, console-web]\n",
        )
}

fn screenshots() -> std::path::PathBuf {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("../console-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

pub(crate) async fn shot(c: &Client, name: &str) {
    let png = c.screenshot().await.expect("screenshot");
    std::fs::write(screenshots().join(format!("{name}.png")), png).unwrap();
}

pub(crate) async fn browser(d: &ChromeDriver, width: u32) -> Client {
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(d.capabilities(width, 900))
        .connect(&d.url())
        .await
        .unwrap_or_else(|e| panic!("chromium does not start: {e}\n{}", d.log_tail()))
}

/// The text of the first element matching `css`, or `None`.
pub(crate) async fn text(c: &Client, css: &str) -> Option<String> {
    let v = c
        .execute(
            "const e = document.querySelector(arguments[0]); return e ? e.textContent.trim() : null;",
            vec![json!(css)],
        )
        .await
        .ok()?;
    v.as_str().map(str::to_owned)
}

/// Waits until the text of `css` satisfies `ok`.
pub(crate) async fn wait_text(c: &Client, css: &str, within: Duration, ok: impl Fn(&str) -> bool) -> String {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let t = text(c, css).await;
        if let Some(t) = &t
            && ok(t)
        {
            return t.clone();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "`{css}` never satisfied the test; last: {t:?}\npage: {}",
            c.source()
                .await
                .unwrap_or_default()
                .chars()
                .take(3000)
                .collect::<String>()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub(crate) async fn sign_in(c: &Client, base: &str, user: &str, password: &str) {
    c.goto(&format!("{base}/console")).await.unwrap();
    let url = c.current_url().await.unwrap();
    assert_eq!(
        url.path(),
        "/console/login",
        "a visitor without a session is sent to sign in"
    );
    c.find(Locator::Css("input[name=username]"))
        .await
        .unwrap()
        .send_keys(user)
        .await
        .unwrap();
    c.find(Locator::Css("input[name=password]"))
        .await
        .unwrap()
        .send_keys(password)
        .await
        .unwrap();
    c.find(Locator::Css("#login button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.wait()
        .at_most(SOON)
        .for_element(Locator::Css("#targets"))
        .await
        .expect("the overview after signing in");
}

pub(crate) async fn fill(c: &Client, css: &str, value: &str) {
    let e = c.find(Locator::Css(css)).await.unwrap_or_else(|e| panic!("{css}: {e}"));
    e.clear().await.unwrap();
    e.send_keys(value).await.unwrap();
}

/// The first admin's password, once `pantau all` has printed it.
pub(crate) async fn admin_password(p: &Pantau) -> String {
    let deadline = tokio::time::Instant::now() + SOON;
    loop {
        if let Some(pw) = first_admin_password(p) {
            return pw;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no first admin password in:\n{}",
            p.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The first admin's password, printed once on standard error.
fn first_admin_password(p: &Pantau) -> Option<String> {
    let log = p.log();
    let at = log.find("user is `admin` with password `")? + "user is `admin` with password `".len();
    Some(log[at..].split('`').next()?.to_owned())
}

#[tokio::test]
async fn the_console_and_status_pages_in_a_real_browser() {
    let driver = ChromeDriver::start()
        .await
        .expect("chromedriver (Debian: chromium-driver, chromium)");
    let dir = tempfile::tempdir().unwrap();
    let ports = Ports::free();
    let web: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let mut service = Service::start(web).await;
    let mut p = Pantau::start(dir.path(), &config(ports, dir.path(), web), &["all"]);
    let base = format!("http://127.0.0.1:{}", ports.gateway);
    let api = http();
    wait_json(
        &format!("{base}/api/v1/results/latest"),
        SOON,
        |v| {
            v["results"]
                .as_array()
                .is_some_and(|r| r.iter().any(|r| r["target_id"] == "console-web" && r["status"] == "up"))
        },
        &mut p,
    )
    .await;

    // The first admin was created with a password printed once; it signs in.
    let admin_password = admin_password(&p).await;
    for (name, role) in [("ed", "editor"), ("vi", "viewer")] {
        let r = api
            .post(format!("{base}/api/v1/users"))
            .json(&json!({"username": name, "password": format!("{name}-password-1"), "role": role}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    }

    let c = browser(&driver, 1280).await;
    sign_in(&c, &base, "admin", &admin_password).await;
    c.find(Locator::Css("#sign-out")).await.unwrap().click().await.unwrap();
    c.wait()
        .at_most(SOON)
        .for_element(Locator::Css("#login"))
        .await
        .expect("signed out");

    // An editor: the target goes DOWN live when its listener stops, without reload.
    sign_in(&c, &base, "ed", "ed-password-1").await;
    let row = "tr[data-target=console-web] [data-state]";
    wait_text(&c, row, SOON, |t| t == "up").await;
    shot(&c, "overview").await;
    // Search on the server: htmx swaps the table; the live rows follow the new page.
    fill(&c, "#filters input[name=q]", "console-w").await;
    wait_text(&c, "#table p", SOON, |t| t.starts_with("1 of 3 targets")).await;
    assert!(
        c.current_url()
            .await
            .unwrap()
            .query()
            .unwrap_or_default()
            .contains("q=console-w")
    );
    c.execute("window.__sameDocument = true;", vec![]).await.unwrap();
    service.stop().await;
    wait_text(&c, row, SOON, |t| t == "down").await;
    let same = c
        .execute("return window.__sameDocument === true;", vec![])
        .await
        .unwrap();
    assert_eq!(same, json!(true), "the row changed without a reload");
    shot(&c, "overview-down").await;

    // The rule fires; acknowledge and resolve it with comments, seen in the history.
    let alerts = format!("{base}/api/v1/monitoring/alerts?state=firing&resource=console-web");
    let v = wait_json(
        &alerts,
        SOON,
        |v| v["alerts"].as_array().is_some_and(|a| !a.is_empty()),
        &mut p,
    )
    .await;
    let id = v["alerts"][0]["id"].as_str().unwrap().to_owned();
    c.goto(&format!("{base}/console/alerts/{id}")).await.unwrap();
    fill(&c, "#ack-form input[name=comment]", "looking into it").await;
    c.find(Locator::Css("#ack-form button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_text(&c, "#alert-state", SOON, |t| t == "acknowledged").await;
    fill(&c, "#resolve-form input[name=comment]", "restarted the web service").await;
    c.find(Locator::Css("#resolve-form button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_text(&c, "#alert-state", SOON, |t| t == "resolved").await;
    let history = wait_text(&c, "#history", SOON, |t| t.contains("restarted the web service")).await;
    assert!(
        history.contains("looking into it") && history.contains("ed"),
        "{history}"
    );
    shot(&c, "alert").await;

    // A silence.
    c.goto(&format!("{base}/console/alerts")).await.unwrap();
    fill(&c, "#silence-form input[name=value]", "console-web").await;
    fill(&c, "#silence-form input[name=comment]", "maintenance").await;
    c.find(Locator::Css("#silence-form button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_text(&c, "#silences", SOON, |t| {
        t.contains("target=console-web") && t.contains("maintenance")
    })
    .await;
    shot(&c, "alerts").await;

    // A maintenance window, created and deleted on the same page.
    fill(&c, "#maintenance-form input[name=id]", "console-swap").await;
    fill(&c, "#maintenance-form input[name=targets]", "console-web, other").await;
    c.find(Locator::Css("#maintenance-form button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let listed = wait_text(&c, "#maintenance", SOON, |t| t.contains("console-swap")).await;
    assert!(
        listed.contains("target=console-web") && listed.contains("target=other") && listed.contains("now"),
        "{listed}"
    );
    let made = api
        .get(format!("{base}/api/v1/maintenance/console-swap"))
        .send()
        .await
        .unwrap();
    let made: serde_json::Value = made.json().await.unwrap();
    assert_eq!(
        (made["created_by"].as_str(), made["source"].as_str()),
        (Some("ed"), Some("api")),
        "{made}"
    );
    shot(&c, "alerts-maintenance").await;
    c.find(Locator::Css("tr[data-window=console-swap] button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_text(&c, "#maintenance", SOON, |t| !t.contains("console-swap")).await;

    // UP again, live.
    c.goto(&format!("{base}/console?q=console")).await.unwrap();
    let _up_again = Service::start(service.addr).await;
    wait_text(&c, row, SOON, |t| t == "up").await;
    c.goto(&format!("{base}/console/targets/console-web")).await.unwrap();
    wait_text(&c, "#target h1", SOON, |t| t.contains("Console web")).await;
    assert!(
        c.find(Locator::Css("#run-now")).await.is_ok(),
        "an editor may run a check"
    );
    shot(&c, "target").await;
    // Pause with a reason, then resume: the page says so after each.
    fill(&c, "#pause input[name=reason]", "switch swap").await;
    c.find(Locator::Css("#pause button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let note = wait_text(&c, "#paused", SOON, |t| t.contains("switch swap")).await;
    assert!(note.contains("Paused") && note.contains("ed"), "{note}");
    shot(&c, "target-paused").await;
    c.find(Locator::Css("#resume")).await.unwrap().click().await.unwrap();
    c.wait()
        .at_most(SOON)
        .for_element(Locator::Css("#pause"))
        .await
        .expect("the pause form again after resuming");
    assert!(c.find(Locator::Css("#paused")).await.is_err(), "no longer paused");
    c.goto(&format!("{base}/console/health")).await.unwrap();
    wait_text(&c, "#overall-health", SOON, |t| ["healthy", "degraded"].contains(&t)).await;
    shot(&c, "health").await;

    // A forged write: the session cookie without the CSRF token is refused.
    let cookie = c.get_named_cookie("pantau_session").await.expect("the session cookie");
    assert_eq!(cookie.http_only(), Some(true));
    let forged = reqwest::Client::new()
        .post(format!("{base}/api/v1/monitoring/silences"))
        .header("cookie", format!("pantau_session={}", cookie.value()))
        .json(&json!({"matchers": [{"label": "target", "value": "x"}], "ends_at": "2099-01-01T00:00:00Z"}))
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);
    let body: serde_json::Value = forged.json().await.unwrap();
    assert_eq!(body["error"]["reason"], "csrf", "{body}");
    c.find(Locator::Css("#sign-out")).await.unwrap().click().await.unwrap();
    c.wait()
        .at_most(SOON)
        .for_element(Locator::Css("#login"))
        .await
        .unwrap();

    // A viewer, on a phone-sized window, is offered no write.
    let phone = browser(&driver, 390).await;
    sign_in(&phone, &base, "vi", "vi-password-1").await;
    shot(&phone, "overview-phone-viewer").await;
    phone.goto(&format!("{base}/console/alerts/{id}")).await.unwrap();
    phone
        .wait()
        .at_most(SOON)
        .for_element(Locator::Css("#history"))
        .await
        .unwrap();
    phone.goto(&format!("{base}/console/alerts")).await.unwrap();
    phone
        .wait()
        .at_most(SOON)
        .for_element(Locator::Css("#silences"))
        .await
        .unwrap();
    assert!(
        phone.find(Locator::Css("#silence-form")).await.is_err(),
        "no silence form for a viewer"
    );
    assert!(
        phone
            .find(Locator::Css("button[data-api][data-method=DELETE]"))
            .await
            .is_err(),
        "no expire button"
    );
    phone
        .goto(&format!("{base}/console/targets/console-web"))
        .await
        .unwrap();
    phone
        .wait()
        .at_most(SOON)
        .for_element(Locator::Css("#target"))
        .await
        .unwrap();
    assert!(
        phone.find(Locator::Css("#run-now")).await.is_err(),
        "no run-now for a viewer"
    );
    assert!(
        phone.find(Locator::Css("#pause")).await.is_err(),
        "no pause for a viewer"
    );
    phone.close().await.unwrap();

    // The public page and a badge, without login: only their targets, no address.
    c.delete_all_cookies().await.unwrap();
    c.goto(&format!("{base}/status/public")).await.unwrap();
    let page = wait_text(&c, "main", SOON, |t| t.contains("Console web")).await;
    assert!(
        page.contains("Example status") && page.contains("gateway-healthz"),
        "{page}"
    );
    let source = c.source().await.unwrap();
    assert!(!source.contains("collector-grpc"), "a target not on the page leaks");
    assert!(
        !source.contains(&web.to_string()) && !source.contains("/healthz"),
        "an address leaks"
    );
    assert!(!source.contains("team"), "a label leaks");
    shot(&c, "status-page").await;
    c.goto(&format!("{base}/badge/gateway-healthz/status.svg"))
        .await
        .unwrap();
    shot(&c, "badge").await;
    let anon = reqwest::Client::new();
    let badge = anon
        .get(format!("{base}/badge/gateway-healthz/status.svg"))
        .send()
        .await
        .unwrap();
    assert_eq!(badge.status(), 200);
    assert!(badge.headers()["cache-control"].to_str().unwrap().contains("max-age"));
    assert!(badge.text().await.unwrap().contains(">up<"));
    let hidden = anon
        .get(format!("{base}/badge/collector-grpc/status.svg"))
        .send()
        .await
        .unwrap();
    assert_eq!(hidden.status(), 404, "no badge for a target on no public page");
    let json = anon
        .get(format!("{base}/api/v1/status-pages/public"))
        .send()
        .await
        .unwrap();
    assert_eq!(json.status(), 200);
    let v: serde_json::Value = json.json().await.unwrap();
    assert_eq!(v["groups"][0]["targets"].as_array().unwrap().len(), 2, "{v}");
    assert_eq!(v["groups"][0]["targets"][0]["days"].as_array().unwrap().len(), 90);
    c.close().await.unwrap();

    hostile_forms(&base).await;
    // Every console write was audited like the REST call it is.
    let audit: serde_json::Value = api
        .get(format!("{base}/api/v1/audit?actor=ed"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let actions: Vec<&str> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    for want in [
        "acknowledge",
        "resolve",
        "silences",
        "/console/login",
        "pause",
        "resume",
    ] {
        assert!(
            actions.iter().any(|a| a.contains(want)),
            "no audit of {want}: {actions:?}"
        );
    }
    p.assert_running();
}

/// Hostile input to the console's forms and filters: a clear refusal naming
/// the field, quoting little, never a panic or a silent default.
async fn hostile_forms(base: &str) {
    let anon = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let login = format!("{base}/console/login");
    let huge = "u".repeat(300_000);
    for (body, status, says) in [
        ("username=ed".to_owned(), 400, "password"),
        ("garbage\u{0}%%%".to_owned(), 400, "not valid"),
        (format!("username={huge}&password=x"), 400, "username must be"),
        ("username=ed&password=x&role=admin".to_owned(), 400, "role"),
        (
            "username=nobody&password=wrong".to_owned(),
            401,
            "wrong username or password",
        ),
    ] {
        let r = anon
            .post(&login)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), status, "{}", &body[..body.len().min(60)]);
        let text = r.text().await.unwrap();
        assert!(text.contains(says), "{says}: {}", &text[..text.len().min(2000)]);
        assert!(text.len() < 20_000, "the page quotes little");
    }
    let cross = anon
        .post(&login)
        .header("origin", "http://evil.example")
        .header("content-type", "application/x-www-form-urlencoded")
        .body("username=ed&password=ed-password-1")
        .send()
        .await
        .unwrap();
    assert_eq!(cross.status(), 403, "a cross-site sign-in");
    assert!(cross.headers().get("set-cookie").is_none());
    let json_login = anon.post(&login).json(&json!({"username": "ed"})).send().await.unwrap();
    assert_eq!(json_login.status(), 400, "a form, not JSON");

    // Signed in over HTTP as the editor: hostile filters are refused naming the field.
    let ok = anon
        .post(&login)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("username=ed&password=ed-password-1&next=https://evil.example/")
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 303);
    assert_eq!(ok.headers()["location"], "/console", "never to another site");
    let set = ok.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(set.contains("HttpOnly") && set.contains("SameSite=Strict"), "{set}");
    let cookie = set.split(';').next().unwrap().to_owned();
    for (path, says) in [
        ("/console?state=sideways", "state `sideways`"),
        ("/console?type=gopher", "type `gopher`"),
        ("/console?page=0", "page `0`"),
        ("/console?page=%00%01", "page `"),
        ("/console?colour=red", "colour"),
        (&format!("/console?q={}", "q".repeat(5000)), "q `"),
        ("/console/alerts?state=exploded", "state `exploded`"),
        ("/console/alerts?severity=%3Cscript%3E", "severity `&lt;script&gt;`"),
        ("/console/targets/no%20such", "target id `no such`"),
        ("/status/Not-A-Page", "no status page"),
    ] {
        let r = anon
            .get(format!("{base}{path}"))
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap();
        let status = r.status();
        let text = r.text().await.unwrap();
        assert!(status == 400 || status == 404, "{path}: {status}");
        assert!(text.contains(says), "{path}: {}", &text[..text.len().min(2000)]);
        assert!(!text.contains("<script>"), "{path}: escaped");
    }
}
