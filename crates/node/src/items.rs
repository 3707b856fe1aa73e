//! Secrets as the UI sees them: typed items as forms, other secrets as text
//! or, when not UTF-8, as a file to save.

use polykey_vaults::generate::{self, PasswordRules};
use polykey_vaults::items::{Attachment, Field, FieldKind, Item, ItemError, ItemKind};
use zeroize::Zeroizing;

use crate::api::{
    AttachmentDto, FieldDto, FieldKindDto, ItemDto, PasswordRulesDto, SecretDto, StrengthDto,
    TotpDto,
};
use crate::error::NodeError;
use crate::node::Node;

impl From<&Item> for ItemDto {
    fn from(item: &Item) -> Self {
        match &item.kind {
            ItemKind::Login {
                username,
                password,
                urls,
                totp,
                notes,
            } => ItemDto::Login {
                username: username.clone(),
                password: password.clone(),
                urls: urls.clone(),
                totp: totp.clone(),
                notes: notes.clone(),
            },
            ItemKind::SecureNote { text } => ItemDto::SecureNote { text: text.clone() },
            ItemKind::Card {
                cardholder,
                number,
                expiry,
                cvv,
                notes,
            } => ItemDto::Card {
                cardholder: cardholder.clone(),
                number: number.clone(),
                expiry: expiry.clone(),
                cvv: cvv.clone(),
                notes: notes.clone(),
            },
            ItemKind::SshKey {
                private_key,
                public_key,
                passphrase,
                notes,
            } => ItemDto::SshKey {
                private_key: private_key.clone(),
                public_key: public_key.clone(),
                passphrase: passphrase.clone(),
                notes: notes.clone(),
            },
            ItemKind::Identity {
                full_name,
                email,
                phone,
                address,
                birthday,
                company,
                id_number,
                notes,
            } => ItemDto::Identity {
                full_name: full_name.clone(),
                email: email.clone(),
                phone: phone.clone(),
                address: address.clone(),
                birthday: birthday.clone(),
                company: company.clone(),
                id_number: id_number.clone(),
                notes: notes.clone(),
            },
        }
    }
}

impl From<FieldKind> for FieldKindDto {
    fn from(kind: FieldKind) -> Self {
        match kind {
            FieldKind::Text => Self::Text,
            FieldKind::Hidden => Self::Hidden,
            FieldKind::Url => Self::Url,
            FieldKind::Date => Self::Date,
        }
    }
}

impl From<FieldKindDto> for FieldKind {
    fn from(kind: FieldKindDto) -> Self {
        match kind {
            FieldKindDto::Text => Self::Text,
            FieldKindDto::Hidden => Self::Hidden,
            FieldKindDto::Url => Self::Url,
            FieldKindDto::Date => Self::Date,
        }
    }
}

fn field_dto(field: &Field) -> FieldDto {
    FieldDto {
        name: field.name.clone(),
        kind: field.kind.into(),
        value: field.value.clone(),
    }
}

fn attachment_dto(a: &Attachment) -> AttachmentDto {
    AttachmentDto {
        name: a.name.clone(),
        size: a.size,
        file: a.file.clone(),
    }
}

/// The bytes to store for a secret edited in the UI: refused when its
/// custom fields or attachments are out of bounds, or a plain secret has
/// any (they live in typed items).
fn to_bytes(secret: &SecretDto) -> Result<Zeroizing<Vec<u8>>, NodeError> {
    let plain = matches!(secret.item, ItemDto::Text { .. } | ItemDto::Binary { .. });
    if plain && !(secret.fields.is_empty() && secret.attachments.is_empty()) {
        return Err(NodeError::Item(ItemError::Malformed(
            "a plain secret has no custom fields or attachments; choose a kind of item".into(),
        )));
    }
    let kind = match &secret.item {
        ItemDto::Text { text } => return Ok(Zeroizing::new(text.as_bytes().to_vec())),
        ItemDto::Binary { .. } => return Ok(Zeroizing::new(Vec::new())),
        ItemDto::Login {
            username,
            password,
            urls,
            totp,
            notes,
        } => ItemKind::Login {
            username: username.clone(),
            password: password.clone(),
            urls: urls
                .iter()
                .filter(|u| !u.trim().is_empty())
                .cloned()
                .collect(),
            totp: totp.clone().filter(|t| !t.trim().is_empty()),
            notes: notes.clone(),
        },
        ItemDto::SecureNote { text } => ItemKind::SecureNote { text: text.clone() },
        ItemDto::Card {
            cardholder,
            number,
            expiry,
            cvv,
            notes,
        } => ItemKind::Card {
            cardholder: cardholder.clone(),
            number: number.clone(),
            expiry: expiry.clone(),
            cvv: cvv.clone(),
            notes: notes.clone(),
        },
        ItemDto::SshKey {
            private_key,
            public_key,
            passphrase,
            notes,
        } => ItemKind::SshKey {
            private_key: private_key.clone(),
            public_key: public_key.clone(),
            passphrase: passphrase.clone(),
            notes: notes.clone(),
        },
        ItemDto::Identity {
            full_name,
            email,
            phone,
            address,
            birthday,
            company,
            id_number,
            notes,
        } => ItemKind::Identity {
            full_name: full_name.clone(),
            email: email.clone(),
            phone: phone.clone(),
            address: address.clone(),
            birthday: birthday.clone(),
            company: company.clone(),
            id_number: id_number.clone(),
            notes: notes.clone(),
        },
    };
    let mut item = Item::new(secret.title.clone(), kind);
    item.fields = secret
        .fields
        .iter()
        // A row left entirely blank is no field.
        .filter(|f| !(f.name.trim().is_empty() && f.value.is_empty()))
        .map(|f| Field {
            name: f.name.trim().to_owned(),
            kind: f.kind.into(),
            value: f.value.clone(),
        })
        .collect();
    item.attachments = secret
        .attachments
        .iter()
        .map(|a| Attachment {
            name: a.name.clone(),
            size: a.size,
            file: a.file.clone(),
        })
        .collect();
    item.check().map_err(NodeError::Item)?;
    Ok(item.to_bytes())
}

