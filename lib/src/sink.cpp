// The sink's event loop. See docs/ARCHITECTURE.md for the message flow it implements.
#include "mtask/sink.hpp"

#include "mtask/clock.hpp"
#include "mtask/done_set.hpp"
#include "mtask/error.hpp"
#include "mtask/json.hpp"
#include "mtask/log.hpp"
#include "mtask/output_writer.hpp"
#include "mtask/reorder_buffer.hpp"
#include "mtask/socket.hpp"
#include "mtask/wire.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <limits>

namespace mtask {
namespace {

// stderr lines name a failed task by its input position, its outcome and the tail of its stderr.
std::string describe_failure(const wire::result_view& r) {
  std::string what;
  switch (r.status) {
    case wire::task_status::failed: what = fmt::format("exit status {}", r.code); break;
    case wire::task_status::signalled: what = fmt::format("killed by signal {}", r.code); break;
    default: what = std::string(wire::to_string(r.status)); break;
  }
  std::string tail(r.error);
  while (!tail.empty() && (tail.back() == '\n' || tail.back() == '\r')) tail.pop_back();
  for (auto& c : tail) {
    if (c == '\n') c = '|'; // one line per failure
  }
  return tail.empty() ? fmt::format("task {} failed: {}", r.id, what)
                      : fmt::format("task {} failed: {}: {}", r.id, what, tail);
}

// Appends "id", "attempts", "status" and, per status, the code that explains it
// ("exit_status", "signal", "errno" or "crashes"): shared by --failures and --jsonl.
void append_outcome(std::string& j, const wire::result_view& r) {
  j += fmt::format("\"id\":{},\"attempts\":{},\"status\":", r.id, r.attempt);
  append_json_string(j, wire::to_string(r.status));
  switch (r.status) {
    case wire::task_status::failed: j += fmt::format(",\"exit_status\":{}", r.code); break;
    case wire::task_status::signalled: j += fmt::format(",\"signal\":{}", r.code); break;
    case wire::task_status::not_started: j += fmt::format(",\"errno\":{}", r.code); break;
    case wire::task_status::crashed: j += fmt::format(",\"crashes\":{}", r.code); break;
    default: break;
  }
}

// One JSON object per line describing a task that failed for good (--failures).
std::string failure_json(const wire::result_view& r) {
  std::string j = "{";
  append_outcome(j, r);
  j += ",\"payload\":";
  append_json_string(j, r.payload);
  j += ",\"stderr\":";
  append_json_string(j, r.error);
  j += "}\n";
  return j;
}

// One JSON object per line describing any result (--jsonl).
std::string result_json(const wire::result_view& r, std::string_view worker) {
  std::string j = "{";
  append_outcome(j, r);
  j += ",\"worker\":";
  append_json_string(j, worker);
  j += fmt::format(",\"runtime_us\":{},\"output\":", r.runtime_us);
  append_json_string(j, r.output);
  if (r.status != wire::task_status::ok) {
    j += ",\"stderr\":";
    append_json_string(j, r.error);
  }
  j += "}\n";
  return j;
}

// Opens --failures for writing (truncating), or returns -1 when not asked for.
// Throws: error "cannot open 'PATH' for writing: reason".
int open_failures(const std::string& path) {
  if (path.empty()) return -1;
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw error(fmt::format("cannot open '{}' for writing: {}", path, std::strerror(errno)));
  return fd;
}

class sink {
 public:
  explicit sink(const sink_options& opts)
      : opts_(opts),
        failures_fd_(open_failures(opts.failures_path)),
        pull_(bind_socket(ctx_, zmq::socket_type::pull, opts.common.sink, opts.common.policy())),
        dealer_(connect_socket(ctx_, zmq::socket_type::dealer, opts.common.ventilator, opts.common.policy())),
        out_(STDOUT_FILENO),
        failures_(failures_fd_ >= 0 ? failures_fd_ : STDERR_FILENO),
        aggregator_(opts.make_aggregator ? opts.make_aggregator() : nullptr) {}
  ~sink() {
    if (failures_fd_ >= 0) ::close(failures_fd_);
  }
  sink(const sink&) = delete;
  sink& operator=(const sink&) = delete;

