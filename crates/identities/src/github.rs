use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use polykey_gestalts::claims::identity_id;
use reqwest::header::{HeaderValue, ACCEPT, CONTENT_TYPE};
use reqwest::{Client, Method, RequestBuilder, StatusCode, Url};
use serde::Deserialize;

use crate::claim::{CLAIM_FILE_NAME, MAX_CLAIM_FILE_BYTES};
use crate::http::{base_url, endpoint, exchange, form, parse};
use crate::provider::{
    DeviceAuthorization, FoundClaim, Identity, IdentityProvider, Poll, Published,
};
use crate::{AccessToken, DeviceCode, IdentityError};

/// GitHub's provider id: the `provider` of `github.com:login`.
pub const GITHUB_PROVIDER_ID: &str = "github.com";
/// github.com's web endpoints (the OAuth device flow).
pub const DEFAULT_WEB_URL: &str = "https://github.com";
/// GitHub's REST API.
pub const DEFAULT_API_URL: &str = "https://api.github.com";
/// Where gists' raw files are served; a `raw_url` elsewhere is not fetched.
pub const DEFAULT_RAW_URL: &str = "https://gist.githubusercontent.com";
/// The REST API version asked for.
pub const API_VERSION: &str = "2022-11-28";
/// The OAuth scopes asked for: create gists, read the profile.
pub const OAUTH_SCOPE: &str = "gist read:user";
/// The description of a published claim's gist.
pub const GIST_DESCRIPTION: &str = "Polykey identity claim";
/// The most bytes of a JSON answer (a user, a token, a created gist).
pub const MAX_JSON_BYTES: usize = 64 * 1024;
/// The most bytes of a page of gists (100 gists of a few KiB each).
pub const MAX_GIST_LIST_BYTES: usize = 1024 * 1024;
/// The most gists looked at for claims (one page of GitHub's largest).
pub const MAX_GISTS: usize = 100;
/// The most accounts a search returns.
pub const MAX_SEARCH_RESULTS: usize = 20;
/// The longest search query.
pub const MAX_QUERY_BYTES: usize = 64;
/// The default time allowed for one request, answer and body.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
/// The default time allowed for [`IdentityProvider::claims_of`] in all.
pub const DEFAULT_CLAIMS_TIMEOUT: Duration = Duration::from_secs(60);
const USER_AGENT: &str = concat!("polykey/", env!("CARGO_PKG_VERSION"));
const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";
/// The longest error code from the OAuth endpoints repeated in an error.
const MAX_ERROR_CODE_BYTES: usize = 64;

/// Where GitHub is and how long to wait for it.
#[derive(Clone, Debug)]
pub struct GitHubConfig {
    /// The OAuth app's client id (public; identifies Polykey to GitHub).
    pub client_id: String,
    /// github.com's web endpoints: `/login/device/code`,
    /// `/login/oauth/access_token`.
    pub web_url: String,
    /// The REST API: `/user`, `/users/{login}`, `/users/{login}/gists`,
    /// `/gists`, `/search/users`.
    pub api_url: String,
    /// Where gists' raw files are served from; other `raw_url`s are skipped.
    pub raw_url: String,
    /// Time allowed for each request, answer and body.
    pub request_timeout: Duration,
    /// Time allowed for [`IdentityProvider::claims_of`] in all.
    pub claims_timeout: Duration,
    /// The most gists looked at for claims (1 to [`MAX_GISTS`]).
    pub max_gists: usize,
}

impl GitHubConfig {
    /// github.com itself, with the default limits.
    pub fn new(client_id: impl Into<String>) -> Self {
        Self {
            client_id: client_id.into(),
            web_url: DEFAULT_WEB_URL.into(),
            api_url: DEFAULT_API_URL.into(),
            raw_url: DEFAULT_RAW_URL.into(),
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            claims_timeout: DEFAULT_CLAIMS_TIMEOUT,
            max_gists: MAX_GISTS,
        }
    }

    /// Every endpoint under one base URL (a test server), as
    /// `{base}/login/...`, `{base}/api/...` and `{base}/raw/...`.
    pub fn at(client_id: impl Into<String>, base: &str) -> Self {
        let base = base.trim_end_matches('/');
        Self {
            web_url: base.into(),
            api_url: format!("{base}/api"),
            raw_url: format!("{base}/raw"),
            ..Self::new(client_id)
        }
    }
}

