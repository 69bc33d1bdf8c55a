//! Black-box tests of HTTPS on the API's TCP listeners (`[api] cert_file`/`key_file`, the cargo
//! feature `tls`), asked with curl and with pidone's own client (`--url https://`, `--ca-file`):
//! HTTPS only once a certificate is set, the certificate re-read at reload (a bad one refused,
//! the old one kept), bad files refused at start with file, key and reason, and silent TLS
//! clients that never stall the loop. Without the feature, the keys and an `https://` URL are
//! refused as such. The certificates are made here by `openssl` (a CA and a server certificate
//! for localhost and 127.0.0.1, valid two days). Needs root, util-linux (`unshare`), curl and
//! openssl.

#[macro_use]
mod support;

use support::*;

/// A config serving the API on `port` with a full token and the certificate pair `cert`/`key`
/// (names in the dir), and a longrun `web`.
fn config(port: u16, cert: &str, key: &str, extra: &str) -> String {
    format!(
        "[api]\nlisten = [\"127.0.0.1:{port}\"]\ntoken_file = \"@D/token\"\n\
         cert_file = \"@D/{cert}\"\nkey_file = \"@D/{key}\"\n\n\
         [[services]]\nname = \"web\"\ncommand = {}\n{extra}",
        longrun("web")
    )
}

#[cfg(not(feature = "tls"))]
fn without_the_feature_tls_is_refused_as_such(mode: Mode) {
    let dir = Dir::new();
    dir.write("token", "full-s3cret-token\n");
    dir.write("cert.pem", "");
    dir.write("key.pem", "");
    let path = dir.write(
        "pidone.toml",
        &config(free_port(), "cert.pem", "key.pem", ""),
    );
    let out = Pidone::start_config(mode, &dir, &path, &[]).wait();
    out.assert_code(2, "cert_file in a build without TLS");
    assert!(out.stderr.contains("api.cert_file"), "{}", out.stderr);
    assert!(out.stderr.contains("built without TLS"), "{}", out.stderr);
    let out = run_plain(&[pidone(), "--url", "https://127.0.0.1:1", "status"]);
    out.assert_code(2, "an https URL in a build without TLS");
    assert!(out.stderr.contains("built without TLS"), "{}", out.stderr);
}

#[cfg(not(feature = "tls"))]
in_both_modes!(without_the_feature_tls_is_refused_as_such);

#[cfg(feature = "tls")]
mod with_tls {
    use std::io::Write;
    use std::net::TcpStream;
    use std::process::Command;

    use super::support::*;
    use super::{Mode, config};

