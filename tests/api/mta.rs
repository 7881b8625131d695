//! The mail through a real MTA: a private Postfix (Debian's package, installed by scripts/test)
//! on a loopback port relays the service's mail into a Maildir; the file there is what a mailbox
//! gets. Needs root, as Postfix's master does; no systemd, no system instance, no port 25.
use std::os::unix::fs::{MetadataExt, PermissionsExt, chown};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use mail_parser::{MessageParser, MimeHeaders};

use crate::helpers::*;
use crate::stack::base_env;

const RCPT: &str = "inbox@rcpt.example";
const FROM: &str = "Example <no-reply@sender.example>";
/// Postfix's `myhostname`: its Received header says "by mta.test (Postfix)".
const MTA_HOST: &str = "mta.test";
/// nobody/nogroup: the owner of the Maildir files (virtual(8) never delivers as root).
const MAILDIR_ID: u32 = 65534;
const MISSING: &str = "Postfix is not installed: scripts/test installs it \
    (ensure_postfix in scripts/lib/common.sh), or run as root: echo 'postfix \
    postfix/main_mailer_type select No configuration' | debconf-set-selections && \
    apt-get install -y --no-install-recommends postfix";

/// master.cf after the smtpd line: only the services this path needs, none chrooted.
const SERVICES: &str = "cleanup unix n - n - 0 cleanup\nqmgr unix n - n 300 1 qmgr
rewrite unix - - n - - trivial-rewrite\nbounce unix - - n - 0 bounce\ndefer unix - - n - 0 bounce
trace unix - - n - 0 bounce\nverify unix - - n - 1 verify\nproxymap unix - - n - - proxymap
error unix - - n - - error\nretry unix - - n - - error\ndiscard unix - - n - - discard
virtual unix - n n - - virtual\nlocal unix - n n - - local\nsmtp unix - - n - - smtp
anvil unix - - n - 1 anvil\nscache unix - - n - 1 scache\npostlog unix-dgram n - n - 1 postlogd\n";

/// A private Postfix master (`master -d`, not detached) with its own config, queue and Maildir in
/// a temp dir; SIGTERM on drop.
struct Postfix {
    port: u16,
    dir: tempfile::TempDir,
    master: Option<Child>,
}

/// A Postfix command by name, looked up on PATH and in /usr/sbin (not on every PATH).
fn postfix_bin(name: &str) -> PathBuf {
    let path = std::env::var("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin")])
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("{MISSING}"))
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(out.status.success(), "{cmd:?}: {out:?}");
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

impl Postfix {
    async fn start() -> Self {
        let postconf = postfix_bin("postconf");
        assert_eq!(
            std::fs::metadata("/proc/self").unwrap().uid(),
            0,
            "the MTA test runs Postfix's master, which needs root (CI runs as root)"
        );
        let daemons = run(Command::new(&postconf).args(["-d", "-h", "daemon_directory"]));
        let owner: u32 = run(Command::new("id").args(["-u", "postfix"]))
            .parse()
            .unwrap();
        let (port, dir) = (free_port(), tempfile::tempdir().unwrap());
        let d = dir.path().to_str().unwrap().to_string();
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o755)).unwrap();
        for sub in ["etc", "spool", "data", "mail"] {
            std::fs::create_dir(dir.path().join(sub)).unwrap();
        }
        chown(dir.path().join("data"), Some(owner), None).unwrap();
        chown(dir.path().join("mail"), Some(MAILDIR_ID), Some(MAILDIR_ID)).unwrap();
        // Delivered by virtual(8) into mail/inbox/ (a trailing slash means Maildir). Headers stay
        // as the service wrote them: the client is no "local" one whose headers Postfix completes.
        let main_cf = format!(
            "compatibility_level = 3.6\nqueue_directory = {d}/spool\ndata_directory = {d}/data\n\
             myhostname = {MTA_HOST}\nmydomain = {MTA_HOST}\nmyorigin = {MTA_HOST}\n\
             mydestination =\ninet_interfaces = 127.0.0.1\ninet_protocols = ipv4\n\
             mynetworks = 127.0.0.0/8\nalias_maps =\nalias_database =\n\
             local_header_rewrite_clients =\nsmtpd_peername_lookup = no\n\
             maillog_file_prefixes = {d}\nmaillog_file = {d}/postfix.log\n\
             virtual_mailbox_domains = rcpt.example\nvirtual_mailbox_base = {d}/mail\n\
             virtual_mailbox_maps = inline:{{ {RCPT}=inbox/ }}\n\
             virtual_uid_maps = static:{MAILDIR_ID}\nvirtual_gid_maps = static:{MAILDIR_ID}\n"
        );
        let master_cf = format!("127.0.0.1:{port} inet n - n - - smtpd\n{SERVICES}");
        let etc = dir.path().join("etc");
        std::fs::write(etc.join("main.cf"), main_cf).unwrap();
        std::fs::write(etc.join("master.cf"), master_cf).unwrap();
        // `postfix check` creates the queue directories with their owners and modes.
        run(Command::new(postconf.with_file_name("postfix"))
            .arg("-c")
            .arg(&etc)
            .arg("check"));
        let out = std::fs::File::create(dir.path().join("master.out")).unwrap();
        let master = Command::new(Path::new(&daemons).join("master"))
            .arg("-c")
            .arg(&etc)
            .arg("-d")
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .expect("Postfix's master");
        let p = Self {
            port,
            dir,
            master: Some(master),
        };
        p.wait_greeting().await;
        p
    }

    async fn wait_greeting(&self) {
        use std::io::Read;
        let greets = || {
            let mut banner = [0u8; 3];
            let ok = std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok_and(|mut s| {
                s.set_read_timeout(Some(Duration::from_secs(5))).is_ok()
                    && s.read_exact(&mut banner).is_ok()
                    && &banner == b"220"
            });
            async move { ok }
        };
        if within(Duration::from_secs(20), greets).await.is_err() {
            panic!("Postfix did not greet:\n{}", self.log());
        }
    }

    fn log(&self) -> String {
        ["master.out", "postfix.log"]
            .iter()
            .map(|f| std::fs::read_to_string(self.dir.path().join(f)).unwrap_or_default())
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// The delivered messages, as read from the Maildir's `new/`.
    fn delivered(&self) -> Vec<Vec<u8>> {
        let new = self.dir.path().join("mail/inbox/new");
        let Ok(entries) = std::fs::read_dir(new) else {
            return Vec::new();
        };
        entries
            .map(|e| std::fs::read(e.unwrap().path()).unwrap())
            .collect()
    }
}

