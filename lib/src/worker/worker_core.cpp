// The worker's protocol (worker_core.hpp): credit and prefetch, batch numbers and lost batches,
// results cut to the message limit, statuses and timers. No sockets: worker.cpp and the simulator
// feed it frames and time.
#include "worker/worker_core.hpp"

#include "common/log.hpp"
#include "mtask/error.hpp"
#include "mtask/exit_code.hpp"
#include "protocol/endpoint.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <iterator>
#include <limits>
#include <utility>
#include <variant>

namespace mtask {

std::uint64_t worker_io::wall_clock_us() const {
  const auto since_epoch = std::chrono::system_clock::now().time_since_epoch();
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(since_epoch).count());
}
namespace {

// Tasks to hold beyond the slots are sized so they are about this much work: thousands of
// micro-tasks, none of 10 ms ones (which would otherwise wait behind a long task here instead of
// running on an idle worker). Two milliseconds because on a busy machine the ventilator may wait a
// scheduler slice for a CPU; a worker holding less runs dry meanwhile.
constexpr millis prefetch_budget{2};
constexpr std::size_t max_prefetch = 8192;

// An unsent status or results message is retried this soon (the socket's POLLOUT usually wakes us
// first), not at the next heartbeat, so a peer that just came up hears from us at once.
constexpr millis retry_interval{10};

// Batch numbers run 1, 2, ...; the next one expected after this would overflow.
constexpr std::uint64_t max_seq = std::numeric_limits<std::uint64_t>::max();

// Room left below --max-message-bytes for what a results message holds besides its results.
constexpr std::size_t envelope_margin = 1024;
// More than the msgpack encoding of a result's twelve fields takes beyond its four byte strings.
constexpr std::size_t result_overhead = 96;

std::size_t content_bytes(const wire::result& r) {
  return r.output.size() + r.error.size() + r.payload.size() + r.command.size();
}
std::size_t encoded_bound(const wire::result& r) { return content_bytes(r) + result_overhead; }

} // namespace

worker_core::worker_core(worker_config cfg, task_runner& runner, worker_io& io, time_point now)
    : cfg_(std::move(cfg)), runner_(runner), io_(io), next_heartbeat_(now), vent_seen_(now) {
  results_limit_ = cfg_.max_message_bytes > 2 * envelope_margin ? cfg_.max_message_bytes - envelope_margin
                                                                : cfg_.max_message_bytes / 2;
  wire::results_builder empty; // the envelope at its largest: the widest job id
  empty.start(std::numeric_limits<std::uint64_t>::max(), cfg_.name);
  empty_results_bytes_ = empty.frame().size();
}

std::size_t worker_core::busy() const { return runner_.running() + backlog_.size() + outbox_count_; }

bool worker_core::can_start() const {
  return !backlog_.empty() && runner_.has_room() && outbox_count_ < outbox_limit();
}

// Tasks to hold beyond the slots, so a slot never waits a round trip for its next task.
std::size_t worker_core::prefetch() const {
  if (cfg_.prefetch >= 0) return static_cast<std::size_t>(cfg_.prefetch);
  if (runtime_samples_ == 0) return 0;
  const double budget_us = std::chrono::duration<double, std::micro>(prefetch_budget).count() * cfg_.slots;
  return static_cast<std::size_t>(std::min(budget_us / std::max(ewma_runtime_us_, 0.01), double(max_prefetch)));
}

// Credit offered: idle slots plus prefetch room, less everything received and not yet sent on.
std::uint32_t worker_core::free_slots() const {
  const auto capacity = cfg_.slots + prefetch();
  return busy() >= capacity ? 0 : static_cast<std::uint32_t>(capacity - busy());
}

// ---- events

void worker_core::on_message(std::string_view frame, time_point now) {
  if (phase_ == phase::finished) return;
  if (auto version = wire::foreign_version(frame)) {
    on_foreign_version(*version);
    return;
  }
  if (wire::peek_type(frame) == wire::msg_type::tasks) {
    on_tasks(frame, now);
    return;
  }
  wire::message msg;
  try {
    msg = wire::decode(frame, cfg_.max_message_bytes);
  } catch (const protocol_error& e) {
    drop(e.what());
    return;
  }
  heard_ventilator(now);
  if (const auto* v = std::get_if<wire::vent_status>(&msg)) {
    on_vent_status(*v);
  } else if (std::holds_alternative<wire::wrong_version>(msg)) {
    on_foreign_version(wire::protocol_version); // of our version, yet refusing ours: a confused peer
  } else {
    drop("a message a ventilator does not send");
  }
}