/// The GitHub provider: device flow on github.com, claims as public gists.
pub struct GitHub {
    client: Client,
    client_id: String,
    web: Url,
    api: Url,
    raw: Url,
    request_timeout: Duration,
    claims_timeout: Duration,
    max_gists: usize,
}

#[derive(Deserialize)]
struct DeviceCodeAnswer {
    device_code: String,
    user_code: String,
    verification_uri: String,
    expires_in: u64,
    interval: Option<u64>,
}

#[derive(Deserialize)]
struct OAuthAnswer {
    access_token: Option<String>,
    error: Option<String>,
    interval: Option<u64>,
}

#[derive(Deserialize)]
struct User {
    login: String,
    name: Option<String>,
    html_url: Option<String>,
}

#[derive(Deserialize)]
struct Owner {
    login: String,
}

#[derive(Deserialize)]
struct GistFile {
    raw_url: Option<String>,
    size: Option<u64>,
}

#[derive(Deserialize)]
struct Gist {
    id: String,
    html_url: String,
    #[serde(default)]
    public: bool,
    owner: Option<Owner>,
    #[serde(default)]
    files: BTreeMap<String, GistFile>,
}

#[derive(Deserialize)]
struct SearchAnswer {
    items: Vec<User>,
}

/// An OAuth error code, cut to its documented alphabet and a bounded length.
fn error_code(code: &str) -> String {
    code.chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
        .take(MAX_ERROR_CODE_BYTES)
        .collect()
}

fn oauth_error(code: &str) -> IdentityError {
    match code {
        "access_denied" => IdentityError::AccessDenied,
        "expired_token" => IdentityError::Expired,
        other => IdentityError::DeviceFlow(error_code(other)),
    }
}

fn check_login(login: &str) -> Result<(), IdentityError> {
    identity_id(GITHUB_PROVIDER_ID, login)
        .map(|_| ())
        .map_err(|_| IdentityError::InvalidIdentity("a GitHub login is letters, digits and -"))
}

impl GitHub {
    /// A provider speaking to `config`'s URLs.
    pub fn new(config: GitHubConfig) -> Result<Self, IdentityError> {
        if config.client_id.is_empty() {
            return Err(IdentityError::Config("no OAuth client id"));
        }
        let client = Client::builder()
            .user_agent(USER_AGENT)
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(config.request_timeout)
            .timeout(config.request_timeout)
            .build()
            .map_err(|_| IdentityError::Config("the HTTP client could not start"))?;
        Ok(Self {
            client,
            client_id: config.client_id,
            web: base_url(&config.web_url)?,
            api: base_url(&config.api_url)?,
            raw: base_url(&config.raw_url)?,
            request_timeout: config.request_timeout,
            claims_timeout: config.claims_timeout,
            max_gists: config.max_gists.clamp(1, MAX_GISTS),
        })
    }

    /// A POST of a form to a web (OAuth) endpoint, asking for JSON.
    fn oauth(
        &self,
        path: &[&str],
        fields: &[(&str, &str)],
    ) -> Result<RequestBuilder, IdentityError> {
        let body = form(fields);
        Ok(self
            .client
            .post(endpoint(&self.web, path)?)
            .header(ACCEPT, "application/json")
            .header(
                CONTENT_TYPE,
                HeaderValue::from_static("application/x-www-form-urlencoded"),
            )
            .body(body.as_bytes().to_vec()))
    }

    /// A REST API request with GitHub's headers.
    fn api(&self, method: Method, url: Url, token: Option<&AccessToken>) -> RequestBuilder {
        let request = self
            .client
            .request(method, url)
            .header(ACCEPT, "application/vnd.github+json")
            .header("X-GitHub-Api-Version", API_VERSION);
        match token {
            Some(token) => request.bearer_auth(token.expose_secret()),
            None => request,
        }
    }

    /// Send a REST API request; 2xx gives the body, 401 is
    /// [`IdentityError::Unauthorized`], 404 is `None`.
    async fn api_call(
        &self,
        request: RequestBuilder,
        limit: usize,
        what: &'static str,
    ) -> Result<Option<Vec<u8>>, IdentityError> {
        let (status, body) = exchange(request, self.request_timeout, limit, what).await?;
        match status {
            s if s.is_success() => Ok(Some(body.to_vec())),
            StatusCode::UNAUTHORIZED => Err(IdentityError::Unauthorized(what)),
            StatusCode::NOT_FOUND => Ok(None),
            s => Err(IdentityError::Status {
                what,
                status: s.as_u16(),
            }),
        }
    }

