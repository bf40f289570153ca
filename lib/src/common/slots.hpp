// -j's forms, as GNU parallel takes them: N, 0 (as many as we allow), N% of the cores, +N and -N
// relative to the cores. Parsed in one place for mtask-worker, C++ workers and mtask.
#pragma once

#include <optional>
#include <string_view>

namespace mtask {

// The most slots one worker process runs: no form of -j gives more.
inline constexpr unsigned max_slots = 4096;
// What -j 0, "as many as possible", gives: parallel's -j 0 runs as many as its file handles allow,
// about 250 on a default Linux; a fixed number keeps a job's shape the same on every machine.
inline constexpr unsigned zero_slots = 256;

// The cores this process may use, at least 1: the processors its affinity allows, or fewer when
// a cgroup CPU quota (a container's CPU limit: cgroup v2 cpu.max, v1 cfs_quota_us) allows less,
// rounded up.
[[nodiscard]] unsigned core_count();

// Returns: the cores cgroup v2's cpu.max text ("QUOTA PERIOD", or "max PERIOD") allows, rounded
// up; nothing for "max" or text that is not a quota.
[[nodiscard]] std::optional<unsigned> cores_of_cpu_max(std::string_view text);

// Returns: the slots `text` asks for on a machine with `cores` cores: "N" (1..max_slots), "0"
//          (zero_slots), "N%" (N% of the cores, rounded to nearest as parallel does: 75% of 2 is
//          2), "+N" (cores + N) and "-N" (cores - N); never below 1, never above max_slots.
// Throws: usage_error "-j: 'TEXT' is not N, 0, N%, +N or -N" for anything else, and
//         usage_error "-j: N is more than the most slots (4096)" for a plain N over the cap.
[[nodiscard]] unsigned parse_slots(std::string_view text, unsigned cores);

} // namespace mtask
