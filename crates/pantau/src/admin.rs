//! `pantau user …` and `pantau token …`: administration on the gateway's
//! store and keys, from the machine that holds them (same configuration,
//! same data directory or database). Every change is audited as `cli:<user>`.

use std::io::BufRead;
use std::process::ExitCode;
use std::time::Duration;

use pantau_config::Config;
use pantau_gateway::auth::routes::check_new_user;
use pantau_gateway::auth::{Auth, NewAudit, Role, Scopes};

use crate::cli::{RoleArg, TokenCommand, UserCommand};

fn role(r: RoleArg) -> Role {
    match r {
        RoleArg::Viewer => Role::Viewer,
        RoleArg::Editor => Role::Editor,
        RoleArg::Admin => Role::Admin,
    }
}

fn actor() -> String {
    let who = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "local".into());
    format!("cli:{who}")
}

async fn open(config: &Config) -> Result<Auth, String> {
    pantau_gateway::open_auth(config).await.map_err(|e| e.to_string())
}

async fn audit(auth: &Auth, command: &str, detail: &str) {
    let actor = actor();
    let entry = NewAudit {
        actor: &actor,
        method: "CLI",
        path: command,
        action: command,
        status: 0,
        remote: "local",
        detail,
    };
    if let Err(e) = auth.store.audit(&entry).await {
        eprintln!("warning: the change was made but its audit entry could not be written: {e}");
    }
}

/// The password from standard input (first line), or a generated one.
fn password(from_stdin: bool) -> Result<(String, bool), String> {
    if from_stdin {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .map_err(|e| format!("cannot read the password from standard input: {e}"))?;
        return Ok((line.trim_end_matches(['\n', '\r']).to_owned(), false));
    }
    use rand::RngCore;
    let mut b = [0u8; 12];
    rand::rng().fill_bytes(&mut b);
    Ok((hex::encode(b), true))
}

pub async fn user(config: &Config, command: &UserCommand) -> ExitCode {
    match run_user(config, command).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

async fn run_user(config: &Config, command: &UserCommand) -> Result<(), String> {
    let auth = open(config).await?;
    match command {
        UserCommand::Add {
            username,
            role: r,
            password_stdin,
        } => {
            let (pw, generated) = password(*password_stdin)?;
            check_new_user(username, &pw)?;
            let u = auth
                .store
                .add_user(username, &pw, role(*r))
                .await
                .map_err(|e| e.to_string())?;
            audit(
                &auth,
                "pantau user add",
                &format!("added user {} as {}", u.username, u.role.as_str()),
            )
            .await;
            println!("added user {} ({})", u.username, u.role.as_str());
            if generated {
                println!("password: {pw}");
                println!("(shown once; log in with POST /api/v1/auth/login)");
            }
        }
        UserCommand::List => {
            let users = auth.store.users().await.map_err(|e| e.to_string())?;
            if users.is_empty() {
                println!("no users; add one with `pantau user add NAME --role admin`");
            }
            for u in users {
                println!(
                    "{}\t{}{}",
                    u.username,
                    u.role.as_str(),
                    if u.disabled { "\tdisabled" } else { "" }
                );
            }
        }
        UserCommand::Delete { username } => {
            auth.store.delete_user(username).await.map_err(|e| e.to_string())?;
            audit(&auth, "pantau user delete", &format!("deleted user {username}")).await;
            println!("deleted user {username}");
        }
    }
    auth.store.store().close().await;
    Ok(())
}

pub async fn token(config: &Config, command: &TokenCommand) -> ExitCode {
    match run_token(config, command).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

async fn run_token(config: &Config, command: &TokenCommand) -> Result<(), String> {
    let auth = open(config).await?;
    match command {
        TokenCommand::Create {
            scope,
            ttl,
            subject,
            api_key,
            name,
        } => {
            let scopes = Scopes::parse(&scope.join(" "))?;
            if scopes.list().is_empty() {
                return Err("give at least one --scope: monitoring:read, monitoring:write or admin".into());
            }
            let max = config.gateway.auth.max_token_ttl;
            let ttl = match ttl {
                Some(t) => {
                    let d = humantime::parse_duration(t).map_err(|e| format!("--ttl `{t}`: {e}"))?;
                    if d < Duration::from_secs(60) || d > max {
                        return Err(format!(
                            "--ttl `{t}` must be between 1m and {} (gateway.auth.max_token_ttl)",
                            humantime::format_duration(max)
                        ));
                    }
                    Some(d)
                }
                None => None,
            };
            if *api_key {
                let name = name.clone().unwrap_or_else(|| "cli".to_owned());
                let expires = ttl.map(|d| pantau_gateway::auth::store::now_ms() + d.as_millis() as i64);
                let (key, rec) = auth
                    .store
                    .create_key(&name, scopes, &actor(), expires)
                    .await
                    .map_err(|e| e.to_string())?;
                audit(
                    &auth,
                    "pantau token create --api-key",
                    &format!("created API key {} ({name}) with {scopes}", rec.id),
                )
                .await;
                eprintln!(
                    "API key {} ({name}) with {scopes}; shown once, revoke with `pantau token revoke {}`",
                    rec.id, rec.id
                );
                println!("{key}");
            } else {
                let subject = subject.clone().unwrap_or_else(actor);
                let ttl = ttl.unwrap_or(config.gateway.auth.login_ttl);
                let (token, claims) = auth.keys.mint(&subject, scopes, ttl).map_err(|e| e.to_string())?;
                audit(
                    &auth,
                    "pantau token create",
                    &format!(
                        "minted a token for {subject} with {scopes}, valid {}",
                        humantime::format_duration(ttl)
                    ),
                )
                .await;
                eprintln!(
                    "token for {subject} with {scopes}, expires at {} (Unix seconds)",
                    claims.exp
                );
                println!("{token}");
            }
        }
        TokenCommand::List => {
            for k in auth.store.keys().await.map_err(|e| e.to_string())? {
                let state = if k.revoked_at.is_some() { "revoked" } else { "active" };
                println!(
                    "{}\t{}\t{}\t{state}\tcreated by {}",
                    k.id, k.name, k.scopes, k.created_by
                );
            }
        }
        TokenCommand::Revoke { id } => {
            auth.store.revoke_key(id).await.map_err(|e| e.to_string())?;
            audit(&auth, "pantau token revoke", &format!("revoked API key {id}")).await;
            println!("revoked API key {id}");
        }
    }
    auth.store.store().close().await;
    Ok(())
}
