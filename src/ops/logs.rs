//! `infra logs SERVICE`: a service's logs from every task, interleaved by time, each line naming
//! its node and task; read through one manager (`docker service logs`), or with
//! `[logging] driver = "awslogs"` from CloudWatch Logs (where Docker's reader cannot go), with
//! the same output.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use super::reach::{Reached, reach};
use super::{Context, OpsError, Result};
use crate::cloud::LogEventRecord;
use crate::model::Address;
use crate::swarm::docker::{LogLine, LogOptions};
use crate::swarm::ssh::NodeSession;
use crate::swarm::{LogEvent, Swarm};

pub struct LogsOptions {
    /// `web`, `swarm.service.web` or Docker's name (`sandbox_web`).
    pub service: String,
    /// Only this task's lines (its id, or the start of it, as `infra details` shows it).
    pub task: Option<String>,
    pub docker: LogOptions,
}

/// While following Docker's stream, lines wait this long for lines of other tasks that are
/// older (each node's stream arrives on its own), then go out in time order.
const SETTLE: Duration = Duration::from_millis(300);
/// And never longer than this, however busy the streams.
const MAX_WAIT: Duration = Duration::from_secs(1);
/// How often CloudWatch Logs is asked for new lines while following.
const POLL: Duration = Duration::from_secs(2);

pub async fn logs(ctx: &Context, opts: LogsOptions) -> Result<()> {
    let reached = reach(ctx).await?;
    let outside = reached.outside();
    let swarm = reached.swarm(ctx, &outside);
    if reached.stack.logging.is_none() {
        let session = swarm.manager(&reached.managers()).await?;
        let result = from_docker(&reached, &swarm, &session, &opts).await;
        session.close().await;
        return result;
    }
    // CloudWatch holds the lines whether or not the Swarm answers (when it does not is when
    // they are needed most); a manager only names the nodes the tasks ran on.
    let session = match swarm.manager_now(&reached.managers()).await {
        Ok(s) => Some(s),
        Err(e) => {
            eprintln!("warning: {e}: the lines' nodes are shown as -");
            None
        }
    };
    let result = from_cloudwatch(&reached, &swarm, session.as_ref(), &opts).await;
    if let Some(s) = session {
        s.close().await;
    }
    result
}

async fn printer(reached: &Reached, swarm: &Swarm<'_>, session: &NodeSession) -> Result<Printer> {
    let members = swarm.members(session).await?;
    Ok(Printer::new(crate::swarm::addresses_by_hostname(
        &members,
        &reached.nodes,
    )))
}

/// The node (hostname) each of the service's tasks runs or ran on, by task id; none without a
/// manager.
async fn task_hosts(
    swarm: &Swarm<'_>,
    session: Option<&NodeSession>,
    service: &str,
) -> Result<BTreeMap<String, String>> {
    match session {
        Some(s) => Ok(swarm.task_hosts(s, service).await?),
        None => Ok(BTreeMap::new()),
    }
}

/// `docker service logs` on the manager, as it streams.
async fn from_docker(
    reached: &Reached,
    swarm: &Swarm<'_>,
    session: &NodeSession,
    opts: &LogsOptions,
) -> Result<()> {
    let printer = printer(reached, swarm, session).await?;
    let target = match &opts.task {
        Some(task) => task.clone(),
        None => reached.service_name(&opts.service),
    };
    let waiting: RefCell<Vec<LogEvent>> = RefCell::default();
    let first_at: RefCell<Option<Instant>> = RefCell::default();
    let last_at: RefCell<Option<Instant>> = RefCell::default();
    let read = swarm.logs(session, &target, &opts.docker, |e| {
        waiting.borrow_mut().push(e);
        first_at.borrow_mut().get_or_insert_with(Instant::now);
        *last_at.borrow_mut() = Some(Instant::now());
    });
    let result = if opts.docker.follow {
        tokio::pin!(read);
        let mut tick = tokio::time::interval(SETTLE / 3);
        loop {
            tokio::select! {
                r = &mut read => break r,
                _ = tick.tick() => {
                    let quiet = last_at.borrow().is_some_and(|at| at.elapsed() >= SETTLE);
                    let held = first_at.borrow().is_some_and(|at| at.elapsed() >= MAX_WAIT);
                    if quiet || held {
                        first_at.take();
                        printer.print(waiting.take());
                    }
                }
                _ = tokio::signal::ctrl_c() => break Ok(()),
            }
        }
    } else {
        read.await
    };
    printer.print(waiting.take());
    Ok(result?)
}

