//! Logger pipelines (`log_to`): a producer's stdout (and stderr with `log_to_stderr`) goes to
//! its logger's stdin through a pipe that pidone creates once and holds both ends of, as s6's
//! logging chain does. Neither side's restart loses anything: while the logger is down, what
//! the producer writes waits in the pipe (up to its capacity, 64 KiB, then the producer blocks:
//! back-pressure); while the producer is down, the logger keeps its stdin open and simply waits.
//! The logger starts before its producers and stops after them (`log_to` orders them like
//! `after`); when pidone stops a logger while shutting down, it first closes its own write end,
//! so that a logger reading to the end of its input sees the end once its producers are gone.

use std::io;
use std::os::fd::OwnedFd;

use rustix::pipe::{PipeFlags, pipe_with};

use super::system::System;
use super::{Id, Supervisor};

/// One logger's pipe: the read end (each start of the logger gets a copy as stdin) and the
/// write end (each start of a producer gets copies as stdout, and stderr), both held by pidone.
pub(super) struct Pipeline {
    read: OwnedFd,
    /// `None` once pidone let go of it (shutting down).
    write: Option<OwnedFd>,
}

/// The descriptors a main process gets from pipelines: its stdin as a logger, its stdout and
/// stderr as a producer; `None` leaves the service's usual ones.
#[derive(Default)]
pub(super) struct Ends {
    pub stdin: Option<OwnedFd>,
    pub stdout: Option<OwnedFd>,
    pub stderr: Option<OwnedFd>,
}

impl<S: System> Supervisor<S> {
    /// The ends of the pipelines service `id`'s main process is part of, creating a pipeline the
    /// first time its logger or a producer starts.
    pub(super) fn pipeline_ends(&mut self, id: Id) -> io::Result<Ends> {
        let Some(spec) = self.svcs.get(id).map(|s| &s.spec) else {
            return Ok(Ends::default());
        };
        let name = spec.name.clone();
        let log_to = spec.log_to.clone();
        let is_logger = (self.svcs.iter())
            .any(|(_, s)| s.spec.log_to.as_ref().is_some_and(|(to, _)| *to == name));
        let mut ends = Ends::default();
        if is_logger {
            ends.stdin = Some(self.pipeline(&name)?.read.try_clone()?);
        }
        if let Some((logger, with_stderr)) = log_to {
            let Some(write) = &self.pipeline(&logger)?.write else {
                return Err(io::Error::other(format!(
                    "logger {logger} is shutting down"
                )));
            };
            ends.stdout = Some(write.try_clone()?);
            if with_stderr {
                ends.stderr = Some(write.try_clone()?);
            }
        }
        Ok(ends)
    }

    /// The pipeline of the logger called `logger`, created if it does not exist yet.
    fn pipeline(&mut self, logger: &str) -> io::Result<&mut Pipeline> {
        let at = match self.pipelines.iter().position(|(name, _)| name == logger) {
            Some(at) => at,
            None => {
                let (read, write) = pipe_with(PipeFlags::CLOEXEC)?;
                let pipeline = Pipeline {
                    read,
                    write: Some(write),
                };
                self.pipelines.push((logger.to_owned(), pipeline));
                self.pipelines.len() - 1
            }
        };
        (self.pipelines.get_mut(at).map(|(_, p)| p))
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))
    }

    /// Shutting down: lets go of the write end of `id`'s pipeline if it is a logger, so that it
    /// reads the end of its input once its producers are gone.
    pub(super) fn release_pipeline(&mut self, id: Id) {
        let Some(name) = self.svcs.get(id).map(|s| &s.spec.name) else {
            return;
        };
        if let Some((_, pipeline)) = self.pipelines.iter_mut().find(|(n, _)| n == name) {
            pipeline.write = None;
        }
    }
}
