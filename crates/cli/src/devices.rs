//! Pairing and the devices of the gestalt: `invite` and `join` with the
//! digits compared on both devices before anything is recorded, and
//! `nodes revoke`/`keep`/`confirm`.

use std::io::{BufRead, IsTerminal, Write};

use clap::Subcommand;

use crate::output::{io_failure, text, Failure, Output, EX_DATAERR};
use crate::session::running_agent;
use crate::{Cli, Format};

/// Commands on this gestalt's devices that change trust.
#[derive(Subcommand)]
pub(crate) enum TrustCommand {
    /// Remove a device from all your devices for good: it is refused from
    /// now on (it keeps what it already has); only a new pairing brings it
    /// back.
    Revoke {
        node_id: String,
        /// Do not ask for confirmation.
        #[arg(long)]
        yes: bool,
        /// Keep out the devices it removed (its removals end with it: a
        /// retired laptop's removal of a stolen tablet).
        #[arg(long, conflicts_with = "let_its_removals_go")]
        keep_its_removals: bool,
        /// Let back the devices it removed (a stolen device's removal of
        /// your phone). Without either, you are asked about each.
        #[arg(long)]
        let_its_removals_go: bool,
    },
    /// Keep a device another of your devices added (its notice goes away).
    Keep { node_id: String },
    /// Devices other devices added, not yet kept or removed here.
    Notices,
    /// Devices that removed each other: this device trusts none of them
    /// until you remove here (`nodes revoke`) each one you do not have.
    Disputes,
    /// Confirm (or reject) the digits of the device joining this one's
    /// invitation, for `invite --no-wait`.
    Confirm {
        /// The digits the joining device shows: refuse unless they match.
        #[arg(long)]
        digits: Option<String>,
        /// The digits differ: end the pairing.
        #[arg(long)]
        reject: bool,
    },
}

/// Ask a yes/no question on the terminal (or read the answer from piped
/// stdin); anything but y/yes is no.
fn ask(question: &str) -> Result<bool, Failure> {
    let mut err = std::io::stderr();
    let _ = write!(err, "{question} [y/N] ");
    let _ = err.flush();
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .map_err(|e| io_failure("read the answer", e))?;
    Ok(matches!(answer.trim().to_lowercase().as_str(), "y" | "yes"))
}

fn cancelled(message: &str) -> Failure {
    Failure {
        code: EX_DATAERR,
        kind: "pairing_failed".into(),
        message: message.into(),
    }
}

/// The pairing code from standard input: its first line, asked for (not
/// shown) at a terminal. An argument is seen by every user of the machine
/// (`ps`) while `join` waits, and the code lets whoever uses it first in.
fn read_code() -> Result<zeroize::Zeroizing<String>, Failure> {
    if std::io::stdin().is_terminal() {
        return rpassword::prompt_password("The other device's pairing code or its four words: ")
            .map(zeroize::Zeroizing::new)
            .map_err(|e| io_failure("read the pairing code", e));
    }
    let mut line = zeroize::Zeroizing::new(String::new());
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| io_failure("read the pairing code", e))?;
    Ok(line)
}

