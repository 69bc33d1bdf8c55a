//! Who may ask what on TCP (`[api]`): the public paths anyone may GET, and bearer tokens for the
//! rest (`token_file`: everything; `read_token_file`: GET only). Tokens are compared in constant
//! time and never written anywhere: an error says what is missing, not what was sent.

use super::Answer;
use crate::config::{Api, Token};

/// Admits a request on TCP, or says why not: 401 without a token (or with a wrong one), 403 for
/// the read token on anything but GET.
pub fn admit(api: &Api, method: &str, target: &str, auth: Option<&[u8]>) -> Result<(), Answer> {
    let path = target.split_once('?').map_or(target, |(p, _)| p);
    if method == "GET" && api.public.iter().any(|p| p == path) {
        return Ok(());
    }
    let given = auth.and_then(|a| a.strip_prefix(b"Bearer ".as_slice()));
    let matches = |token: &Option<Token>| match (token, given) {
        (Some(token), Some(given)) => same(&token.0, given.trim_ascii()),
        _ => false,
    };
    let read = matches(&api.read_token);
    if matches(&api.token) || (read && method == "GET") {
        Ok(())
    } else if read {
        Err(Answer::error(403, "the read token may only GET"))
    } else if api.token.is_none() && api.read_token.is_none() {
        Err(Answer::error(
            401,
            "only the public paths are served on TCP (no token_file)",
        ))
    } else {
        Err(Answer::error(
            401,
            "a valid token is needed (Authorization: Bearer)",
        ))
    }
}

/// True when `a` and `b` are equal, in a time that depends on their lengths only, not on where
/// they first differ.
fn same(a: &[u8], b: &[u8]) -> bool {
    let longest = a.len().max(b.len());
    let byte = |s: &[u8], i| s.get(i).copied().unwrap_or(0);
    let diff = (0..longest).fold(0u8, |acc, i| acc | (byte(a, i) ^ byte(b, i)));
    // black_box: the optimiser may not turn the fold into an early exit.
    std::hint::black_box(diff) == 0 && a.len() == b.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api() -> Api {
        Api {
            token: Some(Token(b"full-secret".to_vec())),
            read_token: Some(Token(b"read-secret".to_vec())),
            ..Api::default()
        }
    }

    fn status(api: &Api, method: &str, path: &str, auth: Option<&str>) -> u16 {
        match admit(api, method, path, auth.map(str::as_bytes)) {
            Ok(()) => 200,
            Err(answer) => {
                assert!(!answer.body.contains("secret"), "{}", answer.body);
                answer.status
            }
        }
    }

    #[test]
    fn public_paths_need_no_token_and_the_rest_the_right_one() {
        let api = api();
        for path in ["/livez", "/readyz", "/metrics", "/metrics?x=1"] {
            assert_eq!(status(&api, "GET", path, None), 200, "{path}");
        }
        assert_eq!(status(&api, "POST", "/livez", None), 401);
        assert_eq!(status(&api, "GET", "/v1/services", None), 401);
        let wrong = Some("Bearer full-secreT");
        assert_eq!(status(&api, "GET", "/v1/services", wrong), 401);
        assert_eq!(
            status(&api, "GET", "/v1/services", Some("full-secret")),
            401
        );
        let full = Some("Bearer full-secret");
        let read = Some("Bearer read-secret");
        assert_eq!(status(&api, "GET", "/v1/services", full), 200);
        assert_eq!(status(&api, "POST", "/v1/reload", full), 200);
        assert_eq!(status(&api, "GET", "/v1/services", read), 200);
        assert_eq!(status(&api, "POST", "/v1/reload", read), 403);
        let none = Api {
            public: Vec::new(),
            ..api
        };
        assert_eq!(status(&none, "GET", "/livez", None), 401);
        let tokenless = Api::default();
        assert_eq!(status(&tokenless, "GET", "/metrics", None), 200);
        assert_eq!(status(&tokenless, "GET", "/v1/services", full), 401);
    }

    #[test]
    fn comparison_is_exact() {
        assert!(same(b"abc", b"abc"));
        assert!(!same(b"abc", b"abd"));
        assert!(!same(b"abc", b"abcd"));
        assert!(!same(b"abc\0", b"abc"));
        assert!(!same(b"", b"x"));
        assert!(same(b"", b""));
    }
}