  int run();
  // Tells the ventilator this sink is giving up, so it does not wait for us, and waits (boundedly)
  // for its answering abort: ZeroMQ's linger does not reliably deliver a last message (libzmq#4660).
  void abort_job(const std::string& reason) {
    (void)try_send(dealer_, wire::encode(wire::abort_msg{.job = job_, .reason = reason}));
    if (vent_aborted_ || job_ == 0) return; // the ventilator is already leaving, or never knew us
    const auto deadline = clock::now() + millis(opts_.common.heartbeat_timeout_ms);
    while (clock::now() < deadline) {
      std::vector<zmq::pollitem_t> items{{dealer_.handle(), 0, ZMQ_POLLIN, 0}};
      poll_items(items, millis(10));
      while (auto in = try_receive(dealer_, false)) {
        auto msg = decode_or_count(*in, static_cast<std::size_t>(opts_.common.max_message_bytes), malformed_);
        if (msg && std::holds_alternative<wire::abort_msg>(*msg)) return;
      }
    }
  }

 private:
  void handle_control(const incoming& in, time_point now);
  void handle_results(const incoming& in);
  void accept(const wire::result_view& r, std::string_view worker);
  void emit(const wire::result_view& r, std::string_view worker);
  void send_status();
  void update_held_back();
  void send_complete() {
    (void)try_send(dealer_, wire::encode(wire::complete{.job = job_, .total = done_.size(), .failed = failed_}));
  }
  [[nodiscard]] bool all_written() const {
    if (total_ < 0) return false;
    auto t = static_cast<std::uint64_t>(total_);
    return done_.size() == t && (!opts_.keep_order || aggregator_ || order_.next() == t);
  }

  const sink_options& opts_;
  int failures_fd_;
  zmq::context_t ctx_;
  zmq::socket_t pull_;
  zmq::socket_t dealer_;
  // stdout, written from a thread of its own: a slow reader holds results back, not the loop.
  background_writer out_;
  output_writer failures_;    // used only with --failures
  bool output_final_ = false; // the aggregate (if any) is written: nothing more will be
  bool held_back_ = false;    // stdout's backlog is over output_limit: results wait in the socket
  // Bytes waiting for stdout beyond which the sink stops taking results.
  static constexpr std::size_t output_limit = 4u << 20;
  done_set done_;
  reorder_buffer order_;
  std::unique_ptr<aggregator> aggregator_;

