// The worker's event loop: one thread polls the two sockets, every running child's pipes and
// pidfd, and the handler pool's eventfd; tasks run in child processes or on handler threads.
#include "mtask/worker.hpp"

#include "mtask/child_process.hpp"
#include "mtask/clock.hpp"
#include "mtask/error.hpp"
#include "mtask/handler_pool.hpp"
#include "mtask/log.hpp"
#include "mtask/socket.hpp"
#include "mtask/wire.hpp"

#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cstring>
#include <deque>
#include <memory>
#include <optional>
#include <random>
#include <unordered_map>

namespace mtask {
namespace {

std::string worker_name() {
  char host[256] = {};
  ::gethostname(host, sizeof host - 1);
  return fmt::format("{}:{}", host, ::getpid());
}

std::string random_routing_id() {
  std::random_device rd;
  return fmt::format("w{:08x}{:08x}", rd(), rd());
}

// One task, from the moment it arrives until its result is handed to the sink socket.
struct job_task {
  std::uint64_t job = 0;
  wire::task task;
  std::string terminator;
};

struct running_process {
  job_task t;
  std::unique_ptr<child_process> proc;
  time_point started;
  std::optional<time_point> term_sent; // set once the task timed out and got SIGTERM
  bool killed = false;                 // SIGKILL sent after the grace period
};

// Returns: argv with every "{}" replaced by the payload, or nothing when no argument has "{}".
std::optional<std::vector<std::string>> substitute(const std::vector<std::string>& command, std::string_view payload) {
  bool any = false;
  std::vector<std::string> argv = command;
  for (auto& arg : argv) {
    std::size_t pos = 0;
    while ((pos = arg.find("{}", pos)) != std::string::npos) {
      arg.replace(pos, 2, payload);
      pos += payload.size();
      any = true;
    }
  }
  if (!any) return std::nullopt;
  return argv;
}

std::uint64_t micros_since(time_point start, time_point now) {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(now - start).count());
}

// The result skeleton of a task: identity, and the payload only if it failed (for --failures).
wire::result result_for(const job_task& t) {
  return wire::result{.id = t.task.id, .attempt = t.task.attempt, .retries_left = t.task.retries_left};
}

class worker {
public:
  explicit worker(const worker_options& opts)
      : opts_(opts), name_(worker_name()),
        dealer_(connect_socket(ctx_, zmq::socket_type::dealer, opts.common.ventilator, opts.common.policy(),
                               random_routing_id())) {
    if (opts_.common.sink_given) connect_sink(opts_.common.sink);
    if (opts_.handler && !opts_.handler_inline) pool_.emplace(opts_.handler, opts_.slots);
  }

  int run();

private:
  void connect_sink(const std::string& endpoint);
  void handle(const incoming& in, time_point now);
  void start_tasks(time_point now);
  void enforce_timeouts(time_point now);
  [[nodiscard]] time_point next_deadline(time_point fallback) const;
  void finish(running_process& r, time_point now);
  void collect_handlers();
  void complete(const job_task& t, wire::result r);
  void flush_results();
  void send_status();
  // Slots bound what runs; finished results waiting for the sink socket bound how much more starts
  // (so a stalled sink stops the worker instead of piling results up in it).
  [[nodiscard]] bool can_start() const {
    return !backlog_.empty() && processes_.size() + in_pool_.size() < opts_.slots &&
           outbox_.size() < opts_.slots + prefetch();
  }
  [[nodiscard]] std::size_t busy() const {
    return processes_.size() + in_pool_.size() + backlog_.size() + outbox_.size();
  }
  // Tasks to hold beyond the slots, so a slot never waits a round trip for its next task. Sized so
  // the extra tasks are about `prefetch_budget` of work: thousands of micro-tasks, none of 10 ms ones
  // (which would otherwise wait behind a long task here instead of running on an idle worker).
  [[nodiscard]] std::size_t prefetch() const {
    if (opts_.prefetch >= 0) return static_cast<std::size_t>(opts_.prefetch);
    if (runtime_samples_ == 0) return 0;
    const double budget_us = std::chrono::duration<double, std::micro>(prefetch_budget).count() * opts_.slots;
    return static_cast<std::size_t>(std::min(budget_us / std::max(ewma_runtime_us_, 1.0), double(max_prefetch)));
  }
  // Credit offered: idle slots plus prefetch room, less everything received and not yet sent on.
  [[nodiscard]] std::uint32_t free_slots() const {
    const auto capacity = opts_.slots + prefetch();
    return busy() >= capacity ? 0 : static_cast<std::uint32_t>(capacity - busy());
  }
  static constexpr millis prefetch_budget{2};
  static constexpr std::size_t max_prefetch = 4096;