/// `polykey join [CODE]`: the key agreement, the digits, the person's
/// answer (or `--yes`), then the pairing completes once the other device's
/// person confirmed too.
pub(crate) async fn join(cli: &Cli, code: Option<&str>, yes: bool) -> Result<Output, Failure> {
    let code = match code {
        Some(code) if code != "-" => zeroize::Zeroizing::new(code.to_owned()),
        _ => read_code()?,
    };
    let mut agent = running_agent(cli)?;
    let joined = agent.call("pairing.join", serde_json::json!({ "code": code.trim() }))?;
    let fingerprint = joined["fingerprint"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let device = joined["device"].as_str().unwrap_or_default().to_owned();
    let accept = yes
        || ask(&format!(
            "Both devices show these digits: {fingerprint}\nDo they match?"
        ))?;
    agent.call(
        "pairing.confirmJoin",
        serde_json::json!({ "accept": accept }),
    )?;
    if !accept {
        // A "no", or no answer (standard input ended after a piped code).
        return Err(cancelled(
            "pairing cancelled: the digits were not confirmed (answer y once they match, \
             or give --yes)",
        ));
    }
    Ok(text(
        format!("Joined {device} (digits {fingerprint})"),
        joined,
    ))
}

/// `polykey invite`: show the code, wait for a device, have the person
/// compare the digits, wait for the pairing to complete.
pub(crate) async fn invite(cli: &Cli, no_wait: bool, yes: bool) -> Result<Output, Failure> {
    let mut agent = running_agent(cli)?;
    let invitation = agent.call("pairing.invite", serde_json::json!({}))?;
    let code = invitation["code"].as_str().unwrap_or_default().to_owned();
    let words = invitation["words"].as_str().unwrap_or_default().to_owned();
    if no_wait || cli.format == Format::Json {
        return Ok(text(format!("{code}\n{words}"), invitation));
    }
    let qr = qrcode::QrCode::new(code.as_bytes())
        .map(|qr| {
            qr.render::<qrcode::render::unicode::Dense1x2>()
                .quiet_zone(true)
                .build()
        })
        .unwrap_or_default();
    let mut out = std::io::stdout();
    let _ = writeln!(
        out,
        "{qr}\nOn the new device choose \"Join my other device\" and paste:\n{code}\nor type: {words}\nWaiting for the device (10 minutes)…"
    );
    let mut asked = false;
    loop {
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        let state = agent.call("pairing.state", serde_json::json!({}))?;
        match state["state"].as_str() {
            Some("paired") => {
                let fingerprint = state["fingerprint"].as_str().unwrap_or_default().to_owned();
                return Ok(text(
                    format!("A device joined (digits {fingerprint})."),
                    state,
                ));
            }
            Some("confirming") if !asked => {
                asked = true;
                let fingerprint = state["fingerprint"].as_str().unwrap_or_default();
                let accept = yes
                    || (std::io::stdin().is_terminal()
                        && ask(&format!(
                            "A device wants to join. Both devices show these digits: {fingerprint}\nDo they match?"
                        ))?);
                agent.call(
                    "pairing.confirm",
                    serde_json::json!({ "accept": accept, "fingerprint": fingerprint }),
                )?;
            }
            Some("waiting" | "confirming") => continue,
            _ => {
                return Err(cancelled(
                    state["message"].as_str().unwrap_or("the invitation ended"),
                ))
            }
        }
    }
}

/// `polykey nodes revoke|keep|notices|disputes|confirm`.
pub(crate) async fn trust(cli: &Cli, command: &TrustCommand) -> Result<Output, Failure> {
    let mut agent = running_agent(cli)?;
    match command {
        TrustCommand::Revoke {
            node_id,
            yes,
            keep_its_removals,
            let_its_removals_go,
        } => {
            let sure = *yes
                || ask(&format!(
                    "Remove {node_id} from all your devices? It keeps what it already has, \
                     is refused from now on, and only a new pairing brings it back."
                ))?;
            if !sure {
                return Err(cancelled("nothing removed"));
            }
            // A removed device's removals count for nothing: what it removed
            // comes back unless removed here too. Nothing tells a retired
            // laptop's removal of a stolen tablet (keep it out) from a
            // thief's removal of your phone (let it back): the person says.
            let ids = |list: &serde_json::Value| -> Vec<String> {
                list.as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|d| d["device"].as_str().map(str::to_owned))
                    .collect()
            };
            // Asked about each device that would come back, and again when
            // keeping one out lets back others it had removed. Those kept
            // out are removed at once, while it still keeps them out.
            let mut asked: Vec<String> = Vec::new();
            let mut keep: Vec<String> = Vec::new();
            let going = loop {
                let effect = agent.call(
                    "nodes.removalEffect",
                    serde_json::json!({ "nodeId": node_id }),
                )?;
                let back: Vec<String> = ids(&effect["back"])
                    .into_iter()
                    .filter(|d| !asked.contains(d))
                    .collect();
                if back.is_empty() {
                    break ids(&effect["going"]);
                }
                let told = *keep_its_removals || *let_its_removals_go;
                if !told && (*yes || !std::io::stdin().is_terminal()) {
                    return Err(crate::output::usage(format!(
                        "removing {node_id} lets back the devices it removed ({}): say \
                         --keep-its-removals or --let-its-removals-go",
                        back.join(", ")
                    )));
                }
                for device in back {
                    let keep_out = *keep_its_removals
                        || (!*let_its_removals_go
                            && ask(&format!(
                                "{node_id} had removed {device}, which comes back with its \
                                 removal. Keep {device} out?"
                            ))?);
                    if keep_out {
                        agent.call("nodes.revoke", serde_json::json!({ "nodeId": device }))?;
                        keep.push(device.clone());
                    }
                    asked.push(device);
                }
            };
            agent.call("nodes.revoke", serde_json::json!({ "nodeId": node_id }))?;
            let mut human = format!("Removed {node_id} from your devices");
            if !keep.is_empty() {
                human.push_str(&format!(", and kept {} out", keep.join(", ")));
            }
            if !going.is_empty() {
                human.push_str(&format!(
                    "\n{} went with it (joined to your devices only through it): pair them \
                     again with another device",
                    going.join(", ")
                ));
            }
            Ok(text(
                human,
                serde_json::json!({ "keptRemoved": keep, "wentWithIt": going }),
            ))
        }
        TrustCommand::Keep { node_id } => {
            agent.call("nodes.keep", serde_json::json!({ "nodeId": node_id }))?;
            Ok(text(format!("Kept {node_id}"), serde_json::json!({})))
        }
        TrustCommand::Notices => {
            let notices = agent.call("nodes.notices", serde_json::json!({}))?;
            let human = notices
                .as_array()
                .into_iter()
                .flatten()
                .map(|n| {
                    format!(
                        "{} added {}",
                        n["addedBy"].as_str().unwrap_or_default(),
                        n["device"].as_str().unwrap_or_default()
                    )
                })
                .collect::<Vec<_>>()
                .join("\n");
            Ok(text(human, notices))
        }
        TrustCommand::Disputes => {
            let disputes = agent.call("nodes.disputes", serde_json::json!({}))?;
            let removed_by = |d: &serde_json::Value| -> Vec<String> {
                d["removedBy"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|n| n.as_str().map(str::to_owned))
                    .collect()
            };
            let all = disputes.as_array().cloned().unwrap_or_default();
            let lines: Vec<String> = all
                .iter()
                .map(|d| {
                    let by = removed_by(d);
                    let device = d["device"].as_str().unwrap_or_default();
                    // One nobody removed hangs on a device it removed.
                    let how = if by.is_empty() {
                        let removed: Vec<&str> = all
                            .iter()
                            .filter(|o| removed_by(o).iter().any(|b| b == device))
                            .filter_map(|o| o["device"].as_str())
                            .collect();
                        format!("which removed {}", removed.join(", "))
                    } else {
                        format!("removed by {}", by.join(", "))
                    };
                    // A name is another device's text: on one line.
                    let name = d["name"]
                        .as_str()
                        .map(|n| format!(" ({})", crate::output::one_line(n)))
                        .unwrap_or_default();
                    format!("{device}{name} {how}")
                })
                .collect();
            let human = if lines.is_empty() {
                String::new()
            } else {
                format!(
                    "{}\nThis device trusts none of these until you remove each one you do \
                     not have: `polykey nodes revoke <NodeId>`.",
                    lines.join("\n")
                )
            };
            Ok(text(human, disputes))
        }
        TrustCommand::Confirm { digits, reject } => {
            let state = agent.call("pairing.state", serde_json::json!({}))?;
            if state["state"].as_str() != Some("confirming") {
                return Err(cancelled(
                    "no device is waiting for its digits to be confirmed",
                ));
            }
            let shown = state["fingerprint"].as_str().unwrap_or_default().to_owned();
            let matches = digits.as_ref().is_none_or(|d| d.trim() == shown);
            let accept = !reject && matches;
            agent.call(
                "pairing.confirm",
                serde_json::json!({ "accept": accept, "fingerprint": shown }),
            )?;
            if accept {
                Ok(text(format!("Confirmed {shown}"), state))
            } else {
                Err(cancelled("pairing cancelled: the digits did not match"))
            }
        }
    }
}