/// How the UI shows a secret's bytes.
pub(crate) fn view(path: &str, bytes: &[u8]) -> Result<SecretDto, NodeError> {
    let title = path.rsplit('/').next().unwrap_or(path).to_owned();
    match Item::from_bytes(bytes) {
        Ok(item) => Ok(SecretDto {
            path: path.to_owned(),
            title: item.title.clone(),
            item: ItemDto::from(&item),
            fields: item.fields.iter().map(field_dto).collect(),
            attachments: item.attachments.iter().map(attachment_dto).collect(),
        }),
        Err(ItemError::NotAnItem) => Ok(SecretDto {
            path: path.to_owned(),
            title,
            item: match std::str::from_utf8(bytes) {
                Ok(text) => ItemDto::Text {
                    text: text.to_owned(),
                },
                Err(_) => ItemDto::Binary {
                    size: bytes.len() as u64,
                },
            },
            fields: Vec::new(),
            attachments: Vec::new(),
        }),
        Err(other) => Err(NodeError::Item(other)),
    }
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl Node {
    /// A secret as the UI shows it.
    pub async fn read_secret(
        &self,
        vault: String,
        path: String,
        version: Option<String>,
    ) -> Result<SecretDto, NodeError> {
        let bytes = self.get_secret(vault, path.clone(), version).await?;
        view(&path, &bytes)
    }

    /// Save a secret edited in the UI (typed item or text). With
    /// `must_be_new`, refuses to overwrite. Returns the new version.
    pub async fn save_secret(
        &self,
        vault: String,
        secret: SecretDto,
        must_be_new: bool,
    ) -> Result<String, NodeError> {
        if matches!(secret.item, ItemDto::Binary { .. }) {
            return Err(NodeError::Item(ItemError::Malformed(
                "binary secrets are replaced, not edited".into(),
            )));
        }
        let bytes = to_bytes(&secret)?;
        let attachments = secret.attachments.clone();
        let name = vault.clone();
        let files = self
            .with_vaults(move |s| {
                let v = polykey_vaults::Vaults::new(&s.db).open(&name)?;
                crate::attachments::unsaved_files(s, &v, &attachments)
            })
            .await?;
        if !files.is_empty() {
            // The item and its new files in one version.
            let path = secret.path.clone();
            return self
                .with_vault_mut(vault, move |s, v| {
                    if must_be_new && v.stat(&s.db, &path).is_ok() {
                        return Err(polykey_vaults::VaultError::AlreadyExists(path));
                    }
                    let mut all: Vec<(&str, &[u8])> = vec![(path.as_str(), bytes.as_slice())];
                    all.extend(files.iter().map(|(f, b)| (f.as_str(), b.as_slice())));
                    let version = v.write_secrets(&s.db, &s.keys, &all)?;
                    crate::attachments::saved(s, &files);
                    Ok(version)
                })
                .await;
        }
        if must_be_new {
            self.create_secret(vault, secret.path.clone(), bytes).await
        } else {
            self.write_secret(vault, secret.path.clone(), bytes).await
        }
    }

    /// Save many secrets edited or imported at once, as one version (one
    /// commit): for imports. Binary placeholders are refused.
    pub async fn save_secrets(
        &self,
        vault: String,
        secrets: Vec<SecretDto>,
    ) -> Result<String, NodeError> {
        if secrets
            .iter()
            .any(|s| matches!(s.item, ItemDto::Binary { .. }))
        {
            return Err(NodeError::Item(ItemError::Malformed(
                "binary secrets are replaced, not edited".into(),
            )));
        }
        let encoded = secrets
            .iter()
            .map(|s| Ok((s.path.clone(), to_bytes(s)?)))
            .collect::<Result<Vec<(String, Zeroizing<Vec<u8>>)>, NodeError>>()?;
        self.write_secrets(vault, encoded).await
    }

    /// One field of a secret, for copying: `password`, `username`, `totp`
    /// (the current code), `number`, `cvv`, … or `value` for a plain secret;
    /// a custom field by its place (`custom#0` the first; `custom#0:Name`
    /// only if it is still named so) or by its name (`custom:Name`, the
    /// first of that name).
    pub async fn secret_field(
        &self,
        vault: String,
        path: String,
        field: String,
    ) -> Result<Zeroizing<String>, NodeError> {
        let secret = self.read_secret(vault.clone(), path.clone(), None).await?;
        let value = match (&secret.item, field.as_str()) {
            (ItemDto::Login { password, .. }, "password") => password.clone(),
            (ItemDto::Login { username, .. }, "username") => username.clone(),
            (
                ItemDto::Login {
                    totp: Some(setting),
                    ..
                },
                "totp",
            ) => totp_code(setting)?.code,
            (ItemDto::Card { number, .. }, "number") => number.clone(),
            (ItemDto::Card { cvv, .. }, "cvv") => cvv.clone(),
            (ItemDto::SshKey { private_key, .. }, "private_key") => private_key.clone(),
            (ItemDto::SshKey { public_key, .. }, "public_key") => public_key.clone(),
            (ItemDto::Identity { email, .. }, "email") => email.clone(),
            (ItemDto::Identity { phone, .. }, "phone") => phone.clone(),
            (ItemDto::Identity { full_name, .. }, "full_name") => full_name.clone(),
            (ItemDto::Identity { address, .. }, "address") => address.clone(),
            (ItemDto::Identity { id_number, .. }, "id_number") => id_number.clone(),
            // By place (`custom#0` the first, and its name after a colon
            // if given: an item changed since it was shown may hold
            // another field there): two fields may share a name, and the
            // one shown is the one copied.
            (_, custom) if custom.starts_with("custom#") => {
                let (at, name) = match custom["custom#".len()..].split_once(':') {
                    Some((at, name)) => (at, Some(name)),
                    None => (&custom["custom#".len()..], None),
                };
                let field = at
                    .parse::<usize>()
                    .ok()
                    .and_then(|at| secret.fields.get(at))
                    .filter(|f| name.is_none_or(|name| f.name == name));
                match field {
                    Some(f) => f.value.clone(),
                    None => {
                        return Err(NodeError::Item(ItemError::Malformed(
                            "this secret has no such field".into(),
                        )))
                    }
                }
            }
            (_, custom) if custom.starts_with("custom:") => {
                let name = &custom["custom:".len()..];
                match secret.fields.iter().find(|f| f.name == name) {
                    Some(f) => f.value.clone(),
                    None => {
                        return Err(NodeError::Item(ItemError::Malformed(format!(
                            "this secret has no field '{name}'"
                        ))))
                    }
                }
            }
            (ItemDto::SecureNote { text }, "text" | "value") => text.clone(),
            (ItemDto::Text { text }, "value" | "password") => text.clone(),
            _ => {
                return Err(NodeError::Item(ItemError::Malformed(format!(
                    "this secret has no field '{field}'"
                ))))
            }
        };
        self.record_use(vault, path).await?;
        Ok(Zeroizing::new(value))
    }
}

/// The current TOTP code for a login's setting.
pub fn totp_code(setting: &str) -> Result<TotpDto, NodeError> {
    let totp = polykey_vaults::totp::Totp::parse(setting).map_err(NodeError::Totp)?;
    let now = now();
    Ok(TotpDto {
        code: totp.code_at(now),
        seconds_left: totp.seconds_left(now),
        period: totp.period,
    })
}

/// A new random password.
pub fn generate_password(rules: PasswordRulesDto) -> Result<Zeroizing<String>, NodeError> {
    generate::password(&PasswordRules {
        length: rules.length as usize,
        lowercase: rules.lowercase,
        uppercase: rules.uppercase,
        digits: rules.digits,
        symbols: rules.symbols,
        avoid_ambiguous: rules.avoid_ambiguous,
    })
    .map_err(NodeError::Generate)
}

/// A new passphrase of BIP39 words.
pub fn generate_passphrase(words: u32) -> Result<Zeroizing<String>, NodeError> {
    generate::passphrase(words as usize, "-").map_err(NodeError::Generate)
}

/// How strong a password is.
pub fn password_strength(password: &str) -> StrengthDto {
    let strength = generate::strength(password);
    StrengthDto {
        bits: strength.bits.round() as u32,
        score: strength.score,
    }
}
