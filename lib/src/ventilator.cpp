// The ventilator's event loop. See docs/ARCHITECTURE.md for the message flow it implements.
#include "mtask/ventilator.hpp"

#include "mtask/error.hpp"
#include "mtask/input_reader.hpp"
#include "mtask/ledger.hpp"
#include "mtask/log.hpp"
#include "mtask/socket.hpp"
#include "mtask/wire.hpp"
#include "mtask/worker_table.hpp"

#include <algorithm>
#include <limits>
#include <random>

namespace mtask {
namespace {

std::uint64_t new_job_id() {
  std::random_device rd;
  std::uint64_t id = 0;
  while (id == 0) id = (static_cast<std::uint64_t>(rd()) << 32) ^ rd(); // 0 means "no job" on the wire
  return id;
}

std::unique_ptr<task_source> make_source(const ventilator_options& o) {
  if (o.range) return std::make_unique<range_source>(*o.range);
  return std::make_unique<input_reader>(o.input, o.split);
}

class ventilator {
 public:
  explicit ventilator(const ventilator_options& opts)
      : opts_(opts),
        job_(new_job_id()),
        input_(make_source(opts)),
        terminator_(input_->terminator()),
        ledger_(opts.limits),
        workers_(job_),
        router_(bind_socket(ctx_, zmq::socket_type::router, opts.common.ventilator, opts.common.policy())) {}

  int run();
  // Tells the sink (if any) the job will not finish, so it does not wait for us, and waits (boundedly)
  // until it has left: ZeroMQ's linger does not reliably deliver a last message (libzmq#4660).
  void abort_job(const std::string& reason) {
    if (sink_id_.empty()) return;
    send_to_sink(wire::abort_msg{.job = job_, .reason = reason});
    const auto deadline = clock::now() + millis(opts_.common.heartbeat_timeout_ms);
    while (!sink_gone() && clock::now() < deadline) {
      std::vector<zmq::pollitem_t> items{{router_.handle(), 0, ZMQ_POLLIN, 0}};
      poll_items(items, millis(10));
      while (try_receive(router_, true)) {}
    }
  }

 private:
  void read_input();
  void dispatch();
  void handle(const incoming& in, time_point now);
  void on(const wire::worker_status& s, const std::string& from, time_point now);
  void on(const wire::worker_bye& b, const std::string& from, time_point now);
  void on(const wire::sink_status& s, const std::string& from, time_point now);
  void on(const wire::abort_msg& a, const std::string& from, time_point now);
  void on(const wire::complete& c, const std::string& from, time_point now);
  void on_tick(time_point now);
  void lose_worker(const std::string& id, std::string_view why);
  void send_to_worker(const std::string& id, const wire::message& m);
  void send_to_sink(const wire::message& m);
  // Returns: true once the sink's connection is gone (ROUTER_MANDATORY makes a send to it fail).
  bool sink_gone() {
    return sink_id_.empty() ||
           !try_send_to(router_, sink_id_, wire::encode(wire::job_info{.job = job_, .total = total()}));
  }
  [[nodiscard]] bool sink_ready() const { return !sink_id_.empty() && sink_confirmed_; }
  [[nodiscard]] std::int64_t total() const { return input_done_ ? static_cast<std::int64_t>(next_id_) : -1; }

  const ventilator_options& opts_;
  std::uint64_t job_;
  std::unique_ptr<task_source> input_;
  std::string terminator_; // the input's record terminator, sent with every batch
  ledger ledger_;
  worker_table workers_;
  zmq::context_t ctx_;
  zmq::socket_t router_;