    /// Runs `openssl ARGS...` in `dir`.
    fn openssl(dir: &Dir, args: &[&str]) {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir.path())
            .output()
            .expect("run openssl (apt-get install openssl)");
        assert!(out.status.success(), "openssl {args:?}: {out:?}");
    }

    /// Makes `NAME-ca.pem` (a CA), and `NAME.pem` with its key `NAME.key` (a certificate of that
    /// CA for localhost and 127.0.0.1), in `dir`.
    fn certificate(dir: &Dir, name: &str) {
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        let (ca, ca_key) = (format!("{name}-ca.pem"), format!("{name}-ca.key"));
        let mut args = vec!["req", "-x509", "-days", "2", "-subj", "/CN=pidone test CA"];
        args.extend_from_slice(&ec);
        args.extend_from_slice(&["-keyout", &ca_key, "-out", &ca]);
        openssl(dir, &args);
        let (key, csr) = (format!("{name}.key"), format!("{name}.csr"));
        let mut args = vec!["req", "-subj", "/CN=localhost"];
        args.extend_from_slice(&ec);
        args.extend_from_slice(&["-keyout", &key, "-out", &csr]);
        openssl(dir, &args);
        dir.write(
            "ext.cnf",
            "subjectAltName = DNS:localhost, IP:127.0.0.1\nbasicConstraints = CA:FALSE\n\
             extendedKeyUsage = serverAuth\n",
        );
        let cert = format!("{name}.pem");
        openssl(
            dir,
            &[
                "x509",
                "-req",
                "-days",
                "2",
                "-in",
                &csr,
                "-CA",
                &ca,
                "-CAkey",
                &ca_key,
                "-CAcreateserial",
                "-extfile",
                "ext.cnf",
                "-out",
                &cert,
            ],
        );
    }

    /// `curl -s URL` trusting `ca` (a file of the dir), with `args`; the status code (0: no
    /// HTTP answer, as for a refused certificate) and the body.
    fn curl(dir: &Dir, ca: &str, url: &str, args: &[&str]) -> (u16, String) {
        let ca = dir.join(ca);
        let out = Command::new("curl")
            .args(["-s", "-m", "10", "-w", "\n%{http_code}", "--cacert"])
            .arg(&ca)
            .args(args)
            .arg(url)
            .output()
            .expect("run curl (apt-get install curl)");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (body, code) = text.rsplit_once('\n').unwrap_or(("", &text));
        (code.trim().parse().unwrap_or(0), body.to_string())
    }

    /// `pidone --url URL ARGS...` (the client), to completion.
    fn remote(url: &str, args: &[&str], env: &[(&str, &str)]) -> Out {
        let out = Command::new(pidone())
            .args(["--url", url])
            .args(args)
            .env_remove("PIDONE_SOCKET")
            .env_remove("PIDONE_CA_FILE")
            .envs(env.iter().copied())
            .env("NO_COLOR", "1")
            .output()
            .expect("run the client");
        Out::from(out)
    }

    /// A dir with the token and the certificates `one` and `two`.
    fn dir_with_keys() -> Dir {
        let dir = Dir::new();
        dir.write("token", "full-s3cret-token\n");
        certificate(&dir, "one");
        certificate(&dir, "two");
        dir
    }

    pub fn the_listeners_speak_https_only(mode: Mode) {
        let port = free_port();
        let ticker = "[[services]]\nname = \"ticker\"\n\
                      command = [\"/bin/sh\", \"-c\", \"while :; do echo tick; sleep 0.1; done\"]\n";
        let mut d = Daemon::start_in(
            mode,
            dir_with_keys(),
            &config(port, "one.pem", "one.key", ticker),
        );
        d.wait_running("web");
        let url = format!("https://127.0.0.1:{port}");
        let (code, body) = curl(&d.dir, "one-ca.pem", &format!("{url}/livez"), &[]);
        assert_eq!(code, 200, "GET /livez by HTTPS: {body}");
        let by_name = format!("https://localhost:{port}/metrics");
        let (code, body) = curl(&d.dir, "one-ca.pem", &by_name, &[]);
        assert_eq!(code, 200, "by the name in the certificate: {body}");
        assert!(body.contains("pidone_service_up"), "{body}");
        let (code, _) = curl(&d.dir, "two-ca.pem", &format!("{url}/livez"), &[]);
        assert_eq!(code, 0, "a CA that did not sign the certificate");
        let plain = format!("http://127.0.0.1:{port}/livez");
        let (code, body) = curl(&d.dir, "one-ca.pem", &plain, &[]);
        assert_ne!(code, 200, "plain HTTP on an HTTPS listener: {body}");

        // The client: --ca-file or $PIDONE_CA_FILE, the token, the same exit codes.
        let ca = d.dir.join("one-ca.pem");
        let ca = ca.to_str().expect("UTF-8");
        let token = d.dir.join("token");
        let token = token.to_str().expect("UTF-8");
        let out = remote(
            &url,
            &["--ca-file", ca, "--token-file", token, "status"],
            &[],
        );
        assert_eq!(out.code, 0, "{out:?}");
        assert!(
            out.stdout.contains("web") && out.stdout.contains("running"),
            "{out:?}"
        );
        let env = [("PIDONE_CA_FILE", ca), ("PIDONE_TOKEN_FILE", token)];
        let pid = d.pid("web");
        let out = remote(&url, &["restart", "web"], &env);
        assert_eq!(out.code, 0, "restart by HTTPS: {out:?}");
        assert_ne!(d.pid("web"), pid, "restarted (and waited for)");
        let (code, text) = remote(&url, &["--ca-file", ca, "status"], &[]).code_text();
        assert_eq!(code, 1, "no token: {text}");
        let two = d.dir.join("two-ca.pem");
        let two = two.to_str().expect("UTF-8");
        let (code, text) = remote(&url, &["--ca-file", two, "check"], &[]).code_text();
        assert_eq!(code, 3, "an untrusted certificate: {text}");
        assert!(text.contains("certificate"), "{text}");
        let (code, text) = remote(&plain, &["check"], &[]).code_text();
        assert_ne!(code, 0, "plain HTTP to an HTTPS listener: {text}");
        let (code, text) = remote(&url, &["--ca-file", token, "check"], &[]).code_text();
        assert_eq!(code, 2, "a CA file without a certificate: {text}");
        assert!(text.contains("no certificate"), "{text}");

        // logs -f by HTTPS: lines keep coming, each as it comes.
        let args = ["--url", &url, "--ca-file", ca, "--token-file", token];
        follow_lines(
            &[&args[..], &["logs", "-f", "-n", "1", "ticker"]].concat(),
            "tick",
            3,
        );
        d.terminate();
    }

    pub fn certificates_are_read_again_at_reload_and_a_bad_one_refused(mode: Mode) {
        let port = free_port();
        let mut d = Daemon::start_in(
            mode,
            dir_with_keys(),
            &config(port, "one.pem", "one.key", ""),
        );
        d.wait_running("web");
        let livez = format!("https://127.0.0.1:{port}/livez");
        assert_eq!(curl(&d.dir, "one-ca.pem", &livez, &[]).0, 200);

        // The same files, new contents: read again at reload.
        d.dir.write("one.pem", &d.dir.read("two.pem"));
        d.dir.write("one.key", &d.dir.read("two.key"));
        d.ok(&["reload"]);
        assert_eq!(
            curl(&d.dir, "two-ca.pem", &livez, &[]).0,
            200,
            "the new one"
        );
        assert_eq!(
            curl(&d.dir, "one-ca.pem", &livez, &[]).0,
            0,
            "the old one is gone"
        );

        // A certificate that is not one, then a key that is not the certificate's: refused,
        // the old pair kept.
        d.dir.write("one.pem", "not a certificate\n");
        let (code, text) = d.client(&["reload"]).code_text();
        assert_eq!(code, 1, "{text}");
        assert!(
            text.contains("api.cert_file") && text.contains("one.pem"),
            "{text}"
        );
        assert!(text.contains("no certificate"), "{text}");
        d.dir.write("one.pem", &d.dir.read("two.pem"));
        d.dir.write("one.key", &d.dir.read("one-ca.key"));
        let (code, text) = d.client(&["reload"]).code_text();
        assert_eq!(code, 1, "{text}");
        assert!(text.contains("api.key_file"), "{text}");
        assert!(text.contains("not the certificate's"), "{text}");
        assert_eq!(
            curl(&d.dir, "two-ca.pem", &livez, &[]).0,
            200,
            "the old pair kept"
        );

        // Without the keys: plain HTTP again.
        let text =
            config(port, "", "", "").replace("cert_file = \"@D/\"\nkey_file = \"@D/\"\n", "");
        d.dir.write("pidone.toml", &text);
        d.ok(&["reload"]);
        let plain = format!("http://127.0.0.1:{port}/livez");
        assert_eq!(curl(&d.dir, "two-ca.pem", &plain, &[]).0, 200, "plain HTTP");
        d.terminate();
    }

    pub fn bad_keys_are_refused_at_start(mode: Mode) {
        let dir = dir_with_keys();
        let port = free_port();
        let start = |text: &str| {
            let path = dir.write("pidone.toml", text);
            Pidone::start_config(mode, &dir, &path, &[]).wait()
        };
        let out = start(&config(port, "missing.pem", "one.key", ""));
        out.assert_code(2, "a missing certificate");
        assert!(out.stderr.contains("api.cert_file"), "{}", out.stderr);
        assert!(out.stderr.contains("missing.pem"), "{}", out.stderr);
        let out = start(&config(port, "one.pem", "two.key", ""));
        out.assert_code(2, "another certificate's key");
        assert!(out.stderr.contains("api.key_file"), "{}", out.stderr);
        let out = start(&config(port, "one.pem", "one.pem", ""));
        out.assert_code(2, "a certificate for a key");
        assert!(out.stderr.contains("no private key"), "{}", out.stderr);
        let half =
            config(port, "one.pem", "one.key", "").replace("key_file = \"@D/one.key\"\n", "");
        let out = start(&half);
        out.assert_code(2, "cert_file alone");
        assert!(out.stderr.contains("go together"), "{}", out.stderr);
        let key = dir.read("one.key");
        let secret = key.lines().nth(1).expect("a line of the key");
        assert!(!out.stderr.contains(secret), "a key in an error");
    }

    pub fn silent_tls_clients_do_not_stall_supervision(mode: Mode) {
        let port = free_port();
        let text = config(port, "one.pem", "one.key", &crasher("clock"));
        let mut d = Daemon::start_in(mode, dir_with_keys(), &text);
        d.wait_running("web");
        // Clients that connect and say nothing, or half a ClientHello, and never read.
        let addr = format!("127.0.0.1:{port}");
        let mut silent = Vec::new();
        for i in 0..20 {
            let mut conn = TcpStream::connect(&addr).expect("connect");
            if i % 2 == 0 {
                let _ = conn.write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00]);
            }
            silent.push(conn);
        }
        d.wait_crashes("clock", 2);
        let livez = format!("https://{addr}/livez");
        assert_eq!(
            curl(&d.dir, "one-ca.pem", &livez, &[]).0,
            200,
            "others are served"
        );
        drop(silent);
        assert_eq!(d.state("web"), "running");
        d.terminate();
    }
}

#[cfg(feature = "tls")]
use with_tls::*;

#[cfg(feature = "tls")]
in_both_modes!(
    the_listeners_speak_https_only,
    certificates_are_read_again_at_reload_and_a_bad_one_refused,
    bad_keys_are_refused_at_start,
    silent_tls_clients_do_not_stall_supervision,
);
