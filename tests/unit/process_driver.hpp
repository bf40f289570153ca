// Drives child processes and task runners with the real poll(2), as the worker's event loop does,
// for the unit tests of child_process and the command and persistent runners. Every wait is
// bounded by a wall-clock limit far beyond what the case needs, so a regression fails the case
// instead of hanging it, and a slow machine only makes it slower.
#pragma once

#include "common/clock.hpp"
#include "exec/child_process.hpp"
#include "worker/task_runner.hpp"

#include <poll.h>
#include <signal.h>
#include <sys/types.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <fstream>
#include <functional>
#include <string>
#include <utility>
#include <vector>

namespace mtask::test {

// Far beyond any case here (each takes milliseconds), far below the commands' 30 s sleeps.
inline constexpr std::chrono::seconds patience{5};

// Polls once, at most until `until` (rounded up to a millisecond, at most 100 ms).
// Returns: the descriptors with their revents.
inline std::vector<pollfd> poll_once(std::vector<pollfd> fds, time_point until) {
  const auto left = std::chrono::ceil<millis>(until - clock::now()).count();
  const int ms = static_cast<int>(std::clamp<std::int64_t>(left, 0, 100));
  ::poll(fds.data(), fds.size(), ms);
  return fds;
}

// Services `p` with the real clock (or `fixed_now` when given) until `done()` or `patience` passed.
// Returns: done() at the end.
inline bool drive(child_process& p, const std::function<bool()>& done, const time_point* fixed_now = nullptr) {
  const auto give_up = clock::now() + patience;
  while (!done() && clock::now() < give_up) {
    std::vector<pollfd> fds;
    p.poll_items(fds);
    fds = poll_once(std::move(fds), std::min(p.deadline().value_or(give_up), give_up));
    p.on_ready(fds, fixed_now != nullptr ? *fixed_now : clock::now());
  }
  return done();
}

// Services `r` (polling its descriptors for real) until `done()` or `patience` passed, telling it the
// time is `fixed_now` when given (to step its restart delays by hand), else the real clock.
// Returns: done() at the end.
inline bool drive(task_runner& r, const std::function<bool()>& done, const time_point* fixed_now = nullptr) {
  const auto give_up = clock::now() + patience;
  while (!done() && clock::now() < give_up) {
    std::vector<pollfd> fds;
    r.poll_items(fds);
    const auto until = fixed_now != nullptr ? clock::now() + millis(10) : r.next_deadline(give_up);
    fds = poll_once(std::move(fds), std::min(until, give_up));
    r.on_ready(fds, fixed_now != nullptr ? *fixed_now : clock::now());
  }
  return done();
}

// Services `r` with the real clock until `want` tasks in all have finished or `patience` passed.
// Returns: the finished tasks, in the order they finished.
inline std::vector<finished_task> run_until_finished(task_runner& r, std::size_t want) {
  std::vector<finished_task> done, batch;
  const auto give_up = clock::now() + patience;
  while (done.size() < want && clock::now() < give_up) {
    std::vector<pollfd> fds;
    r.poll_items(fds);
    fds = poll_once(std::move(fds), std::min(r.next_deadline(give_up), give_up));
    r.on_ready(fds, clock::now());
    r.take_finished(batch);
    for (auto& f : batch) done.push_back(std::move(f));
  }
  return done;
}

inline job_task task(std::uint64_t id, std::string payload) {
  return job_task{.job = 1, .task = wire::task{.id = id, .payload = std::move(payload)}, .terminator = "\n"};
}

// Kills the `sleep` whose pid a test command printed (it left our process groups on purpose, so
// nothing else would end it before its 30 s). Checks the name first: the pid is only a number.
inline void kill_escaped_sleep(const std::string& pid_text) {
  const std::string pid = pid_text.substr(0, pid_text.find('\n'));
  std::ifstream comm("/proc/" + pid + "/comm");
  std::string name;
  if (pid.empty() || !std::getline(comm, name) || name != "sleep") return;
  ::kill(static_cast<pid_t>(std::stol(pid)), SIGKILL);
}

} // namespace mtask::test