  const worker_options& opts_;
  std::string name_;
  zmq::context_t ctx_;
  zmq::socket_t dealer_;
  std::optional<zmq::socket_t> push_;
  std::string sink_endpoint_;
  std::optional<handler_pool> pool_;

  std::uint64_t job_ = 0;      // job of the last tasks received
  std::uint64_t received_ = 0; // tasks of job_ received
  std::uint64_t completed_job_ = 0;
  std::deque<job_task> backlog_; // received, waiting for a slot (only if the ventilator overshoots)
  std::vector<running_process> processes_;
  std::unordered_map<std::uint64_t, job_task> in_pool_; // keyed by a local sequence number
  std::uint64_t pool_seq_ = 0;
  std::vector<std::pair<std::uint64_t, wire::result>> outbox_; // finished, not yet handed to the sink socket
  bool status_due_ = true;
  time_point vent_seen_{};
  bool vent_heard_ = false; // a ventilator has spoken to us (for --once: its silence ends our service)
  std::uint64_t malformed_ = 0;
  double ewma_runtime_us_ = 0; // moving average of task run times
  std::uint64_t runtime_samples_ = 0;
};

void worker::connect_sink(const std::string& endpoint) {
  if (push_ && endpoint == sink_endpoint_) return;
  push_.emplace(connect_socket(ctx_, zmq::socket_type::push, endpoint, opts_.common.policy()));
  sink_endpoint_ = endpoint;
  log::info("pushing results to '{}'", endpoint);
}

void worker::handle(const incoming& in, time_point now) {
  auto msg = decode_or_count(in, static_cast<std::size_t>(opts_.common.max_message_bytes), malformed_);
  if (!msg) return;
  vent_seen_ = now;
  vent_heard_ = true;
  if (auto* t = std::get_if<wire::tasks_msg>(&*msg)) {
    if (!opts_.common.sink_given) {
      try {
        check_endpoint("sink endpoint", t->sink_endpoint);
        connect_sink(t->sink_endpoint);
      } catch (const error& e) {
        ++malformed_;
        log::warn("dropped tasks: {}", e.what());
        return;
      }
    }
    if (t->job != job_) {
      job_ = t->job;
      received_ = 0;
    }
    received_ += t->tasks.size();
    for (auto& task : t->tasks) backlog_.push_back(job_task{t->job, std::move(task), t->terminator});
    status_due_ = true;
  } else if (auto* v = std::get_if<wire::vent_status>(&*msg)) {
    if (v->complete && completed_job_ != v->job) {
      completed_job_ = v->job;
      status_due_ = true; // tell the ventilator we know, so it need not wait for us
      log::info("job {:016x} complete", v->job);
    }
  } else {
    ++malformed_;
    log::info("dropped a message a ventilator does not send");
  }
}

void worker::start_tasks(time_point now) {
  while (can_start()) {
    job_task t = std::move(backlog_.front());
    backlog_.pop_front();
    if (pool_) {
      pool_->submit(pool_seq_, t.task.payload);
      in_pool_.emplace(pool_seq_++, std::move(t));
    } else if (opts_.handler) {
      auto r = result_for(t);
      const auto started = clock::now();
      try {
        r.output = opts_.handler(t.task.payload);
      } catch (const std::exception& e) {
        r.status = wire::task_status::failed;
        r.code = 1;
        r.error = e.what();
      }
      r.runtime_us = micros_since(started, clock::now());
      complete(t, std::move(r));
    } else {
      auto argv = substitute(opts_.command, t.task.payload);
      std::string input;
      if (!argv) {
        argv = opts_.command;
        input.reserve(t.task.payload.size() + t.terminator.size());
        input.append(t.task.payload).append(t.terminator);
      }
      auto proc = std::make_unique<child_process>(*argv, std::move(input));
      processes_.push_back(running_process{std::move(t), std::move(proc), now});
    }
  }
}

void worker::enforce_timeouts(time_point now) {
  if (opts_.task_timeout_ms <= 0) return;
  for (auto& r : processes_) {
    if (!r.term_sent && now - r.started >= millis(opts_.task_timeout_ms)) {
      r.proc->kill(SIGTERM);
      r.term_sent = now;
      log::info("task {} timed out after {} ms: SIGTERM", r.t.task.id, opts_.task_timeout_ms);
    } else if (r.term_sent && !r.killed && now - *r.term_sent >= millis(opts_.kill_grace_ms)) {
      r.proc->kill(SIGKILL);
      r.killed = true;
    }
  }
}

time_point worker::next_deadline(time_point fallback) const {
  time_point next = fallback;
  if (opts_.task_timeout_ms <= 0) return next;
  for (const auto& r : processes_) {
    if (!r.term_sent) next = std::min(next, r.started + millis(opts_.task_timeout_ms));
    else if (!r.killed) next = std::min(next, *r.term_sent + millis(opts_.kill_grace_ms));
  }
  return next;
}

void worker::finish(running_process& r, time_point now) {
  auto res = result_for(r.t);
  auto& p = *r.proc;
  if (p.start_errno() != 0) {
    res.status = wire::task_status::not_started;
    res.code = p.start_errno();
    res.error = fmt::format("cannot run '{}': {}", opts_.command.front(), std::strerror(p.start_errno()));
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
    if (r.term_sent) {
      res.status = wire::task_status::timed_out;
      res.error = fmt::format("timed out after {} ms{}{}", opts_.task_timeout_ms, res.error.empty() ? "" : ": ", res.error);
    }
  }
  res.runtime_us = micros_since(r.started, now);
  complete(r.t, std::move(res));
}

void worker::collect_handlers() {
  if (!pool_) return;
  for (auto& c : pool_->take_completed()) {
    auto it = in_pool_.find(c.key);
    if (it == in_pool_.end()) continue;
    auto r = result_for(it->second);
    if (c.ok) {
      r.output = std::move(c.output);
    } else {
      r.status = wire::task_status::failed;
      r.code = 1;
      r.error = std::move(c.output);
    }
    r.runtime_us = c.runtime_us;
    complete(it->second, std::move(r));
    in_pool_.erase(it);
  }
}

void worker::complete(const job_task& t, wire::result r) {
  if (r.status != wire::task_status::ok) r.payload = t.task.payload;
  const auto us = static_cast<double>(r.runtime_us);
  ewma_runtime_us_ = runtime_samples_++ == 0 ? us : 0.9 * ewma_runtime_us_ + 0.1 * us;
  outbox_.emplace_back(t.job, std::move(r));
}

void worker::flush_results() {
  if (outbox_.empty() || !push_) return;
  // One message per job; almost always a single job.
  std::size_t sent_upto = 0;
  while (sent_upto < outbox_.size()) {
    wire::results_msg m{.job = outbox_[sent_upto].first, .worker = name_};
    std::size_t end = sent_upto;
    while (end < outbox_.size() && outbox_[end].first == m.job) m.results.push_back(std::move(outbox_[end++].second));
    if (!try_send(*push_, wire::encode(m))) {
      // Not connected to the sink yet, or its queue is full: keep them (they still hold their slots).
      for (std::size_t i = sent_upto; i < end; ++i) outbox_[i].second = std::move(m.results[i - sent_upto]);
      break;
    }
    sent_upto = end;
  }
  if (sent_upto > 0) {
    outbox_.erase(outbox_.begin(), outbox_.begin() + static_cast<std::ptrdiff_t>(sent_upto));
    status_due_ = true; // slots freed: new credit
  }
}

void worker::send_status() {
  wire::worker_status s{.job = job_, .name = name_, .slots = opts_.slots, .free = free_slots(),
                        .received = received_, .completed_job = completed_job_};
  (void)try_send(dealer_, wire::encode(s)); // no ventilator connected: the next heartbeat says it again
  status_due_ = false;
}

int worker::run() {
  log::info("{}: {} slot(s), ventilator '{}'", name_, opts_.slots, opts_.common.ventilator);
  const millis tick(opts_.common.heartbeat_ms);
  auto now = clock::now();
  vent_seen_ = now;
  time_point next_tick = now;
  std::vector<pollfd> fds;
  while (true) {
    if (int sig = stop_signal()) {
      (void)try_send(dealer_, wire::encode(wire::worker_bye{.job = job_}));
      for (auto& r : processes_) r.proc->kill(SIGTERM);
      log::info("stopped by signal {}", sig);
      return 128 + sig;
    }
    if (opts_.once && completed_job_ != 0) {
      send_status();
      return exit_ok;
    }
    start_tasks(now);
    flush_results();
    if (status_due_ || now >= next_tick) {
      send_status();
      next_tick = now + tick;
    }

    std::vector<zmq::pollitem_t> items{{dealer_.handle(), 0, ZMQ_POLLIN, 0}};
    if (push_ && !outbox_.empty()) items.push_back({push_->handle(), 0, ZMQ_POLLOUT, 0});
    if (pool_) items.push_back({nullptr, pool_->fd(), ZMQ_POLLIN, 0});
    const std::size_t first_fd = items.size();
    fds.clear();
    for (const auto& r : processes_) r.proc->poll_items(fds);
    for (const auto& p : fds) {
      // zmq_poll has its own event bits (ZMQ_POLLOUT is not POLLOUT).
      const short ev = static_cast<short>((p.events & POLLIN ? ZMQ_POLLIN : 0) | (p.events & POLLOUT ? ZMQ_POLLOUT : 0));
      items.push_back({nullptr, p.fd, ev, 0});
    }
    auto timeout = std::max(millis(0), std::chrono::duration_cast<millis>(next_deadline(next_tick) - now));
    if (!outbox_.empty() && push_) timeout = std::min(timeout, millis(10)); // retry an unsent batch soon
    if (can_start()) timeout = millis(0); // more work is waiting right here
    try {
      zmq::poll(items, timeout);
    } catch (const zmq::error_t& e) {
      if (e.num() != EINTR) throw;
    }
    now = clock::now();
    for (std::size_t i = 0; i < fds.size(); ++i) {
      const short ev = items[first_fd + i].revents;
      fds[i].revents = static_cast<short>((ev & ZMQ_POLLIN ? POLLIN : 0) | (ev & ZMQ_POLLOUT ? POLLOUT : 0) |
                                          (ev & ZMQ_POLLERR ? POLLERR : 0));
    }
    for (auto& r : processes_) r.proc->on_ready(fds);
    for (auto it = processes_.begin(); it != processes_.end();) {
      if (it->proc->finished()) {
        finish(*it, now);
        it = processes_.erase(it);
      } else {
        ++it;
      }
    }
    collect_handlers();
    enforce_timeouts(now);
    for (int i = 0; i < 1000; ++i) {
      auto in = try_receive(dealer_, false);
      if (!in) break;
      handle(*in, now);
    }
    if (opts_.once && vent_heard_ && now - vent_seen_ > millis(opts_.common.heartbeat_timeout_ms)) {
      log::error("the ventilator at '{}' went away before its job completed", opts_.common.ventilator);
      return exit_failure;
    }
    if (opts_.common.idle_timeout_ms > 0 && now - vent_seen_ > millis(opts_.common.idle_timeout_ms)) {
      log::error("giving up after {} ms without a ventilator at '{}'", opts_.common.idle_timeout_ms,
                 opts_.common.ventilator);
      return exit_failure;
    }
  }
}

} // namespace

task_handler builtin_handler(std::string_view name) {
  if (name == "echo") return [](std::string_view payload) { return std::string(payload); };
  return {};
}

int run_worker(const worker_options& opts) {
  worker w(opts);
  return w.run();
}

} // namespace mtask
