// How the sink describes a result in text: the stderr line naming a failed task, the --failures
// JSON line and the --jsonl object. Pure: the sink core writes what these return.
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

} // namespace mtask::detail
