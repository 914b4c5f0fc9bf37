//! The container image: `chaoslab image build` (SPEC §12).
//!
//! Builds the image from the binary that is running (or `--binary`), never
//! from a base image: a root filesystem holding the binary, the shared
//! libraries `ldd` names, an `/etc/passwd` with the non-root user and the
//! CA bundle, then `FROM scratch` + `COPY` — so nothing is pulled and the
//! build works offline. `--redis` builds the Redis image the podman variant
//! of the Kubernetes export runs, the same way from this machine's
//! `redis-server` (Debian's package). The repository's `Containerfile`
//! builds the same runtime stage from source for registries' CI.

mod rootfs;

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::BadInput;

pub use rootfs::{RootFs, shared_libraries};

/// The service image's default tag.
pub const DEFAULT_TAG: &str = "localhost/chaoslab:latest";
/// The Redis image's default tag.
pub const DEFAULT_REDIS_TAG: &str = "localhost/chaoslab-redis:latest";
/// The service image's user (uid = gid), also in the repository's Containerfile.
pub const SERVICE_UID: u32 = 10001;
/// The Redis image's user (uid = gid), as Debian's and the official image's `redis`.
pub const REDIS_UID: u32 = 999;

/// Command-line arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Image tag (default localhost/chaoslab:latest, or
    /// localhost/chaoslab-redis:latest with --redis).
    #[arg(long)]
    pub tag: Option<String>,
    /// Also write the image to FILE as a docker-archive (`podman load`,
    /// `docker load`, `kind load image-archive`).
    #[arg(long, value_name = "FILE")]
    pub save: Option<PathBuf>,
    /// The chaoslab binary to put in the image (default: this one; a
    /// release build makes the smallest image).
    #[arg(long, value_name = "PATH")]
    pub binary: Option<PathBuf>,
    /// Build the Redis image instead, from this machine's redis-server
    /// (`apt-get install -y redis-server`), for `podman kube play` offline.
    #[arg(long)]
    pub redis: bool,
    /// Builder to use: podman or buildah (default: the first installed).
    #[arg(long, value_name = "TOOL")]
    pub builder: Option<String>,
}

/// The image's `Containerfile` runtime stage for the service: the same
/// lines close the repository's multi-stage `Containerfile`.
pub const SERVICE_RUNTIME_STAGE: &str = "FROM scratch
COPY rootfs/ /
USER 10001:10001
EXPOSE 8000
ENV APP_HOST=0.0.0.0 APP_PORT=8000 PATH=/usr/local/bin
ENTRYPOINT [\"/usr/local/bin/chaoslab\", \"serve\"]
";

/// The Redis image's `Containerfile`.
pub const REDIS_RUNTIME_STAGE: &str = "FROM scratch
COPY rootfs/ /
USER 999:999
EXPOSE 6379
ENV PATH=/usr/local/bin
ENTRYPOINT [\"/usr/local/bin/redis-server\"]
";

/// A container image builder found on PATH.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Builder {
    Podman(PathBuf),
    Buildah(PathBuf),
}

/// Finds `name` on PATH.
pub fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| is_executable(p))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// The builder to use: `choice` if given, else podman, else buildah.
pub fn find_builder(choice: Option<&str>) -> Result<Builder, BadInput> {
    let missing = || {
        BadInput(
            "neither podman nor buildah is installed; install podman with `apt-get install -y podman`"
                .into(),
        )
    };
    match choice {
        Some("podman") => find_on_path("podman")
            .map(Builder::Podman)
            .ok_or_else(missing),
        Some("buildah") => find_on_path("buildah")
            .map(Builder::Buildah)
            .ok_or_else(missing),
        Some(other) => Err(BadInput(format!(
            "unknown builder `{other}` for --builder (expected podman or buildah)"
        ))),
        None => find_on_path("podman")
            .map(Builder::Podman)
            .or_else(|| find_on_path("buildah").map(Builder::Buildah))
            .ok_or_else(missing),
    }
}

/// Why an image could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("{0}")]
    RootFs(#[from] rootfs::RootFsError),
    #[error("cannot run {tool}: {source}")]
    Spawn {
        tool: String,
        #[source]
        source: std::io::Error,
    },
    #[error("`{command}` failed ({status}): {stderr}")]
    Failed {
        command: String,
        status: std::process::ExitStatus,
        stderr: String,
    },
}

/// A built image.
#[derive(Debug, Clone)]
pub struct Built {
    pub tag: String,
    /// Bytes, as the builder reports the image's size.
    pub size: u64,
}