// Bad bytes from a peer are counted and dropped, never fatal.
void worker_core::drop(std::string_view why) {
  ++malformed_;
  log::info("dropped a frame: {}", why);
}

void worker_core::on_foreign_version(std::uint64_t version) {
  log::error("the ventilator at '{}' speaks protocol version {}; this worker speaks {}", cfg_.ventilator_endpoint,
             version, wire::protocol_version);
  finish(exit_failure);
}

void worker_core::heard_ventilator(time_point now) {
  vent_seen_ = now;
  vent_heard_ = true;
}

void worker_core::on_tasks(std::string_view frame, time_point now) {
  // Decoded as views into the frame, into a reused batch: each payload is copied once, into the
  // task the runner gets.
  try {
    wire::decode_tasks(frame, batch_, cfg_.max_message_bytes);
  } catch (const protocol_error& e) {
    drop(e.what());
    return;
  }
  const std::uint64_t seq = batch_.seq;
  if (seq == max_seq) { // its successor would not fit the counter
    drop("batch number out of range");
    return;
  }
  heard_ventilator(now);
  if (batch_.job != job_) switch_job(batch_.job);
  if (seq < next_seq_) {
    ++duplicates_;
    log::info("dropped batch {} of job {:016x}: delivered twice ({} so far)", seq, batch_.job, duplicates_);
    return;
  }
  // Dropped unnumbered: the next batch or vent_status will report it lost, and it is requeued.
  if (!cfg_.sink_given && !use_sink(batch_.sink_endpoint)) return;
  // ZeroMQ keeps order per connection: a later batch arriving means the ones between died with a
  // dropped connection.
  if (seq > next_seq_) mark_lost(next_seq_, seq);
  next_seq_ = seq + 1;
  const std::string terminator(batch_.terminator);
  details_ = batch_.details;
  for (const auto& t : batch_.tasks) {
    backlog_.push_back(job_task{
        batch_.job,
        wire::task{.id = t.id, .attempt = t.attempt, .payload = std::string(t.payload), .retries_left = t.retries_left},
        terminator, batch_.details});
  }
  status_due_ = true;
}

// Returns: whether results can go to `endpoint` (the sink a ventilator names, connected on change).
bool worker_core::use_sink(std::string_view endpoint) {
  if (endpoint == sink_endpoint_) return true;
  try {
    check_endpoint_syntax("sink endpoint", endpoint);
    std::string changed(endpoint);
    io_.connect_sink(changed);
    sink_endpoint_ = std::move(changed);
    return true;
  } catch (const error& e) { // bad syntax, or an endpoint ZeroMQ refuses
    ++malformed_;
    log::warn("dropped tasks: {}", e.what());
    return false;
  }
}

void worker_core::on_vent_status(const wire::vent_status& v) {
  if (v.sent_seq == max_seq) {
    drop("batch number out of range");
    return;
  }
  if (v.job != job_ && v.job != 0 && v.sent_seq > 0) switch_job(v.job); // its batches all went missing
  if (v.job == job_ && job_ != 0) {
    // Sent after batch sent_seq on the same connection: one not here by now never will be.
    if (v.sent_seq >= next_seq_) {
      mark_lost(next_seq_, v.sent_seq + 1);
      next_seq_ = v.sent_seq + 1;
    }
    std::erase_if(lost_, [&](const wire::id_range& r) { return r.first + r.count <= v.resolved_below; });
  }
  if (v.cancel && v.job != 0 && cancelled_job_ != v.job) {
    // --halt now: what runs of that job is killed (its results the sink no longer takes), what
    // waits is dropped.
    cancelled_job_ = v.job;
    const auto before = backlog_.size();
    std::erase_if(backlog_, [&](const job_task& t) { return t.job == v.job; });
    log::info("job {:016x} halted: cancelling {} running and {} waiting task(s)", v.job, runner_.running(),
              before - backlog_.size());
    runner_.stop(SIGTERM);
    status_due_ = true; // our free slots changed
  }
  if (v.complete && completed_job_ != v.job) {
    completed_job_ = v.job;
    status_due_ = true; // tell the ventilator we know, so it need not wait for us
    log::info("job {:016x} complete", v.job);
  }
}

