// The persistent runner: `slots` long-lived processes, a record per task (a line, or framed); a
// process that dies or goes out of step is restarted, after a growing delay if it keeps failing.
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

// A process that ends before it answered anything, and within healthy_period of its start, is
// restarted after a delay that doubles from first_backoff to max_backoff, so a command that dies
// at once does not spin. One that answered a task, or lived that long, is restarted at once and
// the delay starts over.
constexpr millis first_backoff{100};
constexpr millis max_backoff{10000};
constexpr millis healthy_period{10000};

using trouble = persistent_process::trouble;

class persistent_runner final : public task_runner {
 public:
  persistent_runner(std::vector<std::string> command, runner_options opts) : command_(std::move(command)), opts_(opts) {
    slots_.resize(opts_.slots);
    const auto now = clock::now();
    for (auto& s : slots_) spawn(s, now);
  }

  bool has_room() const override {
    return std::any_of(slots_.begin(), slots_.end(),
                       [&](const slot& s) { return accepting(s) && s.proc->in_flight().size() < depth_; });
  }
  std::size_t running() const override { return tasks_.size(); }
  // Tasks ahead per process: the prefetch shared out (rounded down: an extra task waits behind a
  // busy process, where no other process can take it).
  void set_prefetch(std::size_t tasks) override { depth_ = 1 + tasks / slots_.size(); }

  void start(job_task t, time_point now) override {
    const auto& payload = t.task.payload;
    if (opts_.framing == persistent_framing::line && payload.find('\n') != std::string::npos) {
      // One line in, one line out: a multi-line task would desynchronise the conversation.
      wire::result r = result_for(t);
      r.status = wire::task_status::failed;
      r.code = 1;
      r.error = "--persistent takes one-line tasks; this one contains a newline (--persistent=framed takes any bytes)";
      report(t, std::move(r));
      return;
    }
    slot* best = nullptr;
    for (auto& s : slots_) {
      if (accepting(s) && (best == nullptr || s.proc->in_flight().size() < best->proc->in_flight().size())) best = &s;
    }
    if (best == nullptr) { // every process is restarting: back to the worker's queue
      returned_.push_back(std::move(t));
      return;
    }
    best->proc->submit(next_key_, payload);
    tasks_.emplace(next_key_++, pending{std::move(t), now});
  }

  void poll_items(std::vector<pollfd>& fds) const override {
    for (const auto& s : slots_)
      if (s.proc) s.proc->poll_items(fds);
  }

  void on_ready(const std::vector<pollfd>& fds, time_point now) override {
    for (auto& s : slots_) {
      if (!s.proc) {
        if (now < s.restart_at) continue;
        spawn(s, now);
      }
      s.proc->on_ready(fds);
      pass_on_answers(s, now);
      // Nothing after the trouble can be matched to a task: the process goes the way of one that died.
      if (s.proc->trouble_seen() != trouble::none && !s.killed) kill_process(s);
      if (s.proc->dead()) end(s, now);
    }
    enforce_timeouts(now);
  }

  time_point next_deadline(time_point fallback) const override {
    time_point next = fallback;
    for (const auto& s : slots_) {
      if (!s.proc) {
        next = std::min(next, s.restart_at);
      } else if (opts_.task_timeout_ms > 0 && !s.proc->in_flight().empty()) {
        if (!s.term_sent)
          next = std::min(next, s.proc->oldest_since() + millis(opts_.task_timeout_ms));
        else if (!s.killed)
          next = std::min(next, *s.term_sent + millis(opts_.kill_grace_ms));
      }
    }
    return next;
  }

  std::vector<job_task> take_returned() override { return std::exchange(returned_, {}); }
  void stop(int sig) override {
    for (auto& s : slots_)
      if (s.proc) s.proc->kill(sig);
  }