fn run_tool(program: &Path, args: &[&str]) -> Result<String, ImageError> {
    let output = Command::new(program)
        .args(args)
        .output()
        .map_err(|source| ImageError::Spawn {
            tool: program.display().to_string(),
            source,
        })?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let last = stderr
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("");
        return Err(ImageError::Failed {
            command: format!("{} {}", program.display(), args.join(" ")),
            status: output.status,
            stderr: last.trim().to_string(),
        });
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// Builds `containerfile` over the context `dir` as `tag`, pulling nothing.
pub fn build_context(builder: &Builder, dir: &Path, tag: &str) -> Result<Built, ImageError> {
    let file = dir.join("Containerfile");
    let file = file.to_string_lossy();
    let ctx = dir.to_string_lossy();
    let (program, sub) = match builder {
        Builder::Podman(p) => (p, "build"),
        Builder::Buildah(p) => (p, "build"),
    };
    run_tool(
        program,
        &[
            sub,
            "--pull=never",
            "--network=none",
            "--layers=false",
            "-t",
            tag,
            "-f",
            &file,
            &ctx,
        ],
    )?;
    let size = match builder {
        Builder::Podman(p) => run_tool(p, &["image", "inspect", "--format", "{{.Size}}", tag])?,
        Builder::Buildah(p) => run_tool(
            p,
            &[
                "inspect",
                "--type",
                "image",
                "--format",
                "{{.Docker.Size}}",
                tag,
            ],
        )
        .unwrap_or_default(),
    };
    Ok(Built {
        tag: tag.to_string(),
        size: size.trim().parse().unwrap_or(0),
    })
}

/// Writes the image to `file` as a docker-archive.
pub fn save(builder: &Builder, tag: &str, file: &Path) -> Result<(), ImageError> {
    let path = file.to_string_lossy();
    match builder {
        Builder::Podman(p) => {
            run_tool(p, &["save", "--format", "docker-archive", "-o", &path, tag])
        }
        Builder::Buildah(p) => run_tool(p, &["push", tag, &format!("docker-archive:{path}:{tag}")]),
    }
    .map(drop)
}

/// Assembles the root filesystem and Containerfile for the service image
/// (binary `binary`) or the Redis image (`redis-server`) in `dir`.
pub fn prepare_context(dir: &Path, binary: &Path, redis: bool) -> Result<(), ImageError> {
    let root = RootFs::new(dir.join("rootfs"))?;
    let (name, uid, stage) = if redis {
        ("redis-server", REDIS_UID, REDIS_RUNTIME_STAGE)
    } else {
        ("chaoslab", SERVICE_UID, SERVICE_RUNTIME_STAGE)
    };
    root.add_executable(binary, &format!("usr/local/bin/{name}"))?;
    root.add_libraries_of(binary)?;
    root.add_users(if redis { "redis" } else { "chaoslab" }, uid)?;
    root.add_ca_bundle()?;
    std::fs::write(dir.join("Containerfile"), stage).map_err(|source| rootfs::RootFsError::Io {
        path: dir.join("Containerfile"),
        source,
    })?;
    Ok(())
}

fn megabytes(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

/// Runs the command.
pub fn run(args: &Args) -> anyhow::Result<()> {
    let builder = find_builder(args.builder.as_deref())?;
    let binary = match (&args.binary, args.redis) {
        (Some(path), _) => path.clone(),
        (None, true) => find_on_path("redis-server").ok_or_else(|| {
            BadInput(
                "redis-server not found; install it with `apt-get install -y redis-server`".into(),
            )
        })?,
        (None, false) => std::env::current_exe()?,
    };
    if !is_executable(&binary) {
        return Err(BadInput(format!(
            "--binary {} is not an executable file",
            binary.display()
        ))
        .into());
    }
    let tag = args.tag.clone().unwrap_or_else(|| {
        (if args.redis {
            DEFAULT_REDIS_TAG
        } else {
            DEFAULT_TAG
        })
        .to_string()
    });
    if tag.is_empty() || tag.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(BadInput(format!("--tag `{tag}` is not an image reference")).into());
    }
    if let Some(parent) = args
        .save
        .as_deref()
        .and_then(Path::parent)
        .filter(|p| !p.as_os_str().is_empty() && !p.is_dir())
    {
        return Err(BadInput(format!("--save: no such directory {}", parent.display())).into());
    }
    let dir = tempfile::Builder::new()
        .prefix("chaoslab-image-")
        .tempdir()?;
    prepare_context(dir.path(), &binary, args.redis)?;
    let built = build_context(&builder, dir.path(), &tag)?;
    println!(
        "built {} ({}) from {}",
        built.tag,
        megabytes(built.size),
        binary.display()
    );
    if let Some(file) = &args.save {
        save(&builder, &built.tag, file)?;
        let bytes = std::fs::metadata(file).map(|m| m.len()).unwrap_or(0);
        println!(
            "saved {} to {} ({})",
            built.tag,
            file.display(),
            megabytes(bytes)
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests;
