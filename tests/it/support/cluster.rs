//! A throwaway PostgreSQL cluster of the test's own (initdb into a temporary directory, on a
//! free port), for faults that must not touch the shared server: restarts. Stopped and
//! deleted on drop.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A free TCP port on 127.0.0.1 (bound, then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// The PostgreSQL server binaries (`initdb`, `pg_ctl`, `postgres`).
pub fn server_bindir() -> PathBuf {
    let from_config = Command::new("pg_config")
        .arg("--bindir")
        .output()
        .ok()
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()))
        .filter(|dir| dir.join("initdb").exists());
    from_config
        .or_else(|| {
            let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
                .ok()?
                .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
                .filter(|dir| dir.join("initdb").exists())
                .collect();
            dirs.sort();
            dirs.pop()
        })
        .expect("initdb not found: install PostgreSQL (apt-get install postgresql)")
}

/// `program` run as the `postgres` user when we are root (initdb and pg_ctl refuse root).
pub fn as_postgres(program: &Path) -> Command {
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    if root {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(program);
        command
    } else {
        Command::new(program)
    }
}

/// A directory the `postgres` user may write to, removed on drop.
pub struct Scratch(pub PathBuf);

impl Scratch {
    /// Creates `$TMPDIR/<prefix>-<uuid>`, writable by everyone (the server runs as postgres).
    pub fn new(prefix: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("{prefix}-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).expect("scratch dir");
        let _ = Command::new("chmod").arg("0777").arg(&dir).status();
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A running throwaway cluster.
pub struct Cluster {
    /// Its port on 127.0.0.1.
    pub port: u16,
    data: PathBuf,
    bindir: PathBuf,
    _dir: Scratch,
}

impl Cluster {
    /// initdb and start; trust authentication, only on 127.0.0.1.
    pub fn new() -> Cluster {
        let bindir = server_bindir();
        let dir = Scratch::new("it-cluster");
        let data = dir.0.join("data");
        let status = as_postgres(&bindir.join("initdb"))
            .args(["-D"])
            .arg(&data)
            .args(["-U", "postgres", "--auth=trust", "--no-sync"])
            .output()
            .expect("run initdb");
        assert!(
            status.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&status.stderr)
        );
        let cluster = Cluster {
            port: free_port(),
            data,
            bindir,
            _dir: dir,
        };
        cluster.start();
        cluster
    }

    /// `postgres://postgres@127.0.0.1:<port>/postgres`, with `extra` query parameters.
    pub fn url(&self, extra: &str) -> String {
        format!(
            "postgres://postgres@127.0.0.1:{}/postgres?{extra}",
            self.port
        )
    }

    /// Stops the server at once: connections are cut, as in a crash or a failover.
    pub fn stop(&self) {
        self.pg_ctl(&["stop", "-m", "immediate"]);
    }

    /// Starts the server and waits until it accepts connections.
    pub fn start(&self) {
        self.pg_ctl(&["start"]);
    }

    fn pg_ctl(&self, args: &[&str]) {
        let socket_dir = self.data.parent().unwrap_or(&self.data).to_owned();
        let options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -k {} -c fsync=off -c max_connections=100",
            self.port,
            socket_dir.display()
        );
        let output = as_postgres(&self.bindir.join("pg_ctl"))
            .arg("-D")
            .arg(&self.data)
            .args(["-w", "-l"])
            .arg(socket_dir.join("server.log"))
            .args(["-o", &options])
            .args(args)
            .output()
            .expect("run pg_ctl");
        assert!(
            output.status.success(),
            "pg_ctl {args:?} failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = as_postgres(&self.bindir.join("pg_ctl"))
            .arg("-D")
            .arg(&self.data)
            .args(["stop", "-m", "immediate"])
            .output();
    }
}