    fn identity(user: User) -> Identity {
        Identity {
            provider: GITHUB_PROVIDER_ID.into(),
            login: user.login,
            name: user.name,
            url: user.html_url,
        }
    }

    /// Whether `url` is under the configured raw base.
    fn is_raw(&self, url: &Url) -> bool {
        let prefix = self.raw.path().trim_end_matches('/');
        url.origin() == self.raw.origin()
            && url
                .path()
                .strip_prefix(prefix)
                .is_some_and(|rest| rest.starts_with('/'))
    }

    /// The claim file's text at `raw_url`, fetched without the token; `None`
    /// when it is not a usable claim file (elsewhere, too large, gone, not
    /// text). A file that could not be fetched (no answer, a server error)
    /// is an error, not `None`: a claim checked again must not count as
    /// withdrawn because GitHub was briefly unreachable.
    async fn raw_claim(&self, raw_url: &str) -> Result<Option<String>, IdentityError> {
        let Ok(url) = Url::parse(raw_url) else {
            return Ok(None);
        };
        if !self.is_raw(&url) {
            return Ok(None);
        }
        let what = "a gist's claim file";
        let (status, body) = match exchange(
            self.client.get(url),
            self.request_timeout,
            MAX_CLAIM_FILE_BYTES,
            what,
        )
        .await
        {
            Ok(answer) => answer,
            Err(IdentityError::TooLarge { .. }) => return Ok(None),
            Err(e) => return Err(e),
        };
        if status.is_server_error() {
            return Err(IdentityError::Status {
                what,
                status: status.as_u16(),
            });
        }
        if !status.is_success() {
            return Ok(None);
        }
        Ok(String::from_utf8(body.to_vec()).ok())
    }

    async fn find_claims(
        &self,
        login: &str,
        token: Option<&AccessToken>,
    ) -> Result<Vec<FoundClaim>, IdentityError> {
        let what = "a user's gists";
        let mut url = endpoint(&self.api, &["users", login, "gists"])?;
        url.query_pairs_mut()
            .append_pair("per_page", &self.max_gists.to_string());
        let body = self
            .api_call(self.api(Method::GET, url, token), MAX_GIST_LIST_BYTES, what)
            .await?
            .ok_or_else(|| {
                IdentityError::NoSuchIdentity(format!("{GITHUB_PROVIDER_ID}:{login}"))
            })?;
        let gists: Vec<Gist> = parse(&body, what)?;
        let mut found = Vec::new();
        for gist in gists.into_iter().take(self.max_gists) {
            // Listed under the account, and owned by it: a gist is only
            // evidence for its owner.
            let owned = gist
                .owner
                .as_ref()
                .is_some_and(|o| o.login.eq_ignore_ascii_case(login));
            if !gist.public || !owned {
                continue;
            }
            let Some(file) = gist.files.get(CLAIM_FILE_NAME) else {
                continue;
            };
            if file.size.is_some_and(|s| s > MAX_CLAIM_FILE_BYTES as u64) {
                continue;
            }
            let Some(raw_url) = file.raw_url.as_deref() else {
                continue;
            };
            if let Some(text) = self.raw_claim(raw_url).await? {
                found.push(FoundClaim {
                    url: gist.html_url,
                    text,
                });
            }
        }
        Ok(found)
    }
}

#[async_trait]
impl IdentityProvider for GitHub {
    fn id(&self) -> &str {
        GITHUB_PROVIDER_ID
    }

    async fn start_device_flow(&self) -> Result<DeviceAuthorization, IdentityError> {
        let what = "starting the device flow";
        let request = self.oauth(
            &["login", "device", "code"],
            &[("client_id", &self.client_id), ("scope", OAUTH_SCOPE)],
        )?;
        let (status, body) = exchange(request, self.request_timeout, MAX_JSON_BYTES, what).await?;
        if let Ok(OAuthAnswer {
            error: Some(code), ..
        }) = serde_json::from_slice(&body)
        {
            return Err(oauth_error(&code));
        }
        if !status.is_success() {
            return Err(IdentityError::Status {
                what,
                status: status.as_u16(),
            });
        }
        let answer: DeviceCodeAnswer = parse(&body, what)?;
        Ok(DeviceAuthorization {
            user_code: answer.user_code,
            verification_uri: answer.verification_uri,
            device_code: DeviceCode::new(answer.device_code),
            interval: Duration::from_secs(answer.interval.unwrap_or(5)),
            expires_in: Duration::from_secs(answer.expires_in),
        })
    }

