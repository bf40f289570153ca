// SIGINT/SIGTERM as an event the poll loops can wait on: the handler records the signal and writes
// a byte to a self-pipe that every loop polls, so a signal wakes the loop at once.
#pragma once

namespace mtask {

// Installs SIGINT/SIGTERM handlers that record the signal and wake stop_signal_fd(); ignores
// SIGPIPE. Called once per process (again after a fork: the child gets its own pipe).
void install_stop_handlers();

// Returns: the signal that asked us to stop, or 0.
int stop_signal();

// Returns: the read end of the self-pipe (readable once a stop signal came), or -1 before
// install_stop_handlers(). Why not just EINTR: the signal may land on another thread (a handler
// pool's), or between a loop's look at stop_signal() and its poll; either way the poll would sleep
// until its timeout, up to a minute. A byte in a pipe is seen whichever thread and whenever.
int stop_signal_fd();

// Empties the self-pipe after a wake-up, so that the next poll blocks again; stop_signal() stays.
void drain_stop_signal_fd();

} // namespace mtask