void worker_core::switch_job(std::uint64_t job) {
  job_ = job;
  done_ = 0;
  failed_ = 0;
  next_seq_ = 1;
  lost_.clear();
}

// Records batches [first, end) of the current job as lost.
void worker_core::mark_lost(std::uint64_t first, std::uint64_t end) {
  if (!lost_.empty() && lost_.back().first + lost_.back().count == first) {
    lost_.back().count += end - first;
  } else {
    lost_.push_back(wire::id_range{.first = first, .count = end - first});
  }
  log::info("batch(es) {}..{} of job {:016x} lost in transit", first, end - 1, job_);
  status_due_ = true; // the ventilator requeues them at once
}

void worker_core::stop(int signal, time_point /*now*/) {
  if (phase_ == phase::finished) return;
  leave();
  log::info("stopped by signal {}", signal);
  finish(128 + signal);
}

void worker_core::give_up(std::string_view reason, time_point /*now*/) {
  if (phase_ == phase::finished) return;
  leave();
  log::error("{}", reason);
  finish(exit_failure);
}

void worker_core::leave() {
  // The bye makes the ventilator requeue what we hold at once, rather than after a heartbeat timeout.
  wire::encode_to(frame_, wire::worker_bye{.job = job_});
  (void)io_.send_to_ventilator(frame_);
  runner_.stop(SIGTERM);
}

void worker_core::finish(int code) {
  phase_ = phase::finished;
  exit_code_ = code;
}

// ---- advance

void worker_core::advance(time_point now) {
  if (phase_ == phase::finished) return;
  if (cfg_.once && completed_job_ != 0) {
    send_status(); // the ventilator waits for every worker to say it heard
    finish(exit_ok);
    return;
  }
  if (timed_out(now)) return;
  collect(); // what finished while we waited counts before more starts
  start_tasks(now);
  collect(); // inline handlers finish inside start(): send their results before sleeping
  flush_results();
  if (status_due_ || now >= next_heartbeat_) {
    send_status();
    next_heartbeat_ = now + cfg_.heartbeat;
  }
}

bool worker_core::timed_out(time_point now) {
  if (cfg_.once && vent_heard_ && now - vent_seen_ > cfg_.heartbeat_timeout) {
    log::error("the ventilator at '{}' went away before its job completed", cfg_.ventilator_endpoint);
    finish(exit_failure);
  } else if (cfg_.idle_timeout > millis(0) && now - vent_seen_ > cfg_.idle_timeout) {
    log::error("giving up after {} ms without a ventilator at '{}'", cfg_.idle_timeout.count(),
               cfg_.ventilator_endpoint);
    finish(exit_failure);
  }
  return phase_ == phase::finished;
}

void worker_core::start_tasks(time_point now) {
  runner_.set_prefetch(prefetch());
  if (cfg_.delay > millis(0)) {
    // --delay: one start at a time, spaced out (parallel's --delay, per worker).
    if (now < next_start_ || !can_start()) return;
    if (runner_.start_from(backlog_, 1, now) > 0) next_start_ = now + cfg_.delay;
    return;
  }
  // At most half the capacity per turn: the results and the credit for that half go out before the
  // other half runs, so the next batch is already on its way when this one is done.
  const std::size_t budget = std::max<std::size_t>(1, (cfg_.slots + prefetch()) / 2);
  const std::size_t outbox_room = outbox_limit() > outbox_count_ ? outbox_limit() - outbox_count_ : 0;
  runner_.start_from(backlog_, std::min(budget, outbox_room), now);
}