 private:
  struct pending {
    job_task t;
    time_point started;
  };
  struct slot {
    std::unique_ptr<persistent_process> proc; // none while waiting to restart
    time_point started{};
    time_point restart_at{};
    std::optional<time_point> term_sent; // the oldest task timed out: SIGTERM sent at this time
    bool killed = false;                 // SIGKILL sent (after the grace period, or after trouble)
    bool answered = false;               // it passed an answer on since it started
    int quick_ends = 0;                  // ends in a row before it answered anything
  };

  // True while `s` takes new tasks: its process runs and is in step, and no timeout is killing it.
  static bool accepting(const slot& s) {
    return s.proc && !s.proc->dead() && s.proc->trouble_seen() == trouble::none && !s.term_sent && !s.killed;
  }

  void spawn(slot& s, time_point now) {
    s.proc = std::make_unique<persistent_process>(command_, opts_.framing, opts_.max_output_bytes);
    s.started = now;
    s.term_sent.reset();
    s.killed = false;
    s.answered = false;
  }

  // Reports the answers that arrived, each as its task's result; after output with no task pending,
  // the ones that came with it fail instead: which of them is the extra one cannot be known.
  void pass_on_answers(slot& s, time_point now) {
    const bool out_of_step = s.proc->trouble_seen() == trouble::stray_output;
    for (auto& a : s.proc->take_answers()) {
      auto it = tasks_.find(a.key);
      if (it == tasks_.end()) continue;
      wire::result r = result_for(it->second.t);
      r.runtime_us = micros_between(it->second.started, now);
      if (out_of_step) {
        r.status = wire::task_status::failed;
        r.code = 1;
        r.error = desync_error(*s.proc);
      } else {
        s.answered = true;
        r.output = std::move(a.reply.output);
        if (a.reply.status != 0) {
          r.status = wire::task_status::failed;
          r.code = a.reply.status;
          r.error = std::move(a.err);
        }
      }
      report(it->second.t, std::move(r));
      tasks_.erase(it);
    }
  }

  // The process is gone (or never started): settles the tasks it held and schedules its successor.
  // Out of step, every task in flight fails. Otherwise the oldest fails (it was being answered)
  // and the others go back to the worker's queue unrun, unless the process never answered
  // anything and nothing else explains its end: then the command looks broken, not the task, and
  // they fail too (rather than wait out a growing delay per task).
  void end(slot& s, time_point now) {
    const persistent_process& p = *s.proc;
    const trouble t = p.trouble_seen();
    const bool fail_all = t == trouble::stray_output || p.start_errno() != 0;
    const bool oldest_to_blame = s.term_sent.has_value() || t == trouble::too_large;
    const auto& keys = p.in_flight();
    for (std::size_t i = 0; i < keys.size(); ++i) {
      auto it = tasks_.find(keys[i]);
      if (it == tasks_.end()) continue;
      if (i == 0 || fail_all || (!oldest_to_blame && !s.answered)) {
        wire::result r = result_for(it->second.t);
        describe_end(s, i == 0, r);
        r.runtime_us = micros_between(it->second.started, now);
        report(it->second.t, std::move(r));
      } else {
        returned_.push_back(std::move(it->second.t));
      }
      tasks_.erase(it);
    }

    const bool healthy = s.answered || now - s.started >= healthy_period;
    s.quick_ends = healthy ? 0 : std::min(s.quick_ends + 1, 30);
    const millis delay =
        s.quick_ends == 0 ? millis(0) : std::min(max_backoff, first_backoff * (std::int64_t{1} << (s.quick_ends - 1)));
    log::warn("persistent command '{}' {}; restarting it{}", command_.front(), why_ended(s),
              delay.count() > 0 ? fmt::format(" in {} ms", delay.count()) : "");
    s.proc.reset();
    s.restart_at = now + delay;
    if (delay.count() == 0) spawn(s, now);
  }

  // True when the process died of the SIGKILL we sent it after trouble, rather than by itself.
  static bool killed_by_us(const slot& s) {
    const int st = s.proc->wait_status();
    return s.killed && !s.term_sent && st >= 0 && WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL;
  }

