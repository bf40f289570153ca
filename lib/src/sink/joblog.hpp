// --joblog: one line per attempt in GNU parallel's joblog format, so the tools that read parallel's
// joblogs read ours. Pure text; the sink's loop writes it.
#pragma once

#include "protocol/wire.hpp"

#include <string>
#include <string_view>

namespace mtask {

// The header line, with its newline: "Seq\tHost\tStarttime\tJobRuntime\tSend\tReceive\tExitval\tSignal\tCommand\n".
std::string_view joblog_header();

// Appends the line of one attempt: Seq (the task's id + 1, as parallel counts), Host (the worker's
// name), Starttime (seconds since the epoch with millis, on the worker's clock), JobRuntime
// (seconds, "%10.3f" as parallel pads it), Send (payload bytes), Receive (output bytes), Exitval
// and Signal (parallel's split of the wait status; -1 and 0 when no process status exists: timed
// out is -1 with SIGTERM's number, a lost worker or a result too large -1 and 0, a command that
// could not start 127), Command (what ran; tabs and newlines in it become spaces, one line per
// attempt). Fields that travel only with details (start, send, command) are 0 or empty when the
// worker did not send them.
void append_joblog_line(std::string& out, const wire::result_view& r, std::string_view worker);

// Returns: what ran for an attempt: its command line, or its payload when it has none (a
// built-in, a handler, a persistent command: the worker sends the payload once, not twice).
inline std::string_view what_ran(const wire::result_view& r) { return r.command.empty() ? r.payload : r.command; }

} // namespace mtask
