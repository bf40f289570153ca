// The command runner: a child process per task (its arguments expanded from GNU parallel's replacement
// strings, exec/replacement), with timeouts escalating SIGTERM to SIGKILL and output beyond
// --max-output-bytes failing the task at once; with --dry-run, each task's command line instead.
#include "common/log.hpp"
#include "exec/child_process.hpp"
#include "exec/replacement.hpp"
#include "worker/task_runner.hpp"

#include <sys/wait.h>

#include <csignal>
#include <cstring>
#include <optional>
#include <utility>

namespace mtask {
namespace {

class command_runner final : public task_runner {
 public:
  command_runner(std::vector<std::string> command, runner_options opts)
      : command_(std::move(command), opts.colsep), opts_(std::move(opts)) {}

  bool has_room() const override { return running_.size() < opts_.slots; }
  std::size_t running() const override { return running_.size(); }

  // A command with replacement strings gets the task in its arguments and nothing on stdin;
  // without any, it runs as given with the task (and its terminator) on stdin.
  void start(job_task t, time_point now) override {
    const unsigned slot = slots_.take();
    const task_vars vars{.seq = t.task.id + 1, .slot = slot};
    if (opts_.dry_run) {
      slots_.give_back(slot);
      auto res = result_for(t);
      res.output = command_.dry_run_line(t.task.payload, vars);
      res.output.push_back('\n');
      report(t, std::move(res));
      return;
    }
    const std::vector<std::string>* argv = &command_.argv();
    std::string input;
    if (command_.has_replacements()) {
      command_.expand(t.task.payload, vars, argv_);
      argv = &argv_;
    } else {
      input.reserve(t.task.payload.size() + t.terminator.size());
      input.append(t.task.payload).append(t.terminator);
    }
    std::string command_line;
    if (t.details) { // the joblog's Command: the arguments as they ran (the task went to stdin when none has it)
      for (const auto& a : *argv) command_line.append(command_line.empty() ? "" : " ").append(a);
    }
    auto proc = std::make_unique<child_process>(*argv, std::move(input), opts_.max_output_bytes);
    // Named now: with a replacement string in it, the program differs from task to task.
    std::string not_started;
    if (proc->start_errno() != 0)
      not_started = fmt::format("cannot run '{}': {}", argv->front(), std::strerror(proc->start_errno()));
    running_.push_back(run{std::move(t), std::move(proc), now, slot, std::move(not_started), std::move(command_line)});
  }

  void poll_items(std::vector<pollfd>& fds) const override {
    for (const auto& r : running_) r.proc->poll_items(fds);
  }

  void on_ready(const std::vector<pollfd>& fds, time_point now) override {
    for (auto& r : running_) {
      r.proc->on_ready(fds, now);
      // Its output is already lost: waiting for the command to end would only waste the slot.
      if (r.proc->output_too_large() && !r.killed) kill_group(r);
    }
    for (auto it = running_.begin(); it != running_.end();) {
      if (it->proc->finished()) {
        finish(*it, now);
        it = running_.erase(it);
      } else {
        ++it;
      }
    }
    enforce_timeouts(now);
  }

  time_point next_deadline(time_point fallback) const override {
    time_point next = fallback;
    for (const auto& r : running_) {
      if (auto d = r.proc->deadline()) next = std::min(next, *d);
      if (r.proc->exited()) continue;
      if (r.stopped_at && !r.killed) next = std::min(next, *r.stopped_at + millis(opts_.kill_grace_ms));
      if (opts_.task_timeout_ms <= 0) continue;
      if (!r.term_sent)
        next = std::min(next, r.started + millis(opts_.task_timeout_ms));
      else if (!r.killed)
        next = std::min(next, *r.term_sent + millis(opts_.kill_grace_ms));
    }
    return next;
  }