/// FilterLogEvents on the stack's log group, the service's streams (named after its
/// containers: `<service>.<slot>.<task id>`); while following, again every 2 s. Without a
/// manager, the same lines with `-` for their nodes.
async fn from_cloudwatch(
    reached: &Reached,
    swarm: &Swarm<'_>,
    session: Option<&NodeSession>,
    opts: &LogsOptions,
) -> Result<()> {
    let printer = match session {
        Some(s) => printer(reached, swarm, s).await?,
        None => Printer::new(BTreeMap::new()),
    };
    let service = reached.service_name(&opts.service);
    let group = reached.stack.log_group();
    let prefix = format!("{service}.");
    let mut start = match &opts.docker.since {
        Some(since) => Some(since_millis(since, Utc::now())?),
        None => None,
    };
    let mut hosts = task_hosts(swarm, session, &service).await?;
    // The lines printed at the newest timestamp so far: the next poll starts there again.
    let mut printed: HashMap<String, i64> = HashMap::new();
    let mut first = true;
    loop {
        let events = reached.cloud.log_events(&group, &prefix, start).await?;
        let mut fresh: Vec<LogEventRecord> = events
            .into_iter()
            .filter(|e| !printed.contains_key(&e.id))
            .collect();
        if first && let Some(n) = opts.docker.tail {
            fresh = last_of_each_stream(fresh, n as usize);
        }
        let mut lines: Vec<LogLine> = fresh
            .iter()
            .filter_map(|e| cloudwatch_line(e, &hosts))
            .filter(|l| {
                opts.task
                    .as_ref()
                    .is_none_or(|t| l.task_id.starts_with(t.as_str()))
            })
            .collect();
        if session.is_some() && lines.iter().any(|l| l.hostname.is_empty()) {
            // A task newer than the list: read it again, once.
            hosts = task_hosts(swarm, session, &service).await?;
            for l in &mut lines {
                l.hostname = hosts.get(&l.task_id).cloned().unwrap_or_default();
            }
        }
        printer.print(lines.into_iter().map(LogEvent::Line).collect());
        if let Some(newest) = fresh.iter().map(|e| e.timestamp).max() {
            start = Some(newest.max(start.unwrap_or(0)));
        }
        printed.extend(fresh.into_iter().map(|e| (e.id, e.timestamp)));
        printed.retain(|_, at| Some(*at) >= start);
        if !opts.docker.follow {
            return Ok(());
        }
        first = false;
        tokio::select! {
            _ = tokio::time::sleep(POLL) => {}
            _ = tokio::signal::ctrl_c() => return Ok(()),
        }
    }
}

/// A CloudWatch line as Docker's reader would give it: the task from the stream's name.
fn cloudwatch_line(e: &LogEventRecord, hosts: &BTreeMap<String, String>) -> Option<LogLine> {
    let (task, task_id) = e.stream.rsplit_once('.')?;
    Some(LogLine {
        time: DateTime::from_timestamp_millis(e.timestamp)?,
        task: task.to_string(),
        task_id: task_id.to_string(),
        hostname: hosts.get(task_id).cloned().unwrap_or_default(),
        message: e.message.trim_end_matches('\n').to_string(),
    })
}

/// The last `n` lines of each stream (`--tail`, which Docker counts per task).
fn last_of_each_stream(events: Vec<LogEventRecord>, n: usize) -> Vec<LogEventRecord> {
    let mut count: HashMap<String, usize> = HashMap::new();
    let mut kept: Vec<LogEventRecord> = events
        .into_iter()
        .rev()
        .filter(|e| {
            let c = count.entry(e.stream.clone()).or_default();
            *c += 1;
            *c <= n
        })
        .collect();
    kept.reverse();
    kept
}

