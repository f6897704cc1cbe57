//! The terminal runner: raw mode and the alternate screen (restored on exit, on error and
//! on panic), input read on its own thread, redraws only when something happened — a key,
//! a resize, data, a background result, or the once-a-second tick. Idle, the process
//! sleeps: nothing polls.

use crate::app::{App, AppOptions, Command, Event};
use crate::exec::{ExecOptions, Executor};
use crate::ui;
use engine::store::Store;
use jiff::Timestamp;
use ratatui::crossterm::event::{self as term, Event as TermEvent};
use std::io;
use std::time::Duration;
use tokio::sync::mpsc;

/// How the TUI runs.
#[derive(Debug, Clone)]
pub struct Options {
    pub exec: ExecOptions,
    /// Start the poller when no daemon runs on the store.
    pub autostart_poller: bool,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            exec: ExecOptions::default(),
            autostart_poller: true,
        }
    }
}

/// Restores the terminal when dropped, whatever ended the loop.
struct Restore;

impl Drop for Restore {
    fn drop(&mut self) {
        ratatui::restore();
    }
}

/// Runs the TUI on `store` until the person quits. The delivery tables must exist
/// (`migrate_delivery`). When its own poller runs, it is stopped cleanly before returning.
pub async fn run<S>(store: S, options: Options) -> io::Result<()>
where
    S: Store,
{
    // Raw mode, the alternate screen, and a panic hook that restores both.
    let mut terminal = ratatui::try_init()?;
    let restore = Restore;
    let executor = Executor::new(store, options.exec.clone());
    let result = event_loop(&mut terminal, &executor, &options).await;
    drop(restore);
    if executor.poller_running() {
        eprintln!("odoo-bridge tui: stopping the poller (in-flight cycles finish first)…");
    }
    executor.stop_poller().await;
    result
}

async fn event_loop<S>(
    terminal: &mut ratatui::DefaultTerminal,
    executor: &Executor<S>,
    options: &Options,
) -> io::Result<()>
where
    S: Store,
{
    let (events, mut incoming) = mpsc::unbounded_channel::<Event>();
    spawn_input_reader(events.clone());
    let mut app = App::new(
        AppOptions {
            worker_id: options.exec.worker_id.clone(),
            autostart_poller: options.autostart_poller,
            ..AppOptions::default()
        },
        Timestamp::now(),
    );
    let size = terminal.size()?;
    app.handle(Event::Resize {
        width: size.width,
        height: size.height,
    });
    for command in app.start() {
        executor.spawn(command, events.clone());
    }
    let mut ticks = tokio::time::interval(Duration::from_secs(1));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        terminal.draw(|frame| ui::draw(frame, &app))?;
        let event = tokio::select! {
            event = incoming.recv() => match event {
                Some(event) => event,
                None => return Ok(()),
            },
            _ = ticks.tick() => Event::Tick(Timestamp::now()),
        };
        let mut quit = false;
        for command in app.handle(event) {
            if command == Command::Quit {
                quit = true;
            } else {
                executor.spawn(command, events.clone());
            }
        }
        if quit {
            return Ok(());
        }
    }
}

/// Reads the terminal's events on a thread of its own, blocked in `read` between them.
fn spawn_input_reader(events: mpsc::UnboundedSender<Event>) {
    std::thread::spawn(move || {
        loop {
            let event = match term::read() {
                Ok(TermEvent::Key(key)) => Event::Key(key),
                Ok(TermEvent::Resize(width, height)) => Event::Resize { width, height },
                Ok(_) => continue,
                Err(_) => break,
            };
            if events.send(event).is_err() {
                break;
            }
        }
    });
}
