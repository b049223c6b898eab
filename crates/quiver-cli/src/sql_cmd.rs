//! `quiver sql`: run SQL (with Quiver's versioning extensions) from the command line or an
//! interactive shell.

use std::io::Write;

use arrow::array::RecordBatch;
use clap::{Args, ValueEnum};
use quiver_core::Catalog;
use quiver_sql::context::QuiverContext;
use quiver_sql::SqlError;

/// Output formats.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Format {
    /// An aligned text table.
    Table,
    /// CSV with a header line.
    Csv,
    /// One JSON object per row (JSON lines).
    Json,
}

/// Arguments of `quiver sql`.
#[derive(Args)]
#[command(
    after_help = "Examples:\n  quiver sql -c \"SELECT class, count(*) FROM demo AS OF TAG 'v1' GROUP BY class ORDER BY 2 DESC LIMIT 5\"\n  quiver sql -c \"CREATE BRANCH relabel FROM demo; USE BRANCH relabel ON demo; UPDATE demo SET class = 'car' WHERE class = 'truck'\"\n  quiver sql -c \"DIFF demo BETWEEN TAG 'v1' AND BRANCH 'relabel'\" --format csv\n  quiver sql                      (interactive shell; statements end with ';', history in ~/.quiver_history)"
)]
pub struct SqlArgs {
    /// Statements to run (separated by ';'); without it, an interactive shell starts.
    #[arg(short = 'c', long = "command")]
    pub command: Option<String>,
    /// Output format of result rows.
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
    /// Run queries over datasets on a Ballista cluster: the scheduler's HOST:PORT (see
    /// `quiver cluster --help`). Statements that write still run here.
    #[arg(long, value_name = "HOST:PORT", env = "QUIVER_CLUSTER")]
    pub cluster: Option<String>,
}

/// Standard output that remembers whether its reader went away (`quiver sql … | head`).
struct Out<W: Write> {
    inner: W,
    closed: bool,
}

impl<W: Write> Out<W> {
    fn note<T>(&mut self, r: std::io::Result<T>) -> std::io::Result<T> {
        if let Err(e) = &r {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                self.closed = true;
            }
        }
        r
    }
}

impl<W: Write> Write for Out<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let r = self.inner.write(buf);
        self.note(r)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        let r = self.inner.flush();
        self.note(r)
    }
}

/// Print batches in a format. A reader that stops reading (a pipe into `head`) ends the
/// output quietly, as with other command-line tools; an empty result says so in the
/// table format.
pub fn print(batches: &[RecordBatch], format: Format) -> Result<(), SqlError> {
    let mut out = Out {
        inner: std::io::stdout().lock(),
        closed: false,
    };
    let res = print_to(&mut out, batches, format).and_then(|()| {
        out.flush()
            .map_err(|e| SqlError::Unsupported(format!("cannot write output: {e}")))
    });
    if out.closed {
        return Ok(());
    }
    res
}

fn print_to(out: &mut impl Write, batches: &[RecordBatch], format: Format) -> Result<(), SqlError> {
    let io = |e: std::io::Error| SqlError::Unsupported(format!("cannot write output: {e}"));
    match format {
        Format::Table => {
            if batches.iter().all(|b| b.num_rows() == 0) {
                match batches.first() {
                    Some(b) => {
                        let schema = b.schema();
                        let names: Vec<&str> =
                            schema.fields().iter().map(|f| f.name().as_str()).collect();
                        writeln!(out, "(0 rows: {})", names.join(", ")).map_err(io)?;
                    }
                    None => writeln!(out, "(0 rows)").map_err(io)?,
                }
                return Ok(());
            }
            writeln!(
                out,
                "{}",
                arrow::util::pretty::pretty_format_batches(batches)?
            )
            .map_err(io)?;
        }
        Format::Csv => {
            let mut w = arrow::csv::WriterBuilder::new()
                .with_header(true)
                .build(out);
            for b in batches {
                w.write(b)?;
            }
        }
        Format::Json => {
            let mut w = arrow::json::LineDelimitedWriter::new(out);
            let refs: Vec<&RecordBatch> = batches.iter().collect();
            w.write_batches(&refs)?;
            w.finish()?;
        }
    }
    Ok(())
}

/// Run `quiver sql`.
pub async fn run(cat: &Catalog, a: SqlArgs) -> Result<(), crate::CliError> {
    let opts = quiver_sql::SessionOptions {
        state_hook: a
            .cluster
            .as_deref()
            .map(crate::cluster_cmd::hook)
            .transpose()?,
        ..Default::default()
    };
    let ctx = QuiverContext::with_session_options(cat.clone(), opts).await?;
    if let Some(sql) = a.command {
        let batches = ctx.sql(&sql).await?;
        return Ok(print(&batches, a.format)?);
    }
    Ok(shell(&ctx, a.format).await?)
}

async fn shell(ctx: &QuiverContext, format: Format) -> Result<(), SqlError> {
    let mut rl = rustyline::DefaultEditor::new()
        .map_err(|e| SqlError::Unsupported(format!("cannot start the line editor: {e}")))?;
    let history = std::env::var("HOME")
        .map(|h| format!("{h}/.quiver_history"))
        .unwrap_or_else(|_| ".quiver_history".into());
    let _ = rl.load_history(&history);
    println!("quiver SQL shell — statements end with ';'. \\q quits. Try: SHOW TABLES; SELECT * FROM quiver.datasets;");
    let mut buf = String::new();
    loop {
        let prompt = if buf.is_empty() {
            "quiver> "
        } else {
            "   ...> "
        };
        match rl.readline(prompt) {
            Ok(line) => {
                let t = line.trim();
                if buf.is_empty()
                    && (t == "\\q"
                        || t.eq_ignore_ascii_case("exit")
                        || t.eq_ignore_ascii_case("quit"))
                {
                    break;
                }
                buf.push_str(&line);
                buf.push('\n');
                if !t.ends_with(';') {
                    continue;
                }
                let sql = std::mem::take(&mut buf);
                let _ = rl.add_history_entry(sql.trim());
                let started = std::time::Instant::now();
                match ctx.sql(&sql).await {
                    Ok(batches) => {
                        print(&batches, format)?;
                        let n: usize = batches.iter().map(|b| b.num_rows()).sum();
                        println!("{n} rows in {:.3}s", started.elapsed().as_secs_f64());
                    }
                    Err(e) => eprintln!("error: {e}"),
                }
            }
            Err(rustyline::error::ReadlineError::Interrupted) => buf.clear(),
            Err(_) => break,
        }
    }
    let _ = rl.save_history(&history);
    Ok(())
}