/// `--since` as Docker reads it: a duration before now (`10m`, `1h30m`), an RFC 3339 time, or
/// Unix seconds; in milliseconds since the epoch.
fn since_millis(since: &str, now: DateTime<Utc>) -> Result<i64> {
    if let Ok(d) = humantime::parse_duration(since) {
        return Ok(now.timestamp_millis() - d.as_millis() as i64);
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(since) {
        return Ok(t.timestamp_millis());
    }
    if let Ok(secs) = since.parse::<f64>() {
        return Ok((secs * 1000.0) as i64);
    }
    Err(OpsError::Usage(format!(
        "--since {since:?}: expected a duration before now (10m, 1h30m), an RFC 3339 time or Unix seconds"
    )))
}

/// Prints lines in time order (a stable sort: one task's lines keep their order), as
/// `TIME NODE TASK | MESSAGE`.
struct Printer {
    nodes: BTreeMap<String, Address>,
    width: usize,
}

impl Printer {
    fn new(nodes: BTreeMap<String, Address>) -> Self {
        let width = nodes.values().map(|a| a.as_str().len()).max().unwrap_or(0);
        Printer { nodes, width }
    }

    fn print(&self, events: Vec<LogEvent>) {
        for line in self.render(events) {
            println!("{line}");
        }
    }

    /// The lines in time order; a line Docker printed in another shape first, as it is.
    fn render(&self, mut events: Vec<LogEvent>) -> Vec<String> {
        events.sort_by_key(|e| match e {
            LogEvent::Line(l) => Some(l.time),
            LogEvent::Other(_) => None,
        });
        events
            .into_iter()
            .map(|e| match e {
                LogEvent::Line(l) => self.line(&l),
                LogEvent::Other(text) => text,
            })
            .collect()
    }

    fn line(&self, l: &LogLine) -> String {
        let node = match self.nodes.get(&l.hostname) {
            Some(a) => a.as_str(),
            None if l.hostname.is_empty() => "-",
            None => l.hostname.as_str(),
        };
        let id: String = l.task_id.chars().take(12).collect();
        format!(
            "{} {node:<width$} {}.{id} | {}",
            l.time.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            l.task,
            l.message,
            width = self.width
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::swarm::docker::parse_log_line;

    #[test]
    fn lines_go_out_in_time_order_naming_node_and_task() {
        let p = Printer::new(BTreeMap::from([(
            "node-2".to_string(),
            Address::node("worker", 0),
        )]));
        let line = |s: &str| LogEvent::Line(parse_log_line(s).unwrap());
        let later = line("2026-12-07T14:00:01.5Z s_web.1.aaaaaaaaaaaaaaaa@node-2 | second");
        let earlier = line("2026-12-07T14:00:00.25Z s_web.2.bbbbbbbbbbbbbbbb@node-9 | first");
        assert_eq!(
            p.render(vec![later, earlier]),
            [
                "2026-12-07T14:00:00.250Z node-9         s_web.2.bbbbbbbbbbbb | first",
                "2026-12-07T14:00:01.500Z node.worker[0] s_web.1.aaaaaaaaaaaa | second",
            ]
        );
    }
}

#[cfg(test)]
mod cloudwatch_tests {
    use super::*;

    fn event(id: &str, stream: &str, timestamp: i64) -> LogEventRecord {
        LogEventRecord {
            id: id.into(),
            stream: stream.into(),
            timestamp,
            message: format!("line {id}\n"),
        }
    }

    #[test]
    fn a_cloudwatch_line_reads_like_dockers() {
        let hosts = BTreeMap::from([("t1".to_string(), "ip-10-0-1-4".to_string())]);
        let l = cloudwatch_line(&event("a", "s_web.1.t1", 1_796_652_000_250), &hosts).unwrap();
        assert_eq!(
            (
                l.task.as_str(),
                l.task_id.as_str(),
                l.hostname.as_str(),
                l.message.as_str()
            ),
            ("s_web.1", "t1", "ip-10-0-1-4", "line a")
        );
        let tail = last_of_each_stream(
            vec![
                event("1", "a", 1),
                event("2", "b", 2),
                event("3", "a", 3),
                event("4", "a", 4),
            ],
            2,
        );
        let ids: Vec<&str> = tail.iter().map(|e| e.id.as_str()).collect();
        assert_eq!(ids, ["2", "3", "4"]);
        let now = DateTime::parse_from_rfc3339("2026-12-07T14:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(
            since_millis("10m", now).unwrap(),
            now.timestamp_millis() - 600_000
        );
        assert_eq!(
            since_millis("2026-12-07T13:00:00Z", now).unwrap(),
            now.timestamp_millis() - 3_600_000
        );
        assert_eq!(since_millis("1796652000", now).unwrap(), 1_796_652_000_000);
        assert!(since_millis("yesterday", now).is_err());
    }
}