  std::uint64_t next_id_ = 0;
  bool input_done_ = false;
  std::string sink_id_;
  bool sink_confirmed_ = false;   // the sink has said it serves our job: results will not be dropped
  bool sink_held_back_ = false;   // the sink takes no results until its stdout drains (a slow reader)
  time_point sink_released_at_{}; // when it last took results again
  time_point sink_seen_{};
  std::uint64_t sink_written_below_ = std::numeric_limits<std::uint64_t>::max();
  bool complete_ = false; // the sink wrote every result
  std::uint64_t failed_ = 0;
  time_point complete_at_{};
  time_point stalled_since_{};
  time_point next_tick_{};
  std::uint64_t malformed_ = 0;
  std::uint64_t requeued_ = 0;
  std::uint64_t retried_ = 0;
  std::string frame_;         // reused encoding buffer
  wire::tasks_builder batch_; // reused for every batch sent (its buffer keeps its capacity)
};

void ventilator::read_input() {
  // Read only what credit can use soon, and never beyond the window.
  const auto want = static_cast<std::size_t>(std::max<std::int64_t>(workers_.total_credit(), 1));
  const std::uint64_t id_limit = sink_written_below_ > std::numeric_limits<std::uint64_t>::max() - opts_.window
                                     ? std::numeric_limits<std::uint64_t>::max()
                                     : sink_written_below_ + opts_.window;
  while (ledger_.queued() < want && ledger_.size() < opts_.window && next_id_ < id_limit) {
    auto payload = input_->next();
    if (!payload) break;
    ledger_.add(next_id_++, std::move(*payload));
  }
  if (!input_done_ && input_->exhausted()) {
    input_done_ = true;
    log::info("input ended: {} tasks", next_id_);
    if (!sink_id_.empty()) send_to_sink(wire::job_info{.job = job_, .total = total()});
  }
}

void ventilator::dispatch() {
  if (!sink_ready()) return;
  for (const auto& id : workers_.with_credit()) {
    if (ledger_.queued() == 0) break;
    auto n = std::min(static_cast<std::size_t>(workers_.find(id)->credit()), opts_.batch);
    // Each task is encoded from the ledger as it is taken: payloads are not copied on the way.
    batch_.start(job_, terminator_, opts_.common.sink);
    const auto count =
        ledger_.take_each(id, n, workers_.live_count() > 1, [&](const wire::task_view& t) { batch_.add(t); });
    if (count == 0) continue; // only tasks that just failed on this worker are left
    if (!try_send_to(router_, id, batch_.frame())) {
      lose_worker(id, "unreachable");
      continue;
    }
    workers_.on_sent(id, count);
    workers_.served(id);
    log::debug("sent {} task(s) to {}", count, workers_.find(id)->name);
  }
}

void ventilator::send_to_worker(const std::string& id, const wire::message& m) {
  wire::encode_to(frame_, m);
  if (!try_send_to(router_, id, frame_)) log::debug("could not reach worker {}", workers_.find(id)->name);
}

void ventilator::send_to_sink(const wire::message& m) {
  wire::encode_to(frame_, m);
  if (!try_send_to(router_, sink_id_, frame_)) log::debug("could not reach the sink");
}

void ventilator::lose_worker(const std::string& id, std::string_view why) {
  auto lost = ledger_.requeue_held_by(id);
  requeued_ += lost.requeued.size();
  const auto* w = workers_.find(id);
  // A worker leaving with nothing in hand (say, stopped after the job) is news, not a warning.
  if (lost.requeued.empty() && lost.quarantined.empty()) {
    log::info("worker {} left ({})", w ? w->name : "?", why);
  } else {
    log::warn("worker {} lost ({}): {} task(s) back in the queue", w ? w->name : "?", why, lost.requeued.size());
  }
  if (!lost.quarantined.empty()) {
    for (const auto& r : lost.quarantined) log::warn("task {} quarantined: {}", r.id, r.error);
    // The sink accounts for them like any final failure and acknowledges them.
    send_to_sink(wire::results_msg{.job = job_, .worker = "mtask-ventilator", .results = std::move(lost.quarantined)});
  }
}

void ventilator::on(const wire::worker_status& s, const std::string& from, time_point now) {
  auto seen = workers_.on_status(from, s, now);
  if (seen == worker_table::seen::joined) log::info("worker {} joined ({} slots)", s.name, s.slots);
  if (seen == worker_table::seen::returned) log::warn("worker {} is back", s.name);
  if (complete_ || seen != worker_table::seen::known) {
    send_to_worker(from, wire::vent_status{.job = job_, .complete = complete_});
  }
}

void ventilator::on(const wire::worker_bye&, const std::string& from, time_point) {
  if (workers_.on_bye(from)) lose_worker(from, "said goodbye");
}

void ventilator::on(const wire::sink_status& s, const std::string& from, time_point now) {
  if (s.job != 0 && s.job != job_) {
    ++malformed_;
    log::info("dropped a status from a sink serving another job");
    return;
  }
  if (sink_id_.empty()) {
    sink_id_ = from;
    log::info("sink connected");
    send_to_sink(wire::job_info{.job = job_, .total = total()});
  } else if (from != sink_id_) {
    ++malformed_;
    log::warn("ignoring a second sink: this job already has one");
    return;
  }
  sink_seen_ = now;
  if (s.held_back != sink_held_back_) {
    log::info("{}", s.held_back ? "the sink is holding results back until its stdout drains"
                                : "the sink takes results again");
  }
  if (sink_held_back_ && !s.held_back) sink_released_at_ = now;
  sink_held_back_ = s.held_back;
  if (s.job == job_) sink_confirmed_ = true;
  sink_written_below_ = s.written_below;
  for (const auto& run : s.done) {
    // Ids at or beyond next_id_ were never handed out: a confused peer cannot make us loop on them.
    const std::uint64_t end = run.first + std::min(run.count, next_id_ > run.first ? next_id_ - run.first : 0);
    for (std::uint64_t id = run.first; id < end; ++id) {
      (void)ledger_.acknowledge(wire::ack{.id = id, .attempt = 0, .status = wire::task_status::ok});
    }
  }
  for (const auto& a : s.acks) {
    if (ledger_.acknowledge(a) == ledger::ack_outcome::retry) {
      ++retried_;
      log::info("task {} failed on attempt {}; retrying", a.id, a.attempt);
    }
  }
}

void ventilator::on(const wire::abort_msg& a, const std::string& from, time_point) {
  if (from != sink_id_ || (a.job != job_ && a.job != 0)) {
    ++malformed_;
    return;
  }
  throw error(fmt::format("the sink gave up: {}", a.reason));
}

void ventilator::on(const wire::complete& c, const std::string& from, time_point now) {
  if (from != sink_id_ || c.job != job_) {
    ++malformed_;
    return;
  }
  send_to_sink(wire::complete_ack{.job = job_});
  if (complete_) return;
  complete_ = true;
  complete_at_ = now;
  failed_ = c.failed;
  log::info("job complete: {} tasks, {} failed", c.total, c.failed);
  for (const auto& id : workers_.live()) send_to_worker(id, wire::vent_status{.job = job_, .complete = true});
}

void ventilator::handle(const incoming& in, time_point now) {
  auto msg = decode_or_count(in, static_cast<std::size_t>(opts_.common.max_message_bytes), malformed_);
  if (!msg) return;
  std::visit(
      [&](const auto& m) {
        using T = std::decay_t<decltype(m)>;
        if constexpr (std::is_same_v<T, wire::worker_status> || std::is_same_v<T, wire::worker_bye> ||
                      std::is_same_v<T, wire::sink_status> || std::is_same_v<T, wire::abort_msg> ||
                      std::is_same_v<T, wire::complete>) {
          on(m, in.routing_id, now);
        } else {
          ++malformed_;
          log::info("dropped a message no worker or sink sends");
        }
      },
      *msg);
}

void ventilator::on_tick(time_point now) {
  for (const auto& id : workers_.expire(now, millis(opts_.common.heartbeat_timeout_ms))) {
    lose_worker(id, fmt::format("silent for {} ms", opts_.common.heartbeat_timeout_ms));
  }
  // A live worker that has held nothing for a whole heartbeat timeout sent every result on long
  // ago: a task still charged to it lost its result on the way to the sink (a dropped connection),
  // so it runs again (the sink drops the copy should the first result turn up after all).
  // Not while the sink holds results back for a slow stdout, nor for a heartbeat timeout after:
  // those results are waiting in its socket, and their workers look idle meanwhile.
  const bool sink_holding = sink_held_back_ || now - sink_released_at_ < millis(opts_.common.heartbeat_timeout_ms);
  for (const auto& id :
       sink_holding ? std::vector<std::string>{} : workers_.idle_for(now, millis(opts_.common.heartbeat_timeout_ms))) {
    auto lost = ledger_.requeue_held_by(id, false);
    if (lost.requeued.empty()) continue;
    requeued_ += lost.requeued.size();
    log::warn(
        "worker {} holds nothing but {} task(s) were never acknowledged (results lost on the way to the "
        "sink?): running them again",
        workers_.find(id)->name, lost.requeued.size());
  }
  if (!sink_id_.empty()) send_to_sink(wire::job_info{.job = job_, .total = total()});
  for (const auto& id : workers_.live()) send_to_worker(id, wire::vent_status{.job = job_, .complete = complete_});
}

int ventilator::run() {
  log::info("job {:016x}: bound '{}'", job_, opts_.common.ventilator);
  const millis tick(opts_.common.heartbeat_ms);
  const millis heartbeat_timeout(opts_.common.heartbeat_timeout_ms);
  auto now = clock::now();
  next_tick_ = now + tick;
  stalled_since_ = now;
  while (true) {
    if (int sig = stop_signal()) {
      log::warn("stopped by signal {} with {} task(s) unfinished", sig, ledger_.size());
      abort_job(fmt::format("the ventilator was stopped by signal {}", sig));
      return 128 + sig;
    }
    read_input();
    dispatch();

    if (complete_) {
      // Farewell: stay until every live worker has heard the job is complete (so --once workers
      // exit) and the sink has left (so it surely got complete_ack), but never longer than one
      // heartbeat timeout. Linger alone would not deliver those last messages reliably.
      bool all_told = true;
      for (const auto& id : workers_.live()) all_told = all_told && workers_.find(id)->completed_job == job_;
      if ((all_told && sink_gone()) || now - complete_at_ > heartbeat_timeout) break;
    }

    std::vector<zmq::pollitem_t> items{{router_.handle(), 0, ZMQ_POLLIN, 0}};
    const bool want_input = input_->fd() >= 0 && ledger_.size() < opts_.window;
    if (want_input) items.push_back({nullptr, input_->fd(), ZMQ_POLLIN, 0});
    auto timeout = std::max(millis(0), std::chrono::duration_cast<millis>(next_tick_ - now));
    // Farewell: notice the sink leaving within a millisecond (a job's last wait; it lasts as long as
    // the sink takes to exit, and at most one heartbeat timeout).
    if (complete_) timeout = std::min(timeout, millis(1));
    poll_items(items, timeout);
    now = clock::now();
    if (want_input && (items[1].revents & (ZMQ_POLLIN | ZMQ_POLLERR)) != 0) input_->read_chunk();
    for (int i = 0; i < 10000; ++i) {
      auto in = try_receive(router_, true);
      if (!in) break;
      handle(*in, now);
    }
    if (now >= next_tick_) {
      on_tick(now);
      next_tick_ = now + tick;
    }
    // Give up only when the job cannot move: no sink, or tasks waiting and no worker alive.
    const bool sink_alive = !sink_id_.empty() && now - sink_seen_ <= heartbeat_timeout;
    const bool needs_workers = !ledger_.empty() || !input_done_;
    const bool stalled = !complete_ && (!sink_alive || (needs_workers && workers_.live_count() == 0));
    if (!stalled) stalled_since_ = now;
    if (opts_.common.idle_timeout_ms > 0 && now - stalled_since_ > millis(opts_.common.idle_timeout_ms)) {
      std::string why = !sink_alive
                            ? fmt::format("giving up after {} ms without a sink (is mtask-sink connected to '{}'?)",
                                          opts_.common.idle_timeout_ms, opts_.common.ventilator)
                            : fmt::format(
                                  "giving up after {} ms without a live worker, {} task(s) unfinished (is mtask-worker "
                                  "connected to '{}'?)",
                                  opts_.common.idle_timeout_ms, ledger_.size(), opts_.common.ventilator);
      log::error("{}", why);
      abort_job(why);
      return exit_failure;
    }
  }
  if (malformed_ > 0) log::warn("dropped {} malformed or foreign message(s)", malformed_);
  if (requeued_ > 0) log::info("{} task(s) were requeued after losing their worker", requeued_);
  if (retried_ > 0) log::info("{} failed attempt(s) were retried", retried_);
  return failed_ > 0 ? exit_tasks_failed : exit_ok;
}

} // namespace

int run_ventilator(const ventilator_options& opts) {
  // Deliberately never destroyed: libzmq 4.3.4 has aborted while tearing down a context whose
  // connections were being dropped (seen under the hostile-frames test: "Resource temporarily
  // unavailable (src/zmtp_engine.cpp:446)"; cf. libzmq#4841). Everything this role must say is
  // said through handshakes before run() returns, so the process leaves its sockets to the kernel
  // at exit instead of running that teardown.
  static ventilator* kept = nullptr; // reachable, so leak checkers know it is kept on purpose
  kept = new ventilator(opts);
  auto& v = *kept;
  try {
    return v.run();
  } catch (const error& e) {
    v.abort_job(e.what());
    throw;
  }
}

} // namespace mtask