  // A stopped command (--halt now's cancel, a shutdown) that ignores `sig` gets SIGKILL after the
  // grace a timeout gives it; the grace starts at the next on_ready, which knows the time.
  void stop(int sig) override {
    for (auto& r : running_) {
      r.proc->kill(sig);
      if (!r.stopped_at) r.stop_pending = true;
    }
  }

 private:
  struct run {
    job_task t;
    std::unique_ptr<child_process> proc;
    time_point started;
    unsigned slot = 0;                    // {%}
    std::string not_started;              // why the command could not start
    std::string command_line;             // with details asked: what ran, for the joblog
    std::optional<time_point> term_sent;  // set once the task timed out and got SIGTERM
    bool stop_pending = false;            // stop() signalled it; its grace starts at the next on_ready
    std::optional<time_point> stopped_at; // then: SIGKILL once the grace has passed
    bool killed = false;                  // SIGKILL sent (after the grace period, or output too large)
  };

  // SIGKILL to the command's process group: the end of a timeout's grace, or output past the limit.
  static void kill_group(run& r) {
    r.proc->kill(SIGKILL);
    r.killed = true;
  }

  void enforce_timeouts(time_point now) {
    for (auto& r : running_) {
      if (r.proc->exited() || r.killed) continue;
      if (r.stop_pending) {
        r.stop_pending = false;
        r.stopped_at = now;
      } else if (r.stopped_at && now - *r.stopped_at >= millis(opts_.kill_grace_ms)) {
        kill_group(r);
      }
    }
    if (opts_.task_timeout_ms <= 0) return;
    for (auto& r : running_) {
      // Once the command has exited only the grace for its pipes is left, and it ends on its own:
      // a timeout falling in it must not turn the command's own exit into "timed out".
      if (r.proc->exited()) continue;
      if (!r.term_sent && now - r.started >= millis(opts_.task_timeout_ms)) {
        r.proc->kill(SIGTERM);
        r.term_sent = now;
        log::info("task {} timed out after {} ms: SIGTERM", r.t.task.id, opts_.task_timeout_ms);
      } else if (r.term_sent && !r.killed && now - *r.term_sent >= millis(opts_.kill_grace_ms)) {
        kill_group(r);
      }
    }
  }

  void finish(run& r, time_point now) {
    slots_.give_back(r.slot);
    wire::result res = result_for(r.t);
    if (r.t.details) res.command = std::move(r.command_line);
    auto& p = *r.proc;
    if (p.start_errno() != 0) {
      res.status = wire::task_status::not_started;
      res.code = p.start_errno();
      res.error = std::move(r.not_started);
    } else {
      int st = p.wait_status();
      if (WIFEXITED(st)) {
        res.code = WEXITSTATUS(st);
        res.status = res.code == 0 ? wire::task_status::ok : wire::task_status::failed;
      } else if (WIFSIGNALED(st)) {
        res.code = WTERMSIG(st);
        res.status = wire::task_status::signalled;
      }
      res.output = std::move(p.output());
      res.error = p.error_tail();
      if (p.output_too_large()) {
        res.status = wire::task_status::too_large;
        res.code = 0;
        res.error = fmt::format("output exceeded --max-output-bytes ({} bytes)", opts_.max_output_bytes);
      } else if (r.term_sent) {
        res.status = wire::task_status::timed_out;
        res.error =
            fmt::format("timed out after {} ms{}{}", opts_.task_timeout_ms, res.error.empty() ? "" : ": ", res.error);
      }
    }
    res.runtime_us = micros_between(r.started, now);
    report(r.t, std::move(res));
  }

  command_template command_;
  runner_options opts_;
  std::vector<run> running_;
  slot_numbers slots_;
  std::vector<std::string> argv_; // the expanded command, its strings reused from task to task
};

} // namespace

std::unique_ptr<task_runner> make_command_runner(std::vector<std::string> command, runner_options opts) {
  return std::make_unique<command_runner>(std::move(command), opts);
}

} // namespace mtask
