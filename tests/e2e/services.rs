//! Real servers on loopback for the shared-catalog tests: PostgreSQL from the system's
//! packages and an S3-compatible store (moto's server mode, from the test venv). Each is
//! started in a temporary directory and stopped on drop.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::pyiceberg::python;

/// A free TCP port on loopback.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn wait_for_port(port: u16, what: &str) {
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{what} did not start listening on 127.0.0.1:{port}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The directory holding PostgreSQL's server programs (`initdb`, `pg_ctl`).
fn pg_bin() -> PathBuf {
    let on_path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default();
    let mut candidates = on_path;
    if let Ok(entries) = std::fs::read_dir("/usr/lib/postgresql") {
        let mut versions: Vec<PathBuf> = entries.flatten().map(|e| e.path().join("bin")).collect();
        versions.sort();
        candidates.extend(versions.into_iter().rev());
    }
    candidates
        .into_iter()
        .find(|d| d.join("initdb").exists() && d.join("pg_ctl").exists())
        .expect(
            "PostgreSQL's server programs (initdb, pg_ctl) are needed: install Debian's \
             'postgresql' package (the CI script does)",
        )
}

/// Runs a PostgreSQL program; as root, as the `postgres` user (the server refuses root).
fn pg_command(bin: &Path, program: &str) -> Command {
    let path = bin.join(program);
    // The server refuses to run as root.
    let is_root = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false);
    if is_root {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(path);
        c
    } else {
        Command::new(path)
    }
}

/// A PostgreSQL server with a trust-authenticated user `floe`.
pub struct Postgres {
    dir: tempfile::TempDir,
    data: PathBuf,
    bin: PathBuf,
    /// Its port on 127.0.0.1.
    pub port: u16,
}

impl Postgres {
    /// Initialises a cluster in a temp dir and starts it.
    pub fn start() -> Postgres {
        let bin = pg_bin();
        let dir = tempfile::tempdir().expect("temp dir");
        let data = dir.path().join("data");
        // The server runs as `postgres` when the tests run as root: it must own the dir.
        let _ = Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(dir.path())
            .status();
        crate::fixture::succeeded(
            pg_command(&bin, "initdb")
                .args(["-U", "floe", "--auth=trust", "-E", "UTF8", "-D"])
                .arg(&data),
            "initdb",
        );
        let pg = Postgres {
            port: free_port(),
            dir,
            data,
            bin,
        };
        pg.start_server();
        pg
    }

    /// Starts the server on the cluster (again).
    pub fn start_server(&self) {
        let dir = self.dir.path();
        let status = pg_command(&self.bin, "pg_ctl")
            .arg("-D")
            .arg(&self.data)
            .arg("-l")
            .arg(dir.join("server.log"))
            .arg("-o")
            .arg(format!(
                "-p {} -c listen_addresses=127.0.0.1 -k {}",
                self.port,
                dir.display()
            ))
            .args(["-w", "start"])
            .stdout(Stdio::null())
            .status()
            .expect("run pg_ctl start");
        assert!(status.success(), "pg_ctl start failed");
        wait_for_port(self.port, "PostgreSQL");
    }

