//! PgBouncer in transaction mode, started on a free port in front of a Postgres server —
//! the connection path of Supabase's pooler (port 6543) and RDS Proxy. Debian's `pgbouncer`
//! package must be installed (`make test-faults` installs it); a test that finds it missing
//! fails.

use std::os::unix::process::CommandExt as _;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::cluster::{Scratch, as_postgres, free_port};

/// A running PgBouncer; stopped on drop.
pub struct Bouncer {
    /// Its port on 127.0.0.1.
    pub port: u16,
    child: Child,
    _dir: Scratch,
}

impl Bouncer {
    /// Pools every database of the server at `upstream` (a `postgres://` URL: host, port,
    /// user and password are taken from it) in transaction mode.
    pub fn start(upstream: &str) -> Bouncer {
        let binary = Path::new("/usr/sbin/pgbouncer");
        assert!(
            binary.exists(),
            "pgbouncer is not installed: `make test-faults` installs it (apt-get install pgbouncer)"
        );
        let config: tokio_postgres::Config = upstream.parse().expect("upstream URL");
        let host = match config.get_hosts().first() {
            Some(tokio_postgres::config::Host::Tcp(host)) => host.clone(),
            _ => "127.0.0.1".to_owned(),
        };
        let port = config.get_ports().first().copied().unwrap_or(5432);
        let user = config.get_user().unwrap_or("postgres").to_owned();
        let password = config
            .get_password()
            .map(|p| String::from_utf8_lossy(p).into_owned())
            .unwrap_or_default();
        let dir = Scratch::new("it-pgbouncer");
        let listen = free_port();
        std::fs::write(
            dir.0.join("users.txt"),
            format!("\"{user}\" \"{password}\"\n"),
        )
        .expect("auth file");
        let ini = format!(
            "[databases]\n\
             * = host={host} port={port}\n\
             [pgbouncer]\n\
             listen_addr = 127.0.0.1\n\
             listen_port = {listen}\n\
             unix_socket_dir =\n\
             auth_type = trust\n\
             auth_file = {dir}/users.txt\n\
             pool_mode = transaction\n\
             max_client_conn = 500\n\
             default_pool_size = 20\n\
             logfile = {dir}/pgbouncer.log\n",
            dir = dir.0.display()
        );
        let ini_path = dir.0.join("pgbouncer.ini");
        std::fs::write(&ini_path, ini).expect("pgbouncer.ini");
        let child = as_postgres(binary)
            .arg(&ini_path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("start pgbouncer");
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", listen)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "pgbouncer did not start: {}",
                std::fs::read_to_string(dir.0.join("pgbouncer.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50)); // readiness of a child process
        }
        Bouncer {
            port: listen,
            child,
            _dir: dir,
        }
    }

    /// The URL of `database` through the pooler, with `user` (and no password: the pooler
    /// trusts local clients).
    pub fn url(&self, user: &str, database: &str) -> String {
        format!("postgres://{user}@127.0.0.1:{}/{database}", self.port)
    }
}

impl Drop for Bouncer {
    fn drop(&mut self) {
        // Its own process group: runuser and pgbouncer both.
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-TERM", "--", &group]).status();
        let _ = self.child.wait();
    }
}
