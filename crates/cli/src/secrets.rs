//! `polykey secrets`: secrets addressed as `vault:path` — read, written,
//! listed, edited, and handed to a command as environment variables.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::PathBuf;

use clap::{Subcommand, ValueEnum};
use polykey_node::NodeError;
use zeroize::Zeroizing;

use crate::backend::{Backend, BackendError};
use crate::edit;
use crate::output::{io_failure, text, usage, Failure, Output, EX_DATAERR, EX_SOFTWARE};
use crate::session::backend;
use crate::Cli;

#[derive(Subcommand)]
pub(crate) enum Secrets {
    /// List the secrets of a vault (or of a directory in it).
    Ls { target: String },
    /// Print secrets' contents, as stored (no newline added).
    Cat {
        #[arg(required = true)]
        targets: Vec<String>,
    },
    /// Write standard input to a secret (created or replaced).
    Write { target: String },
    /// Create a secret from a file; fails if it exists.
    Create { file: PathBuf, target: String },
    /// Remove a secret (a directory with --recursive).
    Rm {
        target: String,
        #[arg(short, long)]
        recursive: bool,
    },
    /// Make a directory.
    Mkdir { target: String },
    /// Rename (or move) a secret within its vault.
    Rename { target: String, new_path: String },
    /// What is at a path.
    Stat { target: String },
    /// Add every file under a local directory to a vault directory.
    Dir { directory: PathBuf, target: String },
    /// Edit a secret in $VISUAL or $EDITOR (a private temporary file in
    /// memory, removed afterwards and on SIGHUP/SIGTERM/SIGINT).
    Edit {
        target: String,
        /// Use the disk temporary directory when no memory-backed one
        /// ($XDG_RUNTIME_DIR on tmpfs, /dev/shm) exists: the secret may then
        /// survive on disk after its removal.
        #[arg(long)]
        allow_disk_tempfile: bool,
    },
    /// Secrets as environment variables: run a command with them, or print
    /// them.
    Env {
        /// `vault:path` (a secret or a directory of secrets).
        #[arg(required = true)]
        targets: Vec<String>,
        /// A name that is not a valid variable name.
        #[arg(long, value_enum, default_value_t = Invalid::Error)]
        env_invalid: Invalid,
        /// Two secrets with the same name.
        #[arg(long, value_enum, default_value_t = Duplicate::Overwrite)]
        env_duplicate: Duplicate,
        /// How to print them when no command is given.
        #[arg(long, value_enum, default_value_t = EnvFormat::Unix)]
        env_format: EnvFormat,
        /// The command to run, after `--`.
        #[arg(last = true)]
        command: Vec<String>,
    },
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Invalid {
    Error,
    Warn,
    Ignore,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Duplicate {
    Keep,
    Overwrite,
    Warn,
    Error,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum EnvFormat {
    Unix,
    Dotenv,
    Json,
}

/// Bytes of file contents `secrets dir` sends in one request (and so one
/// commit): base64 makes 12 MiB 16 MiB, within the agent's 24 MiB line.
const DIR_BATCH_BYTES: usize = 12 * 1024 * 1024;

/// `polykey secrets …`, on the running agent or the node directory.
pub(crate) async fn run(
    cli: &Cli,
    command: &Secrets,
    warnings: &mut Vec<String>,
) -> Result<Output, Failure> {
    let mut node = backend(cli).await?;
    match command {
        Secrets::Ls { target } => {
            let (vault, path) = match target.split_once(':') {
                Some(_) => address(target)?,
                None => (target.clone(), String::new()),
            };
            let dir = (!path.is_empty()).then_some(path);
            let list = node.list_secrets(vault, dir).await?;
            Ok(text(list.join("\n"), serde_json::json!(list)))
        }
        Secrets::Cat { targets } => {
            let mut all = Zeroizing::new(Vec::new());
            let mut json = Vec::new();
            for target in targets {
                let (vault, path) = address(target)?;
                let bytes = node.get_secret(vault, path.clone()).await?;
                all.extend_from_slice(&bytes);
                json.push(serde_json::json!({
                    "path": target,
                    "value": String::from_utf8_lossy(&bytes),
                }));
            }
            Ok(Output::Bytes(all, serde_json::Value::Array(json)))
        }
        Secrets::Write { target } => {
            let (vault, path) = address(target)?;
            let mut value = Zeroizing::new(Vec::new());
            std::io::stdin()
                .read_to_end(&mut value)
                .map_err(|e| io_failure("read standard input", e))?;
            let version = node.write_secret(vault, path, value).await?;
            Ok(text(
                format!("Wrote {target}"),
                serde_json::json!({ "version": version }),
            ))
        }
        Secrets::Create { file, target } => {
            let (vault, path) = address(target)?;
            let value =
                Zeroizing::new(std::fs::read(file).map_err(|e| io_failure("read the file", e))?);
            let version = node.create_secret(vault, path, value).await?;
            Ok(text(
                format!("Created {target}"),
                serde_json::json!({ "version": version }),
            ))
        }
        Secrets::Rm { target, recursive } => {
            let (vault, path) = address(target)?;
            let version = node.remove_secret(vault, path, *recursive).await?;
            Ok(text(
                format!("Removed {target}"),
                serde_json::json!({ "version": version }),
            ))
        }
        Secrets::Mkdir { target } => {
            let (vault, path) = address(target)?;
            let version = node.make_directory(vault, path).await?;
            Ok(text(
                format!("Made {target}"),
                serde_json::json!({ "version": version }),
            ))
        }
        Secrets::Rename { target, new_path } => {
            let (vault, path) = address(target)?;
            let version = node.rename_secret(vault, path, new_path.clone()).await?;
            Ok(text(
                format!("Renamed {target} to {new_path}"),
                serde_json::json!({ "version": version }),
            ))
        }
        Secrets::Stat { target } => {
            let (vault, path) = address(target)?;
            let stat = node.stat_secret(vault, path).await?;
            let kind = match stat.kind {
                polykey_node::EntryKind::Secret => "secret",
                polykey_node::EntryKind::Directory => "directory",
            };
            Ok(text(
                format!("{}\t{kind}\t{}", stat.path, stat.size),
                serde_json::json!({ "path": stat.path, "kind": kind, "size": stat.size }),
            ))
        }
        Secrets::Dir { directory, target } => {
            let (vault, base) = address(target)?;
            let mut stack = vec![directory.clone()];
            let mut files = Vec::new();
            while let Some(dir) = stack.pop() {
                let entries =
                    std::fs::read_dir(&dir).map_err(|e| io_failure("read the directory", e))?;
                for entry in entries {
                    let entry = entry.map_err(|e| io_failure("read the directory", e))?;
                    let local = entry.path();
                    let kind = entry
                        .file_type()
                        .map_err(|e| io_failure("read the directory", e))?;
                    if kind.is_dir() {
                        stack.push(local);
                        continue;
                    }
                    if !kind.is_file() {
                        continue;
                    }
                    let relative = local
                        .strip_prefix(directory)
                        .map_err(|_| usage("a file outside the directory"))?
                        .to_string_lossy()
                        .replace('\\', "/");
                    let path = if base.trim_matches('/').is_empty() {
                        relative
                    } else {
                        format!("{}/{relative}", base.trim_matches('/'))
                    };
                    files.push((path, local));
                }
            }
            files.sort();
            // One commit for the folder, or one per DIR_BATCH_BYTES of
            // contents (what one request to the agent carries).
            let mut batch = Vec::new();
            let mut batch_bytes = 0usize;
            let mut added = Vec::with_capacity(files.len());
            let mut files = files.into_iter().peekable();
            while let Some((path, local)) = files.next() {
                let value = Zeroizing::new(
                    std::fs::read(&local).map_err(|e| io_failure("read a file", e))?,
                );
                // Contents grow by a third in base64; each entry adds its
                // path and some JSON.
                batch_bytes += value.len() + path.len() + 64;
                added.push(path.clone());
                batch.push((path, value));
                if files.peek().is_none() || batch_bytes >= DIR_BATCH_BYTES {
                    node.write_secrets(vault.clone(), std::mem::take(&mut batch))
                        .await?;
                    batch_bytes = 0;
                }
            }
            Ok(text(
                format!("Added {} secret(s) to {vault}", added.len()),
                serde_json::json!({ "added": added }),
            ))
        }
        Secrets::Edit {
            target,
            allow_disk_tempfile,
        } => {
            let (vault, path) = address(target)?;
            let current = match node.get_secret(vault.clone(), path.clone()).await {
                Ok(value) => value,
                Err(BackendError::Node(NodeError::Vault(polykey_node::VaultError::NotFound(
                    _,
                )))) => Zeroizing::new(Vec::new()),
                Err(BackendError::Agent(kind, _)) if kind == "secret_not_found" => {
                    Zeroizing::new(Vec::new())
                }
                Err(e) => return Err(e.into()),
            };
            let edited = edit::edit_in_editor(&current, &path, *allow_disk_tempfile).await?;
            if *edited == *current {
                return Ok(text("No change", serde_json::json!({ "changed": false })));
            }
            let version = node.write_secret(vault, path, edited).await?;
            Ok(text(
                format!("Saved {target}"),
                serde_json::json!({ "changed": true, "version": version }),
            ))
        }
        Secrets::Env {
            targets,
            env_invalid,
            env_duplicate,
            env_format,
            command,
        } => {
            env(
                &mut node,
                targets,
                *env_invalid,
                *env_duplicate,
                *env_format,
                command,
                warnings,
            )
            .await
        }
    }
}

/// `vault:path` (the path may be empty for the whole vault).
fn address(target: &str) -> Result<(String, String), Failure> {
    match target.split_once(':') {
        Some((vault, path)) if !vault.is_empty() => Ok((vault.to_owned(), path.to_owned())),
        _ => Err(usage(format!("expected vault:path, got {target:?}"))),
    }
}

/// Variables that change how programs run, not what they are given: a
/// library loaded into each, a shell's start-up file, the program an
/// editor, pager, compiler, git or ssh runs, where packages come from,
/// which proxy carries the traffic. One of these found in a folder of
/// secrets (another person with write access to a shared vault could have
/// put it there) is skipped, with a warning, unless its secret is named
/// itself. Compared without regard to case (Windows reads `Path` as
/// `PATH`). A list of the well known, not of every such variable.
fn changes_programs(name: &str) -> bool {
    const PREFIXES: &[&str] = &[
        "LD_",
        "DYLD_",
        "BASH_FUNC_",
        "GIT_",
        "NPM_CONFIG_",
        "PIP_",
        "DOTNET_",
        "DOCKER_",
        // Cargo's runners, linkers and wrappers (`CARGO_TARGET_*_RUNNER`),
        // rustup's toolchains, cgo's flags, Yarn's own path.
        "CARGO_",
        "RUSTC",
        "RUSTDOC",
        "RUSTUP_",
        "CGO_",
        "YARN_",
    ];
    // What a prefix names but only authenticates: the tokens and
    // passwords CI keeps under those prefixes (`CARGO_REGISTRY_TOKEN`,
    // `YARN_NPM_AUTH_TOKEN`, `DOCKER_PASSWORD`).
    const CREDENTIALS: &[&str] = &["_TOKEN", "_PASSWORD", "_USERNAME"];
    const NAMES: &[&str] = &[
        "PATH",
        "PATHEXT",
        "COMSPEC",
        "PSMODULEPATH",
        "IFS",
        "ENV",
        "BASH_ENV",
        "PS0",
        "PS1",
        "PS4",
        "PROMPT_COMMAND",
        "VIMINIT",
        "GVIMINIT",
        "EXINIT",
        "SHELLOPTS",
        "BASHOPTS",
        "CDPATH",
        "ZDOTDIR",
        "SHELL",
        "HOME",
        "XDG_CONFIG_HOME",
        "EDITOR",
        "VISUAL",
        "PAGER",
        "MANPAGER",
        "BROWSER",
        "LESSOPEN",
        "LESSCLOSE",
        "GCONV_PATH",
        "HOSTALIASES",
        "SUDO_ASKPASS",
        "SSH_ASKPASS",
        "SSH_AUTH_SOCK",
        "RUBYOPT",
        "RUBYLIB",
        "PERL5OPT",
        "PERL5LIB",
        "PERLLIB",
        "PYTHONPATH",
        "PYTHONSTARTUP",
        "PYTHONHOME",
        "NODE_OPTIONS",
        "NODE_PATH",
        "NODE_TLS_REJECT_UNAUTHORIZED",
        "JAVA_TOOL_OPTIONS",
        "_JAVA_OPTIONS",
        "JDK_JAVA_OPTIONS",
        "CLASSPATH",
        "GOFLAGS",
        // Where Go fetches modules and toolchains from, and checks them.
        "GOPROXY",
        "GOSUMDB",
        "GONOSUMDB",
        "GONOSUMCHECK",
        "GONOPROXY",
        "GOPRIVATE",
        "GOINSECURE",
        "GOTOOLCHAIN",
        "GOENV",
        "GOROOT",
        "GOPATH",
        "GOBIN",
        // make's programs and flags (its built-in rules run them).
        "MAKEFLAGS",
        "MFLAGS",
        "MAKEFILES",
        "MAKE",
        "CC",
        "CXX",
        "CPP",
        "AR",
        "AS",
        "LD",
        "FC",
        "RM",
        "M4",
        "LEX",
        "YACC",
        "CFLAGS",
        "CXXFLAGS",
        "CPPFLAGS",
        "LDFLAGS",
        "LDLIBS",
        "RUSTFLAGS",
        "LUA_INIT",
        "PHPRC",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "FTP_PROXY",
        // Which certificates TLS trusts, where it writes its keys.
        "SSLKEYLOGFILE",
        "SSL_CERT_FILE",
        "SSL_CERT_DIR",
        "REQUESTS_CA_BUNDLE",
        "CURL_CA_BUNDLE",
        "NODE_EXTRA_CA_CERTS",
        // Configuration files that name programs to run for credentials
        // or plug-ins.
        "KUBECONFIG",
        "AWS_CONFIG_FILE",
        "AWS_SHARED_CREDENTIALS_FILE",
        "BOTO_CONFIG",
        "TF_CLI_CONFIG_FILE",
        "TERRAFORM_CLI_CONFIG_FILE",
        "GNUPGHOME",
        "NETRC",
        "CURL_HOME",
        "WGETRC",
        // More of the C library, Python, Ruby and the JVM's.
        "GLIBC_TUNABLES",
        "LOCPATH",
        "NLSPATH",
        "PYTHONBREAKPOINT",
        "PYTHONUSERBASE",
        "PYTHONINSPECT",
        "PYTHONEXECUTABLE",
        "PYTHONPLATLIBDIR",
        "PYTHONWARNINGS",
        "OPENSSL_CONF",
        "OPENSSL_ENGINES",
        "OPENSSL_MODULES",
        "GEM_HOME",
        "GEM_PATH",
        "BUNDLE_GEMFILE",
        "MAVEN_OPTS",
        "GRADLE_OPTS",
        "SBT_OPTS",
        "ANT_OPTS",
    ];
    let name = name.to_ascii_uppercase();
    NAMES.contains(&name.as_str())
        || (PREFIXES.iter().any(|p| name.starts_with(p))
            && !CREDENTIALS.iter().any(|c| name.ends_with(c)))
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c == '_' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
}

fn shell_quote(value: &str) -> String {
    format!("'{}'", value.replace('\'', r"'\''"))
}

async fn env(
    node: &mut Backend,
    targets: &[String],
    invalid: Invalid,
    duplicate: Duplicate,
    format: EnvFormat,
    command: &[String],
    warnings: &mut Vec<String>,
) -> Result<Output, Failure> {
    let mut vars: BTreeMap<String, Zeroizing<String>> = BTreeMap::new();
    let mut order: Vec<String> = Vec::new();
    // Secrets named themselves: set whatever they are called.
    let named: std::collections::HashSet<(String, String)> =
        targets.iter().filter_map(|t| address(t).ok()).collect();
    for target in targets {
        let (vault, path) = address(target)?;
        let is_dir = path.is_empty()
            || node
                .stat_secret(vault.clone(), path.clone())
                .await
                .map(|s| s.kind == polykey_node::EntryKind::Directory)?;
        let paths = if is_dir {
            let dir = (!path.is_empty()).then(|| path.clone());
            node.list_secrets(vault.clone(), dir).await?
        } else {
            vec![path.clone()]
        };
        for secret in paths {
            let name = secret.rsplit('/').next().unwrap_or(&secret).to_owned();
            if is_dir
                && changes_programs(&name)
                && !named.contains(&(vault.clone(), secret.clone()))
            {
                warnings.push(format!(
                    "skipped {vault}:{secret}: {name} changes how programs run; name the \
                     secret itself ({vault}:{secret}) to set it"
                ));
                continue;
            }
            if !valid_name(&name) {
                match invalid {
                    Invalid::Error => {
                        return Err(Failure {
                            code: EX_DATAERR,
                            kind: "invalid_name".into(),
                            message: format!("{vault}:{secret} is not a valid variable name"),
                        })
                    }
                    Invalid::Warn => {
                        warnings.push(format!(
                            "skipped {vault}:{secret}: not a valid variable name"
                        ));
                        continue;
                    }
                    Invalid::Ignore => continue,
                }
            }
            let bytes = node.get_secret(vault.clone(), secret.clone()).await?;
            let value = Zeroizing::new(String::from_utf8(bytes.to_vec()).map_err(|_| Failure {
                code: EX_DATAERR,
                kind: "not_text".into(),
                message: format!("{vault}:{secret} is not text"),
            })?);
            if vars.contains_key(&name) {
                match duplicate {
                    Duplicate::Keep => continue,
                    Duplicate::Overwrite => {}
                    Duplicate::Warn => {
                        warnings.push(format!("{name} is set twice; the later one wins"))
                    }
                    Duplicate::Error => {
                        return Err(Failure {
                            code: EX_DATAERR,
                            kind: "duplicate_name".into(),
                            message: format!("{name} is set by two secrets"),
                        })
                    }
                }
            } else {
                order.push(name.clone());
            }
            vars.insert(name, value);
        }
    }
    if let Some((program, args)) = command.split_first() {
        let status = std::process::Command::new(program)
            .args(args)
            .envs(vars.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .status()
            .map_err(|e| io_failure(&format!("run {program}"), e))?;
        return Ok(Output::Exit(status.code().map_or(EX_SOFTWARE, |c| c as u8)));
    }
    let json = serde_json::Value::Object(
        order
            .iter()
            .map(|k| (k.clone(), serde_json::Value::String(vars[k].to_string())))
            .collect(),
    );
    let human = match format {
        EnvFormat::Json => serde_json::to_string_pretty(&json).unwrap_or_default(),
        EnvFormat::Unix => order
            .iter()
            .map(|k| format!("export {k}={}", shell_quote(&vars[k])))
            .collect::<Vec<_>>()
            .join("\n"),
        EnvFormat::Dotenv => order
            .iter()
            .map(|k| format!("{k}={}", serde_json::Value::String(vars[k].to_string())))
            .collect::<Vec<_>>()
            .join("\n"),
    };
    // Exactly the values, for `eval` or a file: bytes, never escaped.
    let mut bytes = Zeroizing::new(human.into_bytes());
    if !bytes.is_empty() {
        bytes.push(b'\n');
    }
    Ok(Output::Bytes(bytes, json))
}
