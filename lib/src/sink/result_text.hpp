// How the sink describes a result in text: the stderr line naming a failed task, the --failures
// JSON line, the --jsonl object and --tag's lines. Pure: the sink core writes what these return.
#pragma once

#include "protocol/wire.hpp"

#include <string>
#include <string_view>

namespace mtask::detail {

// "task 3 failed: exit status 4: <stderr tail on one line>".
std::string describe_failure(const wire::result_view& r);
// One JSON object and a newline: id, attempts, status, its code, payload, stderr (--failures).
std::string failure_json(const wire::result_view& r);
// One JSON object and a newline: id, attempts, status, worker, runtime, output (--jsonl).
std::string result_json(const wire::result_view& r, std::string_view worker);
// Appends `output` by the output rule, each of its lines prefixed with `task` and a tab, as
// parallel --tag writes them: the task's arguments joined by spaces (a newline of a -N task, the
// 0x1f between ::: groups, become spaces). An empty output writes nothing.
void append_tagged(std::string& out, std::string_view task, std::string_view output);
// --results: the folder of a task under DIR, in parallel's layout: "1/ARG" for a task, "1/A/2/B"
// for the arguments of ::: groups (joined by 0x1f in the task); a '/' in an argument is written
// "\_" as parallel writes it, an empty argument "\_empty", "." and ".." "\_." and "\_..".
std::string results_folder(std::string_view task);
// --results' status file: "ok", "exit 3", "signal 9", "not started", "timed out"...
std::string status_text(const wire::result_view& r);

} // namespace mtask::detail
