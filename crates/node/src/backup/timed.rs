//! A backup file whose every operation gives up when the disk or share
//! under it stops answering: a network share that hangs, a stick that
//! stalls. Each open, read, write and sync runs on a thread of the file's
//! own and is waited for at most [`Timed::limit`]; past that the file is
//! given up for good (every later call fails at once) and its thread is
//! left to end when the operation does. A restore and a scheduled backup
//! hold the node's store while they run: a file that never answered held
//! it (and the keys with it, a lock waiting on it) without end.

use std::fs::File;
use std::io::{self, Read, Write};
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender};
use std::sync::Arc;
use std::time::Duration;

/// How long one operation on a backup file may take.
pub(crate) const FILE_STALL: Duration = Duration::from_secs(30);

/// Operations given up on whose threads still wait for the disk.
static STUCK: AtomicUsize = AtomicUsize::new(0);

/// How many operations given up still wait for their disk or share: a
/// scheduled backup tries no more while one does (it would leave one more
/// thread waiting at every try).
pub(crate) fn stuck() -> usize {
    STUCK.load(Ordering::SeqCst)
}

/// One operation, as its thread and its caller see it.
#[derive(Default)]
struct Turn(AtomicU8);

const DONE: u8 = 1;
const GIVEN_UP: u8 = 2;

impl Turn {
    /// Its thread is done with it (counted out of the stuck ones if its
    /// caller gave it up); whether its caller gave it up.
    fn done(&self) -> bool {
        let given_up = self.0.swap(DONE, Ordering::SeqCst) == GIVEN_UP;
        if given_up {
            STUCK.fetch_sub(1, Ordering::SeqCst);
        }
        given_up
    }

    /// Its caller gives it up: false if it was done meanwhile.
    fn give_up(&self) -> bool {
        STUCK.fetch_add(1, Ordering::SeqCst);
        if self.0.swap(GIVEN_UP, Ordering::SeqCst) == DONE {
            STUCK.fetch_sub(1, Ordering::SeqCst);
            return false;
        }
        true
    }
}

/// Wait for `turn`'s answer at most `limit`.
fn wait<T>(answers: &Receiver<T>, turn: &Turn, limit: Duration) -> io::Result<T> {
    match answers.recv_timeout(limit) {
        Ok(answer) => Ok(answer),
        Err(RecvTimeoutError::Timeout) if turn.give_up() => Err(stalled()),
        // Done just as it was given up: its answer is on its way.
        Err(RecvTimeoutError::Timeout) => answers.recv().map_err(|_| ended()),
        Err(RecvTimeoutError::Disconnected) => Err(ended()),
    }
}

/// Run `work` (an operation on a path of the backup's folder: whether a
/// name is taken, a link, a removal) on a thread of its own, waited for
/// at most `limit`.
pub(crate) fn run<T: Send + 'static>(
    limit: Duration,
    work: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> io::Result<T> {
    let (answer, answers) = mpsc::sync_channel(1);
    let turn = Arc::new(Turn::default());
    let its = Arc::clone(&turn);
    std::thread::Builder::new()
        .name("backup-file".into())
        .spawn(move || {
            let done = work();
            let _ = its.done();
            let _ = answer.send(done);
        })?;
    wait(&answers, &turn, limit)?
}

/// What one operation gave back.
enum Done {
    Read(Vec<u8>),
    Wrote,
}

type Job = Box<dyn FnOnce(&mut File) -> io::Result<Done> + Send>;

/// A file whose operations are each bounded in time (see the module).
pub(crate) struct Timed {
    jobs: Option<SyncSender<(Job, Arc<Turn>)>>,
    answers: Receiver<io::Result<Done>>,
    limit: Duration,
}

impl Timed {
    /// The file `open` opens (on the file's thread, as a stalled share
    /// can hang an open too), each operation waited for at most `limit`.
    pub(crate) fn open(
        open: impl FnOnce() -> io::Result<File> + Send + 'static,
        limit: Duration,
    ) -> io::Result<Self> {
        Self::create(open, || {}, limit)
    }

    /// [`Timed::open`] for an open that makes a file: `undo` runs if it
    /// makes it after it was given up (an empty file was left behind).
    pub(crate) fn create(
        open: impl FnOnce() -> io::Result<File> + Send + 'static,
        undo: impl FnOnce() + Send + 'static,
        limit: Duration,
    ) -> io::Result<Self> {
        let (jobs, waiting) = mpsc::sync_channel::<(Job, Arc<Turn>)>(1);
        let (answer, answers) = mpsc::sync_channel(1);
        let (opened, open_result) = mpsc::sync_channel(1);
        let turn = Arc::new(Turn::default());
        let its = Arc::clone(&turn);
        std::thread::Builder::new()
            .name("backup-file".into())
            .spawn(move || {
                let file = open();
                let given_up = its.done();
                let mut file = match file {
                    Ok(file) if given_up => {
                        drop(file);
                        undo();
                        return;
                    }
                    Ok(file) => {
                        let _ = opened.send(Ok(()));
                        file
                    }
                    Err(e) => {
                        let _ = opened.send(Err(e));
                        return;
                    }
                };
                for (job, turn) in waiting {
                    let done = job(&mut file);
                    let _ = turn.done();
                    if answer.send(done).is_err() {
                        return;
                    }
                }
            })?;
        wait(&open_result, &turn, limit)??;
        Ok(Self {
            jobs: Some(jobs),
            answers,
            limit,
        })
    }