void worker_core::collect() {
  runner_.take_finished(finished_);
  const std::uint64_t wall_now = details_ && !finished_.empty() ? io_.wall_clock_us() : 0;
  for (auto& f : finished_) {
    ewma_runtime_us_ = runtime_samples_++ == 0 ? f.runtime_us : 0.9 * ewma_runtime_us_ + 0.1 * f.runtime_us;
    // When it started, on this worker's clock: now less its runtime (the runners time tasks
    // themselves; a task handed to a busy pool waits before it starts).
    if (details_ && f.job == job_) f.result.start_us = wall_now - std::min(wall_now, f.result.runtime_us);
    if (f.job == cancelled_job_) continue; // --halt now: killed, or too late to count
    if (f.job == job_) {
      ++done_;
      if (f.result.status != wire::task_status::ok && f.result.final()) ++failed_;
    }
    add_result(f.job, f.result);
  }
  auto returned = runner_.take_returned();
  // Back to the front, in their order: they were next.
  backlog_.insert(backlog_.begin(), std::make_move_iterator(returned.begin()), std::make_move_iterator(returned.end()));
}

// Encodes `r` into the outbox, starting a new message for another job or when it would pass the
// limit. A result too big for any message fails as too_large; the job goes on.
void worker_core::add_result(std::uint64_t job, const wire::result& r) {
  const wire::result* out = &r;
  wire::result failure;
  if (empty_results_bytes_ + encoded_bound(r) > results_limit_) {
    auto why =
        fmt::format("result of {} bytes exceeds --max-message-bytes ({})", content_bytes(r), cfg_.max_message_bytes);
    log::warn("task {}: {}", r.id, why);
    failure = wire::result{.id = r.id,
                           .attempt = r.attempt,
                           .status = wire::task_status::too_large,
                           .error = std::move(why),
                           .runtime_us = r.runtime_us,
                           .retries_left = 0}; // final: another run would make the same output
    // A failure carries its payload (for --failures) when that alone fits.
    if (empty_results_bytes_ + encoded_bound(failure) + r.payload.size() <= results_limit_) failure.payload = r.payload;
    out = &failure;
  } else if (r.status == wire::task_status::too_large && r.retries_left != 0) {
    // Over --max-output-bytes: final too, --retries or not (a rerun writes as much again).
    failure = r;
    failure.retries_left = 0;
    out = &failure;
  }
  if (outbox_.empty() || outbox_.back().job() != job ||
      outbox_.back().frame().size() + encoded_bound(*out) > results_limit_) {
    if (spare_builders_.empty()) {
      outbox_.emplace_back();
    } else {
      outbox_.push_back(std::move(spare_builders_.back())); // its buffer keeps its capacity
      spare_builders_.pop_back();
    }
    outbox_.back().start(job, cfg_.name);
  }
  outbox_.back().add(*out);
  ++outbox_count_;
}

void worker_core::flush_results() {
  while (!outbox_.empty()) {
    // No sink yet, or its queue is full: keep them (they still hold their slots).
    if (io_.send_to_sink(outbox_.front().frame()) != send_result::sent) break;
    outbox_count_ -= outbox_.front().count();
    spare_builders_.push_back(std::move(outbox_.front()));
    outbox_.pop_front();
    status_due_ = true; // slots freed: new credit
  }
}

void worker_core::send_status() {
  wire::encode_to(frame_, wire::worker_status{.job = job_,
                                              .name = cfg_.name,
                                              .slots = cfg_.slots,
                                              .free = free_slots(),
                                              .next_seq = next_seq_,
                                              .completed_job = completed_job_,
                                              .busy = static_cast<std::uint32_t>(busy()),
                                              .lost = lost_,
                                              .done = done_,
                                              .failed = failed_});
  // Not connected yet (or the queue is full): stay due, and the loop waits for POLLOUT.
  status_due_ = io_.send_to_ventilator(frame_) != send_result::sent;
}

time_point worker_core::next_wakeup(time_point now) const {
  if (phase_ == phase::finished) return now;
  auto at = runner_.next_deadline(next_heartbeat_);
  if (can_start()) {
    if (cfg_.delay == millis(0) || now >= next_start_) return now; // more work is waiting right here
    at = std::min(at, next_start_);                                // --delay: the next start
  }
  const bool sink_known = cfg_.sink_given || !sink_endpoint_.empty();
  if (status_due_ || (sink_known && !outbox_.empty())) at = std::min(at, now + retry_interval);
  // The timeouts fire once strictly past their limit.
  if (cfg_.once && vent_heard_) at = std::min(at, vent_seen_ + cfg_.heartbeat_timeout + millis(1));
  if (cfg_.idle_timeout > millis(0)) at = std::min(at, vent_seen_ + cfg_.idle_timeout + millis(1));
  return at;
}

} // namespace mtask