  std::uint64_t job_ = 0;
  std::int64_t total_ = -1;
  std::vector<wire::ack> acks_;           // non-final failures, for the ventilator to retry
  std::vector<wire::id_range> done_runs_; // final results not yet acknowledged
  time_point vent_seen_{};
  std::uint64_t failed_ = 0;
  std::uint64_t retried_ = 0; // failures with retries left: acknowledged, not written
  std::uint64_t duplicates_ = 0;
  std::uint64_t foreign_ = 0; // results of another job
  std::uint64_t malformed_ = 0;
  bool completed_acked_ = false;
  bool vent_aborted_ = false;
  bool status_retry_ = false; // the last status could not be sent
  std::string frame_;         // reused encoding buffer
  wire::results_view batch_;  // reused decoding buffer for results
};

void sink::update_held_back() {
  // Hysteresis: hold back above the limit, take results again once stdout has drained to a quarter
  // of it (not at every batch that crosses the line).
  const auto backlog = out_.backlog();
  const bool now_held = held_back_ ? backlog > output_limit / 4 : backlog >= output_limit;
  if (now_held == held_back_) return;
  held_back_ = now_held;
  if (held_back_) log::info("stdout is slow: holding results back until it drains");
  send_status(); // the ventilator learns at once whether unacknowledged results are only waiting
}

void sink::send_status() {
  wire::sink_status s{
      .job = job_,
      .written_below = opts_.keep_order && !aggregator_ ? order_.next() : std::numeric_limits<std::uint64_t>::max(),
      .acks = std::move(acks_),
      .done = std::move(done_runs_),
      .held_back = held_back_};
  acks_.clear();
  done_runs_.clear();
  wire::encode_to(frame_, s);
  status_retry_ = !try_send(dealer_, frame_);
  if (status_retry_) {
    // Not connected, or its queue is full: an ack must not be lost (the ventilator would hold that
    // task forever), so keep them for the next attempt, a few ms from now.
    log::debug("could not reach the ventilator");
    acks_.insert(acks_.begin(), s.acks.begin(), s.acks.end());
    done_runs_.insert(done_runs_.begin(), s.done.begin(), s.done.end());
  }
}

void sink::handle_control(const incoming& in, time_point now) {
  auto decoded = decode_or_count(in, static_cast<std::size_t>(opts_.common.max_message_bytes), malformed_);
  if (!decoded) return;
  wire::message& msg = *decoded;
  if (auto* j = std::get_if<wire::job_info>(&msg)) {
    if (job_ == 0) {
      job_ = j->job;
      log::info("serving job {:016x}", job_);
      send_status(); // confirm at once: the ventilator dispatches only after this
    }
    if (j->job != job_) {
      ++foreign_;
      return;
    }
    vent_seen_ = now;
    if (j->total >= 0 && total_ < 0) {
      total_ = j->total;
      log::info("the job has {} tasks", total_);
    }
  } else if (auto* c = std::get_if<wire::complete_ack>(&msg)) {
    if (c->job == job_) completed_acked_ = true;
  } else if (auto* q = std::get_if<wire::results_msg>(&msg)) {
    // Tasks the ventilator quarantined itself (their workers kept dying): final failures.
    if (q->job != job_ || job_ == 0) {
      ++foreign_;
      return;
    }
    for (const auto& r : q->results) accept(wire::view_of(r), q->worker);
  } else if (auto* a = std::get_if<wire::abort_msg>(&msg)) {
    if (a->job == job_ || job_ == 0) {
      vent_aborted_ = true;
      throw error(fmt::format("the ventilator gave up: {}", a->reason));
    }
    ++foreign_;
  } else {
    ++malformed_;
    log::info("dropped a message a ventilator does not send");
  }
}

void sink::handle_results(const incoming& in) {
  // Decoded as views into the frame, into a reused batch: an output is copied once, to stdout.
  const auto max = static_cast<std::size_t>(opts_.common.max_message_bytes);
  if (!decode_or_count(in, malformed_, [&](std::string_view frame) { wire::decode_results(frame, batch_, max); }))
    return;
  if (job_ == 0 || batch_.job != job_) {
    foreign_ += batch_.results.size();
    log::info("dropped {} result(s) of another job", batch_.results.size());
    return;
  }
  for (const auto& r : batch_.results) accept(r, batch_.worker);
}

void sink::accept(const wire::result_view& r, std::string_view worker) {
  if (total_ >= 0 && r.id >= static_cast<std::uint64_t>(total_)) {
    ++malformed_;
    log::info("dropped a result for task {}, beyond the job's {} tasks", r.id, total_);
    return;
  }
  if (done_.contains(r.id)) {
    ++duplicates_;
    return;
  }
  if (!r.final()) {
    acks_.push_back(wire::ack{.id = r.id, .attempt = r.attempt, .status = r.status});
    // The ventilator runs it again; only the final outcome is written.
    ++retried_;
    log::info("task {} failed on attempt {} ({} retries left)", r.id, r.attempt, r.retries_left);
    return;
  }
  done_.insert(r.id);
  wire::append_id(done_runs_, r.id);
  if (r.status != wire::task_status::ok) {
    ++failed_;
    log::warn("{}", describe_failure(r));
    if (failures_fd_ >= 0) failures_.write(failure_json(r));
  }
  emit(r, worker);
}

void sink::emit(const wire::result_view& r, std::string_view worker) {
  if (aggregator_) {
    if (r.status != wire::task_status::ok) return; // its output is not a result to reduce
    try {
      aggregator_->add(r.id, r.output);
    } catch (const error& e) {
      // Bad data from one task: named, counted as a failure, and left out of the total.
      ++failed_;
      log::error("{}", e.what());
    }
    return;
  }
  if (!opts_.jsonl && !opts_.keep_order) {
    out_.write(r.output); // the common case: straight from the frame to the output buffer
    return;
  }
  std::string bytes;
  if (opts_.jsonl) {
    bytes = result_json(r, worker);
  } else {
    append_result(bytes, r.output);
  }
  if (opts_.keep_order) {
    order_.put(r.id, std::move(bytes));
    while (auto ready = order_.pop()) out_.write(*ready);
  } else {
    out_.write(bytes);
  }
}

int sink::run() {
  log::info("bound '{}', ventilator '{}'", opts_.common.sink, opts_.common.ventilator);
  const millis tick(opts_.common.heartbeat_ms);
  const millis heartbeat_timeout(opts_.common.heartbeat_timeout_ms);
  auto now = clock::now();
  vent_seen_ = now;
  time_point next_tick = now;
  std::optional<time_point> completing_since;
  while (true) {
    if (int sig = stop_signal()) {
      try {
        (void)out_.wait_drained(heartbeat_timeout); // what a stuck reader does not take is lost
      } catch (const error& e) {
        log::error("{}", e.what()); // still a stop by signal, and said so
      }
      if (failures_fd_ >= 0) failures_.flush();
      log::warn("stopped by signal {} with {} result(s) written", sig, done_.size());
      abort_job(fmt::format("the sink was stopped by signal {}", sig));
      return 128 + sig;
    }
    if (!acks_.empty() || !done_runs_.empty() || status_retry_) send_status();
    if (all_written()) {
      if (!output_final_) {
        if (aggregator_) out_.write(aggregator_->finish());
        output_final_ = true;
        out_.flush();
      }
      // The results are out before we claim they are; until then the loop goes on (heartbeats
      // included) while the writer thread waits for the reader.
      if (!completing_since && out_.drained()) {
        if (failures_fd_ >= 0) failures_.flush();
        completing_since = now;
        send_complete();
      }
      if (completing_since && (completed_acked_ || now - *completing_since > heartbeat_timeout)) break;
    }
    if (now >= next_tick) {
      send_status();
      if (completing_since) send_complete();
      next_tick = now + tick;
    }
    out_.flush(); // before waiting: whatever is ready goes to the writer thread now
    update_held_back();
    // A status that could not be sent waits for the connection (ZMQ_IMMEDIATE: the dealer is
    // writable only once connected), so it goes out the moment the ventilator is there.
    const auto dealer_events = static_cast<short>(status_retry_ ? ZMQ_POLLIN | ZMQ_POLLOUT : ZMQ_POLLIN);
    // Held back, results are left in the socket (ZeroMQ's queues then stop the workers). The
    // writer thread's eventfd says when stdout has taken a batch; it is polled only when something
    // waits on that (a batch not yet handed over, held-back results, the end of the job), or each
    // batch it writes would wake the loop once more for nothing.
    const bool wait_for_writer = out_.has_pending() || held_back_ || (output_final_ && !out_.drained());
    std::vector<zmq::pollitem_t> items{{dealer_.handle(), 0, dealer_events, 0},
                                       {nullptr, out_.fd(), static_cast<short>(wait_for_writer ? ZMQ_POLLIN : 0), 0},
                                       {pull_.handle(), 0, static_cast<short>(held_back_ ? 0 : ZMQ_POLLIN), 0}};
    auto timeout = std::max(millis(0), std::chrono::duration_cast<millis>(next_tick - now));
    if (status_retry_) timeout = std::min(timeout, millis(10));
    poll_items(items, timeout);
    now = clock::now();
    if (items[1].revents != 0) out_.on_ready();
    for (int i = 0; i < 1000; ++i) {
      auto in = try_receive(dealer_, false);
      if (!in) break;
      handle_control(*in, now);
    }
    for (int i = 0; i < 1000 && !held_back_; ++i) {
      auto in = try_receive(pull_, false);
      if (!in) break;
      handle_results(*in);
      if (out_.backlog() >= output_limit) out_.flush(); // keep the writer thread busy
      update_held_back();
      // Acknowledge each batch as soon as it is taken, not after the whole backlog: the
      // ventilator's window frees only on acks, and waiting for a dozen queued batches here left
      // every worker idle for milliseconds at a time.
      if (!status_retry_ && (!acks_.empty() || !done_runs_.empty())) send_status();
    }
    if (opts_.common.idle_timeout_ms > 0 && !completing_since &&
        now - vent_seen_ > millis(opts_.common.idle_timeout_ms)) {
      (void)out_.wait_drained(heartbeat_timeout);
      log::error("giving up after {} ms without a ventilator at '{}'", opts_.common.idle_timeout_ms,
                 opts_.common.ventilator);
      abort_job("the sink heard nothing from the ventilator");
      return exit_failure;
    }
  }
  if (!completed_acked_) log::warn("the ventilator did not confirm completion; every result is written");
  if (duplicates_ > 0) log::info("dropped {} duplicate result(s)", duplicates_);
  if (retried_ > 0) log::info("{} failed attempt(s) were retried", retried_);
  if (foreign_ + malformed_ > 0) log::warn("dropped {} malformed and {} foreign message(s)", malformed_, foreign_);
  if (failed_ > 0) {
    log::warn("{} of {} task(s) failed", failed_, done_.size());
    return exit_tasks_failed;
  }
  return exit_ok;
}

} // namespace

int run_sink(const sink_options& opts) {
  // Deliberately never destroyed: libzmq 4.3.4 has aborted while tearing down a context whose
  // connections were being dropped (seen under the hostile-frames test: "Resource temporarily
  // unavailable (src/zmtp_engine.cpp:446)"; cf. libzmq#4841). Everything this role must say is
  // said through handshakes before run() returns, so the process leaves its sockets to the kernel
  // at exit instead of running that teardown.
  static sink* kept = nullptr; // reachable, so leak checkers know it is kept on purpose
  kept = new sink(opts);
  auto& s = *kept;
  try {
    return s.run();
  } catch (const error& e) {
    s.abort_job(e.what());
    throw;
  }
}

} // namespace mtask