  // What ended the process, for the log.
  static std::string why_ended(const slot& s) {
    const persistent_process& p = *s.proc;
    if (p.start_errno() != 0) return fmt::format("cannot start: {}", std::strerror(p.start_errno()));
    const trouble t = p.trouble_seen();
    if (t == trouble::stray_output) return fmt::format("went out of step: it {}", p.trouble_text());
    if (t == trouble::malformed) return fmt::format("broke the framing: {}", p.trouble_text());
    if (t == trouble::too_large) return "answered past --max-output-bytes";
    if (s.term_sent) return "timed out";
    if (killed_by_us(s)) return p.trouble_text();
    const int st = p.wait_status();
    const std::string how = st >= 0 && WIFSIGNALED(st) ? fmt::format("was killed by signal {}", WTERMSIG(st))
                                                       : fmt::format("exited with status {}", exit_status_of(st));
    return t == trouble::cut_short ? fmt::format("{} ({})", how, p.trouble_text()) : how;
  }

  static int exit_status_of(int wait_status) {
    return wait_status >= 0 && WIFEXITED(wait_status) ? WEXITSTATUS(wait_status) : 1;
  }

  // Fills in why a task in flight failed when its process ended; `oldest`: the one it was answering.
  void describe_end(const slot& s, bool oldest, wire::result& r) const {
    const persistent_process& p = *s.proc;
    const trouble t = p.trouble_seen();
    r.status = wire::task_status::failed;
    r.code = 1;
    if (p.start_errno() != 0) {
      r.status = wire::task_status::not_started;
      r.code = p.start_errno();
      r.error = fmt::format("cannot run '{}': {}", command_.front(), std::strerror(p.start_errno()));
      return;
    }
    if (t == trouble::stray_output || t == trouble::malformed) {
      r.error = desync_error(p);
      return;
    }
    const std::string tail = p.error_tail();
    const std::string_view sep = tail.empty() ? "" : ": ";
    if (t == trouble::too_large && oldest) {
      r.status = wire::task_status::too_large;
      r.code = 0;
      const std::string& said = p.trouble_text();
      r.error = fmt::format("output exceeded --max-output-bytes ({} bytes){}{}", opts_.max_output_bytes,
                            said.empty() ? "" : ": ", said);
    } else if (s.term_sent && oldest) {
      r.status = wire::task_status::timed_out;
      r.error = fmt::format("timed out after {} ms{}{}", opts_.task_timeout_ms, sep, tail);
    } else if (killed_by_us(s)) {
      r.error = fmt::format("the persistent command {} with this task pending{}{}", p.trouble_text(), sep, tail);
    } else {
      const int st = p.wait_status();
      if (st >= 0 && WIFSIGNALED(st)) {
        r.status = wire::task_status::signalled;
        r.code = WTERMSIG(st);
      } else {
        r.code = exit_status_of(st);
      }
      r.error = fmt::format("the persistent command exited {} this task{}{}{}",
                            oldest ? "while answering" : "before answering",
                            t == trouble::cut_short ? " (it " + p.trouble_text() + ")" : "", sep, tail);
    }
  }

  static std::string desync_error(const persistent_process& p) {
    if (p.trouble_seen() == trouble::malformed)
      return fmt::format("the persistent command broke the framing: {}", p.trouble_text());
    return fmt::format("the persistent command went out of step: it {}; no answer in flight can be trusted",
                       p.trouble_text());
  }

  void enforce_timeouts(time_point now) {
    if (opts_.task_timeout_ms <= 0) return;
    for (auto& s : slots_) {
      if (!s.proc || s.proc->in_flight().empty()) continue;
      if (!s.term_sent && now - s.proc->oldest_since() >= millis(opts_.task_timeout_ms)) {
        s.proc->kill(SIGTERM);
        s.term_sent = now;
      } else if (s.term_sent && !s.killed && now - *s.term_sent >= millis(opts_.kill_grace_ms)) {
        kill_process(s);
      }
    }
  }

  // SIGKILL to the process group: the end of a timeout's grace, or trouble in the conversation.
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
