// The persistent runner: `slots` long-lived processes, a line per task, restarted when they die.
#include "common/log.hpp"
#include "exec/persistent_process.hpp"
#include "worker/task_runner.hpp"

#include <sys/wait.h>

#include <algorithm>
#include <csignal>
#include <cstring>
#include <optional>
#include <unordered_map>
#include <utility>

namespace mtask {
namespace {

class persistent_runner final : public task_runner {
 public:
  persistent_runner(std::vector<std::string> command, runner_options opts) : command_(std::move(command)), opts_(opts) {
    slots_.resize(opts_.slots);
    for (auto& s : slots_) s.proc = std::make_unique<persistent_process>(command_, opts_.max_output_bytes);
  }

  bool has_room() const override {
    return std::any_of(slots_.begin(), slots_.end(),
                       [&](const slot& s) { return s.proc->in_flight().size() < depth_; });
  }
  std::size_t running() const override { return tasks_.size(); }
  // Lines ahead per process: the prefetch shared out (rounded down: an extra line waits behind a
  // busy process, where no other process can take it).
  void set_prefetch(std::size_t tasks) override { depth_ = 1 + tasks / slots_.size(); }

  void start(job_task t, time_point now) override {
    const auto& payload = t.task.payload;
    if (payload.find('\n') != std::string::npos) {
      // One line in, one line out: a multi-line task would desynchronise the conversation.
      wire::result r = result_for(t);
      r.status = wire::task_status::failed;
      r.code = 1;
      r.error = "--persistent takes one-line tasks; this one contains a newline";
      report(t, std::move(r));
      return;
    }
    auto& s = *std::min_element(slots_.begin(), slots_.end(), [](const slot& a, const slot& b) {
      return a.proc->in_flight().size() < b.proc->in_flight().size();
    });
    s.proc->submit(next_key_, payload);
    tasks_.emplace(next_key_++, pending{std::move(t), now});
  }

  void poll_items(std::vector<pollfd>& fds) const override {
    for (const auto& s : slots_) s.proc->poll_items(fds);
  }

  void on_ready(const std::vector<pollfd>& fds, time_point now) override {
    for (auto& s : slots_) {
      s.proc->on_ready(fds);
      for (auto& [key, line] : s.proc->take_answers()) {
        auto it = tasks_.find(key);
        if (it == tasks_.end()) continue;
        wire::result r = result_for(it->second.t);
        r.output = std::move(line);
        r.runtime_us = micros_between(it->second.started, now);
        report(it->second.t, std::move(r));
        tasks_.erase(it);
      }
      // The line was lost with the stdout closed behind it: no later answer can be matched to its
      // task, so the process goes the way of one that died.
      if (s.proc->line_too_large() && !s.killed) kill_process(s);
      if (s.proc->dead()) restart(s, now);
    }
    enforce_timeouts(now);
  }

  time_point next_deadline(time_point fallback) const override {
    time_point next = fallback;
    if (opts_.task_timeout_ms <= 0) return next;
    for (const auto& s : slots_) {
      if (s.proc->in_flight().empty()) continue;
      if (!s.term_sent)
        next = std::min(next, s.proc->oldest_since() + millis(opts_.task_timeout_ms));
      else if (!s.killed)
        next = std::min(next, *s.term_sent + millis(opts_.kill_grace_ms));
    }
    return next;
  }

  std::vector<job_task> take_returned() override { return std::exchange(returned_, {}); }
  void stop(int sig) override {
    for (auto& s : slots_) s.proc->kill(sig);
  }

 private:
  struct pending {
    job_task t;
    time_point started;
  };
  struct slot {
    std::unique_ptr<persistent_process> proc;
    std::optional<time_point> term_sent; // the oldest line timed out: SIGTERM sent at this time
    bool killed = false;                 // SIGKILL sent (after the grace period, or a line too long)
  };

  // The process died: the line it was answering fails, the lines queued behind it are returned
  // unrun (they did nothing wrong), and a fresh process takes the slot.
  void restart(slot& s, time_point now) {
    const auto& keys = s.proc->in_flight();
    for (std::size_t i = 0; i < keys.size(); ++i) {
      auto it = tasks_.find(keys[i]);
      if (it == tasks_.end()) continue;
      if (i == 0) {
        wire::result r = result_for(it->second.t);
        describe_death(*s.proc, s.term_sent.has_value(), r);
        r.runtime_us = micros_between(it->second.started, now);
        report(it->second.t, std::move(r));
      } else {
        returned_.push_back(std::move(it->second.t));
      }
      tasks_.erase(it);
    }
    if (!keys.empty() || s.proc->start_errno() != 0)
      log::warn("persistent command '{}' died; restarting it", command_.front());
    s.proc = std::make_unique<persistent_process>(command_, opts_.max_output_bytes);
    s.term_sent.reset();
    s.killed = false;
  }

  void describe_death(const persistent_process& p, bool timed_out, wire::result& r) const {
    const int st = p.wait_status();
    if (p.start_errno() != 0) {
      r.status = wire::task_status::not_started;
      r.code = p.start_errno();
      r.error = fmt::format("cannot run '{}': {}", command_.front(), std::strerror(p.start_errno()));
      return;
    }
    if (st >= 0 && WIFSIGNALED(st)) {
      r.status = wire::task_status::signalled;
      r.code = WTERMSIG(st);
    } else {
      r.status = wire::task_status::failed;
      r.code = st >= 0 && WIFEXITED(st) ? WEXITSTATUS(st) : 1;
    }
    std::string tail = p.error_tail();
    r.error =
        fmt::format("the persistent command exited while answering this task{}{}", tail.empty() ? "" : ": ", tail);
    if (p.line_too_large()) {
      r.status = wire::task_status::too_large;
      r.code = 0;
      r.error = fmt::format("output exceeded --max-output-bytes ({} bytes)", opts_.max_output_bytes);
    } else if (timed_out) {
      r.status = wire::task_status::timed_out;
      r.error = fmt::format("timed out after {} ms{}{}", opts_.task_timeout_ms, tail.empty() ? "" : ": ", tail);
    }
  }

  void enforce_timeouts(time_point now) {
    if (opts_.task_timeout_ms <= 0) return;
    for (auto& s : slots_) {
      if (s.proc->in_flight().empty()) continue;
      if (!s.term_sent && now - s.proc->oldest_since() >= millis(opts_.task_timeout_ms)) {
        s.proc->kill(SIGTERM);
        s.term_sent = now;
      } else if (s.term_sent && !s.killed && now - *s.term_sent >= millis(opts_.kill_grace_ms)) {
        kill_process(s);
      }
    }
  }

  // SIGKILL to the process group: the end of a timeout's grace, or an answer line past the limit.
  static void kill_process(slot& s) {
    s.proc->kill(SIGKILL);
    s.killed = true;
  }

  std::vector<std::string> command_;
  runner_options opts_;
  std::size_t depth_ = 1;
  std::vector<slot> slots_;
  std::unordered_map<std::uint64_t, pending> tasks_;
  std::uint64_t next_key_ = 0;
  std::vector<job_task> returned_;
};

} // namespace

std::unique_ptr<task_runner> make_persistent_runner(std::vector<std::string> command, runner_options opts) {
  return std::make_unique<persistent_runner>(std::move(command), opts);
}

} // namespace mtask