    /// Stops the server at once, as a crash would: connections drop mid-transaction.
    pub fn stop_server(&self) {
        let _ = pg_command(&self.bin, "pg_ctl")
            .arg("-D")
            .arg(&self.data)
            .args(["-m", "immediate", "-w", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        self.stop_server();
    }
}

/// An S3-compatible server (moto) with one bucket.
pub struct S3Server {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
}

impl S3Server {
    /// Starts the server and creates `bucket`; any keys are accepted.
    pub fn start(bucket: &str) -> S3Server {
        Self::start_with(bucket, false)
    }

    /// Like [`Self::start`], but after the bucket is created every request must be signed
    /// with keys of a user the server knows (it knows none), as AWS checks them.
    pub fn start_checking_keys(bucket: &str) -> S3Server {
        Self::start_with(bucket, true)
    }

    fn start_with(bucket: &str, check_keys: bool) -> S3Server {
        let python = python();
        let server = python.with_file_name("moto_server");
        assert!(
            server.exists(),
            "moto's S3 server is needed: run scripts/python-env.sh (the README's test command does)"
        );
        let port = free_port();
        let mut cmd = Command::new(server);
        if check_keys {
            // The one request moto lets through unchecked: creating the bucket.
            cmd.env("INITIAL_NO_AUTH_ACTION_COUNT", "1");
        }
        let child = cmd
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start moto_server");
        let s3 = S3Server {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
        };
        wait_for_port(port, "moto_server");
        let status = Command::new(&python)
            .args([
                "-c",
                "import sys, boto3; boto3.client('s3', endpoint_url=sys.argv[1], region_name='us-east-1', \
                 aws_access_key_id='floe', aws_secret_access_key='floe').create_bucket(Bucket=sys.argv[2])",
                &s3.endpoint,
                bucket,
            ])
            .status()
            .expect("create the bucket");
        assert!(status.success(), "creating bucket {bucket} failed");
        s3
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An Iceberg REST catalog server (`rest_catalog.py`: the spec's routes over PyIceberg's
/// SQL catalog) requiring OAuth2 client credentials, with its warehouse in a temp dir.
/// Its routes live under the prefix [`REST_PREFIX`].
pub struct RestCatalog {
    child: Child,
    _dir: tempfile::TempDir,
    /// `http://127.0.0.1:PORT`.
    pub uri: String,
    /// The warehouse location, `file:///…`.
    pub warehouse: String,
}

/// The URL prefix of the test REST catalog's routes.
pub const REST_PREFIX: &str = "lake-catalog";

/// Who tells the REST client the routes' prefix.
#[derive(Debug, Clone, Copy)]
pub enum PrefixFrom {
    /// The server, in its `/v1/config` answer.
    Config,
    /// Nobody: the client must be configured with it.
    Client,
}

impl RestCatalog {
    /// Starts the server accepting `client_id:client_secret`.
    pub fn start(credential: &str, prefix_from: PrefixFrom) -> RestCatalog {
        Self::start_named(credential, prefix_from, None)
    }

    /// Like [`Self::start`]; with `name`, clients must ask for the warehouse by that
    /// logical name, and the server places the tables itself.
    pub fn start_named(
        credential: &str,
        prefix_from: PrefixFrom,
        name: Option<&str>,
    ) -> RestCatalog {
        let dir = tempfile::tempdir().expect("temp dir");
        let warehouse = format!("file://{}/warehouse", dir.path().display());
        let port = free_port();
        let child = start_script(
            "rest_catalog.py",
            &vec![
                port.to_string(),
                credential.to_string(),
                dir.path().join("rest.db").display().to_string(),
                warehouse.clone(),
                REST_PREFIX.to_string(),
                match prefix_from {
                    PrefixFrom::Config => "config",
                    PrefixFrom::Client => "client",
                }
                .to_string(),
            ]
            .into_iter()
            .chain(name.map(str::to_string))
            .collect::<Vec<_>>(),
        );
        RestCatalog {
            child,
            _dir: dir,
            uri: format!("http://127.0.0.1:{port}"),
            warehouse,
        }
    }
}

impl Drop for RestCatalog {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the Python server `tests/e2e/{script}` with `args` and waits until it prints
/// "listening".
fn start_script(script: &str, args: &[String]) -> Child {
    use std::io::{BufRead, BufReader};
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/e2e")
        .join(script);
    let mut child = Command::new(python())
        .arg(path)
        .args(args)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("start {script}: {e}"));
    let mut line = String::new();
    if let Some(out) = child.stdout.take() {
        let _ = BufReader::new(out).read_line(&mut line);
    }
    assert_eq!(line.trim(), "listening", "{script} did not start");
    child
}

/// A proxy in front of a store that answers every `every`-th request with S3's
/// "503 SlowDown" (`throttle_proxy.py`), as a throttling S3 does.
pub struct ThrottleProxy {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
}

impl ThrottleProxy {
    /// Starts the proxy in front of `upstream`.
    pub fn start(upstream: &str, every: u32) -> ThrottleProxy {
        let port = free_port();
        let child = start_script(
            "throttle_proxy.py",
            &[port.to_string(), upstream.to_string(), every.to_string()],
        );
        ThrottleProxy {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
        }
    }
}

impl Drop for ThrottleProxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Azurite's well-known development account and key (public, the same in every install).
pub const AZURITE_ACCOUNT: &str = "devstoreaccount1";
/// Azurite's development account key.
pub const AZURITE_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

/// Azurite, the Azure Storage emulator (blob service), with one container.
pub struct Azurite {
    child: Child,
    _dir: tempfile::TempDir,
    /// The account URL, `http://127.0.0.1:PORT/devstoreaccount1`.
    pub endpoint: String,
}

impl Azurite {
    /// Starts the emulator and creates `container`.
    pub fn start(container: &str) -> Azurite {
        let bin = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../.node/node_modules/.bin/azurite-blob");
        assert!(
            bin.exists(),
            "Azurite is needed: run scripts/node-env.sh (the README's test command does)"
        );
        let dir = tempfile::tempdir().expect("temp dir");
        let port = free_port();
        let child = Command::new(bin)
            .args(["--blobHost", "127.0.0.1", "--blobPort", &port.to_string()])
            .arg("--location")
            .arg(dir.path())
            .args(["--silent", "--skipApiVersionCheck", "--loose"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start azurite");
        let azurite = Azurite {
            child,
            _dir: dir,
            endpoint: format!("http://127.0.0.1:{port}/{AZURITE_ACCOUNT}"),
        };
        wait_for_port(port, "azurite");
        let conn = azurite.connection_string();
        let status = Command::new(python())
            .args([
                "-c",
                "import sys; from azure.storage.blob import BlobServiceClient; \
                 BlobServiceClient.from_connection_string(sys.argv[1]).create_container(sys.argv[2])",
                &conn,
                container,
            ])
            .status()
            .expect("create the container");
        assert!(status.success(), "creating container {container} failed");
        azurite
    }

    fn connection_string(&self) -> String {
        format!(
            "DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};AccountKey={AZURITE_KEY};BlobEndpoint={};",
            self.endpoint
        )
    }

    /// Names of the blobs in `container` under `prefix`.
    pub fn list(&self, container: &str, prefix: &str) -> Vec<String> {
        python_lines(
            "import sys; from azure.storage.blob import BlobServiceClient; \
             c = BlobServiceClient.from_connection_string(sys.argv[1]).get_container_client(sys.argv[2]); \
             print('\\n'.join(b.name for b in c.list_blobs(name_starts_with=sys.argv[3])))",
            &[&self.connection_string(), container, prefix],
        )
    }
}

/// The lines `code` prints when the tests' Python runs it with `args`; panics with its
/// error output if it fails.
fn python_lines(code: &str, args: &[&str]) -> Vec<String> {
    let out = crate::fixture::succeeded(
        Command::new(python()).arg("-c").arg(code).args(args),
        "python",
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

impl Drop for Azurite {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