    /// Run `job` on the file's thread and wait for it, at most the limit.
    fn run(&mut self, job: Job) -> io::Result<Done> {
        let jobs = self.jobs.as_ref().ok_or_else(stalled)?;
        let turn = Arc::new(Turn::default());
        // Every job before was answered: the channel has room.
        jobs.try_send((job, Arc::clone(&turn)))
            .map_err(|_| ended())?;
        match wait(&self.answers, &turn, self.limit) {
            Ok(done) => done,
            Err(e) => {
                // Given up: its thread ends once the operation does.
                self.jobs = None;
                Err(e)
            }
        }
    }

    /// Make what was written durable.
    pub(crate) fn sync_all(&mut self) -> io::Result<()> {
        self.run(Box::new(|file| file.sync_all().map(|()| Done::Wrote)))
            .map(|_| ())
    }
}

fn stalled() -> io::Error {
    io::Error::new(
        io::ErrorKind::TimedOut,
        "the disk or share stopped answering",
    )
}

fn ended() -> io::Error {
    io::Error::other("the file's thread ended")
}

impl Read for Timed {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let wanted = buf.len();
        match self.run(Box::new(move |file| {
            let mut read = vec![0; wanted];
            let got = file.read(&mut read)?;
            read.truncate(got);
            Ok(Done::Read(read))
        }))? {
            Done::Read(read) => {
                buf[..read.len()].copy_from_slice(&read);
                Ok(read.len())
            }
            Done::Wrote => Err(io::Error::other("a read came back as a write")),
        }
    }
}

impl Write for Timed {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let bytes = buf.to_vec();
        self.run(Box::new(move |file| {
            file.write_all(&bytes).map(|()| Done::Wrote)
        }))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.run(Box::new(|file| file.flush().map(|()| Done::Wrote)))
            .map(|_| ())
    }
}

#[cfg(all(test, unix))]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// Wait (10 s at most) until `done`.
    fn until(done: impl Fn() -> bool) {
        let started = std::time::Instant::now();
        while !done() && started.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn fifo(dir: &std::path::Path, name: &str) -> std::path::PathBuf {
        let fifo = dir.join(name);
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(made.success());
        fifo
    }

    /// A FIFO nobody writes to: opened for reading and writing (so the
    /// open returns), its reads wait for ever.
    #[test]
    fn a_read_that_never_returns_fails_at_the_limit_and_the_file_is_given_up() {
        let dir = tempfile::tempdir().unwrap();
        let stalls = fifo(dir.path(), "stalls");
        let path = stalls.clone();
        let limit = Duration::from_millis(300);
        let mut file = Timed::open(
            move || File::options().read(true).write(true).open(path),
            limit,
        )
        .unwrap();
        let started = std::time::Instant::now();
        let err = file.read(&mut [0; 16]).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert!(started.elapsed() >= limit);
        // (The only test here whose operations stall: the count is its own.)
        assert_eq!(stuck(), 1);
        // Given up: the next call fails at once.
        let started = std::time::Instant::now();
        assert_eq!(
            file.read(&mut [0; 16]).unwrap_err().kind(),
            io::ErrorKind::TimedOut
        );
        assert!(started.elapsed() < limit);
        // An open that never returns (a FIFO opened to read, no writer).
        let closed = fifo(dir.path(), "closed");
        let path = closed.clone();
        let opened = Timed::open(move || File::open(path), limit);
        assert_eq!(
            opened.err().map(|e| e.kind()),
            Some(io::ErrorKind::TimedOut)
        );
        // And a path's operation (the same open, alone).
        let path = closed.clone();
        let ran = run(limit, move || File::open(path).map(drop));
        assert_eq!(ran.err().map(|e| e.kind()), Some(io::ErrorKind::TimedOut));
        assert_eq!(stuck(), 3);
        // The threads left waiting end: one has a byte to read, the other
        // a writer (which goes at once).
        let mut writer = File::options().write(true).open(&stalls).unwrap();
        writer.write_all(b"x").unwrap();
        drop(File::options().write(true).open(&closed).unwrap());
        // And are counted out of the stuck ones as they do.
        until(|| stuck() == 0);
        assert_eq!(stuck(), 0);

        // A file made after its create was given up is removed: an empty
        // `.partial` was left beside the backups. (In this test, as the
        // count of stuck operations is one for the whole process.)
        let made = dir.path().join(".backup.partial");
        let (go, waiting) = mpsc::channel::<()>();
        let (path, undone) = (made.clone(), made.clone());
        let created = Timed::create(
            move || {
                let _ = waiting.recv();
                File::create(path)
            },
            move || drop(std::fs::remove_file(undone)),
            limit,
        );
        assert_eq!(
            created.err().map(|e| e.kind()),
            Some(io::ErrorKind::TimedOut)
        );
        go.send(()).unwrap();
        until(|| stuck() == 0);
        assert_eq!(stuck(), 0);
        // Made by now (counted out once its open returned), then undone.
        until(|| !made.exists());
        assert!(!made.exists());
    }

    #[test]
    fn reads_writes_and_syncs_go_through() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("file");
        let target = path.clone();
        let mut file = Timed::open(move || File::create(target), FILE_STALL).unwrap();
        file.write_all(b"hello, world").unwrap();
        file.flush().unwrap();
        file.sync_all().unwrap();
        drop(file);
        let mut file = Timed::open(move || File::open(path), FILE_STALL).unwrap();
        let mut read = String::new();
        file.read_to_string(&mut read).unwrap();
        assert_eq!(read, "hello, world");
    }
}