    async fn poll_device_flow(&self, flow: &DeviceAuthorization) -> Result<Poll, IdentityError> {
        let what = "polling the device flow";
        let request = self.oauth(
            &["login", "oauth", "access_token"],
            &[
                ("client_id", &self.client_id),
                ("device_code", flow.device_code.expose_secret()),
                ("grant_type", DEVICE_GRANT),
            ],
        )?;
        let (status, body) = exchange(request, self.request_timeout, MAX_JSON_BYTES, what).await?;
        let answer: Option<OAuthAnswer> = serde_json::from_slice(&body).ok();
        match answer {
            Some(OAuthAnswer {
                access_token: Some(token),
                ..
            }) if status.is_success() && !token.is_empty() => {
                Ok(Poll::Authorized(AccessToken::new(token)))
            }
            Some(OAuthAnswer {
                error: Some(code),
                interval,
                ..
            }) => match code.as_str() {
                "authorization_pending" => Ok(Poll::Pending),
                "slow_down" => Ok(Poll::SlowDown {
                    interval: interval.map(Duration::from_secs),
                }),
                other => Err(oauth_error(other)),
            },
            _ if !status.is_success() => Err(IdentityError::Status {
                what,
                status: status.as_u16(),
            }),
            _ => Err(IdentityError::BadResponse {
                what,
                reason: "neither a token nor an error",
            }),
        }
    }

    async fn user(&self, token: &AccessToken) -> Result<Identity, IdentityError> {
        let what = "the authenticated user";
        let body = self
            .api_call(
                self.api(Method::GET, endpoint(&self.api, &["user"])?, Some(token)),
                MAX_JSON_BYTES,
                what,
            )
            .await?
            .ok_or(IdentityError::Status { what, status: 404 })?;
        Ok(Self::identity(parse(&body, what)?))
    }

    async fn publish(&self, token: &AccessToken, text: &str) -> Result<Published, IdentityError> {
        let what = "publishing a gist";
        if text.len() > MAX_CLAIM_FILE_BYTES {
            return Err(IdentityError::TooLarge {
                what,
                limit: MAX_CLAIM_FILE_BYTES,
            });
        }
        let gist = serde_json::json!({
            "description": GIST_DESCRIPTION,
            "public": true,
            "files": { CLAIM_FILE_NAME: { "content": text } },
        });
        let request = self
            .api(Method::POST, endpoint(&self.api, &["gists"])?, Some(token))
            .json(&gist);
        let body = self
            .api_call(request, MAX_JSON_BYTES, what)
            .await?
            .ok_or(IdentityError::Status { what, status: 404 })?;
        let gist: Gist = parse(&body, what)?;
        Ok(Published {
            id: gist.id,
            url: gist.html_url,
        })
    }

    async fn claims_of(
        &self,
        login: &str,
        token: Option<&AccessToken>,
    ) -> Result<Vec<FoundClaim>, IdentityError> {
        check_login(login)?;
        tokio::time::timeout(self.claims_timeout, self.find_claims(login, token))
            .await
            .map_err(|_| IdentityError::Timeout("a user's claims"))?
    }

    async fn get(
        &self,
        login: &str,
        token: Option<&AccessToken>,
    ) -> Result<Option<Identity>, IdentityError> {
        check_login(login)?;
        let what = "a user";
        let request = self.api(Method::GET, endpoint(&self.api, &["users", login])?, token);
        match self.api_call(request, MAX_JSON_BYTES, what).await? {
            Some(body) => Ok(Some(Self::identity(parse(&body, what)?))),
            None => Ok(None),
        }
    }

    async fn search(
        &self,
        query: &str,
        token: Option<&AccessToken>,
    ) -> Result<Vec<Identity>, IdentityError> {
        if query.len() > MAX_QUERY_BYTES {
            return Err(IdentityError::InvalidIdentity("the search is too long"));
        }
        check_login(query)?;
        let what = "searching users";
        let mut url = endpoint(&self.api, &["search", "users"])?;
        url.query_pairs_mut()
            .append_pair("q", &format!("{query} in:login"))
            .append_pair("per_page", &MAX_SEARCH_RESULTS.to_string());
        let body = self
            .api_call(self.api(Method::GET, url, token), MAX_GIST_LIST_BYTES, what)
            .await?
            .ok_or(IdentityError::Status { what, status: 404 })?;
        let answer: SearchAnswer = parse(&body, what)?;
        Ok(answer
            .items
            .into_iter()
            .take(MAX_SEARCH_RESULTS)
            .map(Self::identity)
            .collect())
    }
}
