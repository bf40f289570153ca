// -j's forms (N, 0, N%, +N, -N) turned into a slot count.
#include "common/slots.hpp"

#include "mtask/error.hpp"

#include <sched.h>

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <thread>

namespace mtask {
namespace {

[[noreturn]] void bad(std::string_view text) {
  throw usage_error(fmt::format("-j: '{}' is not N, 0, N%, +N or -N", text));
}

// Decimal digits only (no sign, no space); values past 10^6 are as good as infinite here.
std::uint64_t number(std::string_view digits, std::string_view text) {
  if (digits.empty() || !std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; }))
    bad(text);
  std::uint64_t v = 0;
  const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), v);
  if (ec != std::errc() || end != digits.data() + digits.size() || v > 1000000) return 1000000;
  return v;
}

unsigned clamp_slots(std::uint64_t v) { return static_cast<unsigned>(std::clamp<std::uint64_t>(v, 1, max_slots)); }

} // namespace

std::optional<unsigned> cores_of_cpu_max(std::string_view text) {
  const auto space = text.find(' ');
  if (space == std::string_view::npos) return std::nullopt;
  const auto quota_text = text.substr(0, space);
  auto period_text = text.substr(space + 1);
  while (!period_text.empty() && (period_text.back() == '\n' || period_text.back() == ' '))
    period_text.remove_suffix(1);
  std::int64_t quota = 0;
  std::int64_t period = 0;
  if (std::from_chars(quota_text.data(), quota_text.data() + quota_text.size(), quota).ec != std::errc() ||
      std::from_chars(period_text.data(), period_text.data() + period_text.size(), period).ec != std::errc() ||
      quota <= 0 || period <= 0) {
    return std::nullopt; // "max": no limit
  }
  return static_cast<unsigned>(std::max<std::int64_t>(1, (quota + period - 1) / period));
}

namespace {

std::string read_small_file(const std::string& path) {
  std::ifstream in(path);
  std::string text;
  std::getline(in, text, '\0');
  return text;
}

// The tightest CPU quota of our cgroup and its parents (a container's limit is often set on a
// parent of the cgroup we run in): cgroup v2's cpu.max, or v1's cpu controller. Inside a container
// the paths in /proc/self/cgroup may not exist under its /sys/fs/cgroup: the walk up to the root
// reads the container's own files there.
std::optional<unsigned> cgroup_cores() {
  std::optional<unsigned> best;
  const auto take = [&](std::optional<unsigned> c) {
    if (c && (!best || *c < *best)) best = c;
  };
  std::istringstream lines(read_small_file("/proc/self/cgroup"));
  for (std::string line; std::getline(lines, line);) {
    // "ID:CONTROLLERS:PATH": ID 0 with no controllers is v2; v1's cpu may be mounted as "cpu,cpuacct".
    const auto first = line.find(':');
    const auto second = line.find(':', first + 1);
    if (first == std::string::npos || second == std::string::npos) continue;
    // Built by appends: GCC 12 at -O3 warns (-Wrestrict, a false positive) on "," + substr(...).
    std::string controllers = ",";
    controllers.append(line, first + 1, second - first - 1).push_back(',');
    const bool v2 = line.compare(0, second + 1, "0::") == 0;
    if (!v2 && controllers.find(",cpu,") == std::string::npos) continue;
    // Our cgroup, then each parent up to the root ("/a/b", "/a", ""): a view, so no string is
    // reassigned in the loop (GCC 12 at -O3 warns, -Wrestrict, a false positive, on that too).
    const std::string full = line.substr(second + 1);
    std::string_view path = full;
    while (true) {
      const std::string dir = std::string(v2 ? "/sys/fs/cgroup" : "/sys/fs/cgroup/cpu").append(path);
      if (v2) {
        take(cores_of_cpu_max(read_small_file(dir + "/cpu.max")));
      } else if (const auto quota = read_small_file(dir + "/cpu.cfs_quota_us"); !quota.empty()) {
        take(cores_of_cpu_max(quota.substr(0, quota.find('\n')) + " " + read_small_file(dir + "/cpu.cfs_period_us")));
      }
      if (path.empty() || path == "/") break;
      path = path.substr(0, path.rfind('/'));
    }
  }
  return best;
}

} // namespace

unsigned core_count() {
  // The processors we may run on (taskset, a cpuset), then what a CPU quota (a container's CPU
  // limit) lets us use: -j from a 64-core node's count in a pod limited to 2 CPUs would run 64
  // tasks on 2 CPUs' worth of time. As Go's runtime and the JVM read it; nproc reads only the first.
  unsigned cores = std::max(1u, std::thread::hardware_concurrency());
  cpu_set_t set;
  CPU_ZERO(&set);
  if (::sched_getaffinity(0, sizeof set, &set) == 0) cores = std::max(1, CPU_COUNT(&set));
  if (const auto limit = cgroup_cores()) cores = std::min(cores, *limit);
  return cores;
}

unsigned parse_slots(std::string_view text, unsigned cores) {
  cores = std::max(1u, cores);
  if (text.empty()) bad(text);
  if (text.front() == '+') return clamp_slots(cores + number(text.substr(1), text));
  if (text.front() == '-') {
    const std::uint64_t less = number(text.substr(1), text);
    return less >= cores ? 1u : clamp_slots(cores - less);
  }
  if (text.back() == '%') {
    const std::uint64_t percent = number(text.substr(0, text.size() - 1), text);
    return clamp_slots((cores * percent + 50) / 100);
  }
  const std::uint64_t n = number(text, text);
  if (n == 0) return zero_slots;
  if (n > max_slots) throw usage_error(fmt::format("-j: {} is more than the most slots ({})", text, max_slots));
  return static_cast<unsigned>(n);
}

} // namespace mtask