impl Drop for Postfix {
    fn drop(&mut self) {
        // SIGTERM: the master passes it on to its children and exits.
        if let Some(mut m) = self.master.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &m.id().to_string()])
                .status();
            // The master exits on SIGTERM at once; wait for it so no Postfix outlives the test.
            let _ = m.wait();
        }
    }
}

fn six_digits(s: &str) -> Vec<String> {
    s.split(|c: char| !c.is_ascii_digit())
        .filter(|w| w.len() == 6)
        .map(str::to_string)
        .collect()
}

/// Every property is checked and all that fail are named together, after the code is verified.
#[tokio::test]
async fn mail_relayed_by_postfix_lands_in_a_maildir_with_proper_headers_and_verifies() {
    let mta = Postfix::start().await;
    let redis = TestRedis::start().await;
    let sink = SmtpSink::start().await; // unused: the service mails the MTA
    let mut env = base_env(&redis, &sink);
    env.insert("OTP_SMTP__PORT".into(), mta.port.to_string());
    env.insert("OTP_MAIL__FROM".into(), FROM.into());
    let app = TestApp::spawn("serve", &env).await;

    let r = app.generate(RCPT).await;
    assert_eq!(r.status, 202, "{}", r.body);
    let raw: Vec<u8> = eventually("the mail in the Maildir", Duration::from_secs(30), || {
        let got = mta.delivered();
        async move { got.into_iter().next() }
    })
    .await;
    let msg = MessageParser::default()
        .parse(&raw)
        .expect("a parseable mail");
    let header = |name: &str| -> Vec<String> {
        msg.headers_raw()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim().to_string())
            .collect()
    };
    let mut failed: Vec<String> = Vec::new();
    let mut check = |ok: bool, what: String| {
        if !ok {
            failed.push(what);
        }
    };

    let ids = header("Message-ID");
    check(
        ids.len() == 1 && ids[0].ends_with("@sender.example>"),
        format!("exactly one Message-ID, on the sender's domain: {ids:?}"),
    );
    check(
        header("Date").len() == 1 && msg.date().is_some(),
        format!("one parseable Date: {:?}", header("Date")),
    );
    let auto = header("Auto-Submitted");
    check(
        auto == ["auto-generated"],
        format!("Auto-Submitted: auto-generated: {auto:?}"),
    );
    let from = msg.from().and_then(|a| a.first());
    check(
        from.is_some_and(|f| {
            f.name() == Some("Example") && f.address() == Some("no-reply@sender.example")
        }),
        format!("From as configured ({FROM}): {:?}", header("From")),
    );
    let to: Vec<_> = msg.to().map(|a| a.iter().collect()).unwrap_or_default();
    check(
        to.len() == 1 && to[0].address() == Some(RCPT),
        format!("To is the one recipient {RCPT}: {:?}", header("To")),
    );
    let root = msg.root_part().content_type();
    check(
        root.is_some_and(|c| c.ctype() == "multipart" && c.subtype() == Some("alternative")),
        format!(
            "multipart/alternative at the root: {:?}",
            header("Content-Type")
        ),
    );
    let part_text = |part: Option<&mail_parser::MessagePart>, subtype: &str| {
        part.filter(|p| {
            p.content_type()
                .is_some_and(|c| c.ctype() == "text" && c.subtype() == Some(subtype))
        })
        .and_then(|p| p.text_contents())
        .map(str::to_string)
    };
    let (text, html) = (
        part_text(msg.text_part(0), "plain"),
        part_text(msg.html_part(0), "html"),
    );
    let codes = six_digits(text.as_deref().unwrap_or_default());
    check(
        codes.len() == 1,
        format!("one 6-digit code in a text/plain part: {codes:?} in {text:?}"),
    );
    check(
        html.as_ref()
            .zip(codes.first())
            .is_some_and(|(h, c)| h.contains(c.as_str())),
        format!("a text/html part with the same code {codes:?}: {html:?}"),
    );
    let received = header("Received");
    check(
        received
            .iter()
            .any(|r| r.contains(&format!("by {MTA_HOST} (Postfix)"))),
        format!("Postfix's Received header: {received:?}"),
    );

    // The code is valid once the relay accepted the mail and the job is off the queue.
    redis.wait_drained(Duration::from_secs(10)).await;
    let code = codes.first().expect("a code in the text part");
    let r = app.verify(RCPT, code).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        failed.is_empty(),
        "the mail Postfix delivered fails {} check(s):\n- {}\n\nthe mail:\n{}",
        failed.len(),
        failed.join("\n- "),
        String::from_utf8_lossy(&raw)
    );
}
