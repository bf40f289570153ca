// The sink's protocol as a state machine (see sink_core.hpp): adopting a job, deduplicating,
// writing and acknowledging results, holding back for a slow reader, completing and aborting.
#include "sink/sink_core.hpp"

#include "common/log.hpp"
#include "mtask/error.hpp"
#include "mtask/exit_code.hpp"
#include "sink/joblog.hpp"
#include "sink/output_writer.hpp"
#include "sink/result_text.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <limits>
#include <tuple>
#include <utility>
#include <variant>

namespace mtask {
namespace {

// How soon a control frame that could not go out is tried again even if the I/O loop's POLLOUT
// does not wake us first (a driver may have no poller: the simulator's has none).
constexpr millis retry_interval(10);

// Below this many unacknowledged entries, bound_acks() leaves the status alone.
constexpr std::size_t min_compact_at = 1024;

} // namespace

sink_core::sink_core(sink_config cfg, sink_io& io, time_point now)
    : cfg_(std::move(cfg)),
      io_(io),
      report_(cfg_.report ? std::make_unique<report_collector>() : nullptr),
      journal_attempts_(cfg_.journal && (cfg_.stats || cfg_.report) && (!cfg_.resume || cfg_.resume->head.attempts())),
      aggregator_(cfg_.make_aggregator ? cfg_.make_aggregator() : nullptr),
      compact_at_(min_compact_at),
      vent_seen_(now),
      next_heartbeat_(now), // hello at the first advance()
      deadline_(now),
      last_try_(now) {
  if (cfg_.resume) resume_from(*cfg_.resume);
}

void sink_core::resume_from(const journal::state& st) {
  // What was final before the crash stays final: its copies are duplicates, and the ventilator is
  // told again (ids above the watermark as runs) in case the acks never left.
  // A reduction resumes from the total journaled with the last durable group, which counts exactly
  // the results final in the journal.
  // (open_journal has checked that the journal holds a total exactly when this sink reduces.)
  if (aggregator_ && st.aggregate) aggregator_->restore(*st.aggregate);
  expected_job_ = st.job;
  fingerprint_ = st.fingerprint;
  done_.start_at(st.final_ids.watermark());
  for (const auto& [first, end] : st.final_ids.above()) {
    for (auto id = first; id < end; ++id) done_.insert(id);
    status_.done.push_back(wire::id_range{.first = first, .count = end - first});
  }
  durable_below_ = st.final_ids.watermark();
  order_.start_at(st.written_below);
  durable_written_below_ = st.written_below;
  for (const auto& [id, bytes] : st.held) {
    held_bytes_ += bytes.size();
    order_.put(id, bytes);
  }
  stats_.written = done_.size();
  stats_.failed = st.failed;
  if (journal_attempts_) recount(st);
  log::info("resuming job {:016x} from the journal: {} result(s) already final", expected_job_, stats_.written);
}

void recount(const journal::state& st, job_stats* stats, report_collector* report) {
  if (st.saved) {
    if (stats != nullptr) stats->restore(st.saved->stats);
    if (report != nullptr) report->restore(st.saved->report);
  }
  // The attempts since, replayed in the order they were taken: the collectors end as they were
  // when the last durable group was journaled.
  for (const auto& a : st.since.attempts) {
    const wire::result_view r{.id = a.id,
                              .attempt = a.attempt,
                              .status = static_cast<wire::task_status>(a.status),
                              .code = a.code,
                              .runtime_us = a.runtime_us,
                              .retries_left = a.final ? 0u : 1u,
                              .start_us = a.start_us,
                              .command = a.command};
    const auto& worker = st.since.workers.at(a.worker);
    if (stats != nullptr) stats->on_attempt(worker, r);
    if (report != nullptr) (void)report->on_attempt(worker, r);
  }
  if (stats != nullptr) stats->set_duplicates(st.since.duplicates);
}

void sink_core::recount(const journal::state& st) {
  // (open_journal has checked that the journal counted attempts for the same --stats and --report.)
  mtask::recount(st, cfg_.stats ? &attempts_ : nullptr, report_.get());
  stats_.duplicates = st.since.duplicates;
  stats_.malformed = st.since.dropped; // malformed and foreign alike, as --stats reports them
  fleet_.requeued = st.since.requeued; // until the ventilator says
}

// ---- events ----

void sink_core::on_control(std::string_view frame, time_point now) {
  if (phase_ == phase::finished) return;
  if (auto version = wire::foreign_version(frame)) {
    on_foreign_version(*version);
    return;
  }
  wire::message msg;
  try {
    msg = wire::decode(frame, cfg_.max_message_bytes);
  } catch (const protocol_error& e) {
    drop_frame(e.what());
    return;
  }
  if (auto* j = std::get_if<wire::job_info>(&msg)) {
    on_job_info(*j, now);
  } else if (auto* a = std::get_if<wire::abort_msg>(&msg)) {
    on_abort(*a, now);
  } else if (std::holds_alternative<wire::wrong_version>(msg)) {
    // Of our own version: a ventilator that refuses us for a reason it cannot name better.
    log::error("the ventilator at '{}' refuses this sink's protocol version {}", cfg_.ventilator_endpoint,
               wire::protocol_version);
    finish(exit_failure);
  } else if (phase_ == phase::aborting) {
    return; // only its answering abort matters now
  } else if (auto* h = std::get_if<wire::halt_msg>(&msg)) {
    on_halt(*h, now);
  } else if (auto* c = std::get_if<wire::complete_ack>(&msg)) {
    if (job_ == 0 || c->job != job_) {
      ++stats_.foreign;
      return;
    }
    complete_acked_ = true;
    if (phase_ == phase::completing) finish_complete();
  } else if (auto* q = std::get_if<wire::results_msg>(&msg)) {
    // Tasks the ventilator quarantined itself (their workers kept dying): final failures.
    if (job_ == 0 || q->job != job_) {
      stats_.foreign += q->results.size();
      return;
    }
    for (const auto& r : q->results) accept(wire::view_of(r), q->worker);
    after_batch(now);
  } else {
    ++stats_.malformed;
    log::info("dropped a message a ventilator does not send");
  }
}

void sink_core::on_job_info(const wire::job_info& j, time_point now) {
  const std::uint64_t mine = job_ != 0 ? job_ : expected_job_;
  if (j.job != 0 && mine != 0 && j.job != mine) {
    // A ventilator of another job: ours restarted (it adopts our job if its input is the same) or a
    // stranger (it refuses to merge its input into our output). Either way it must hear of our job.
    ++stats_.foreign;
    if (phase_ == phase::waiting_for_job || phase_ == phase::collecting || phase_ == phase::completing) {
      if (claimed_to_ != j.job) {
        log::info("a ventilator of job {:016x} connected: telling it this sink serves job {:016x}", j.job, mine);
        claimed_to_ = j.job;
      }
      send_claim(now);
    }
    return;
  }
  const bool adopt = phase_ == phase::waiting_for_job && j.job != 0;
  if (adopt) {
    job_ = j.job;
    phase_ = phase::collecting;
    log::info("serving job {:016x}", job_);
    if (fingerprint_.empty() && !j.fingerprint.empty()) {
      fingerprint_ = j.fingerprint;
      if (cfg_.journal) io_.journal_job(journal::job_record{.job = job_, .fingerprint = fingerprint_});
    }
  }
  if (j.job != job_ || job_ == 0) {
    ++stats_.foreign;
    return;
  }
  vent_seen_ = now;
  fleet_ = fleet{.workers = j.workers, .slots = j.slots, .requeued = j.requeued};
  if (j.total >= 0 && total_ < 0) {
    total_ = j.total;
    log::info("the job has {} tasks", total_);
  }
  if (adopt) send_status(now); // confirm at once: the ventilator dispatches only after this
}

void sink_core::on_halt(const wire::halt_msg& h, time_point now) {
  if (job_ == 0 || h.job != job_) {
    ++stats_.foreign;
    return;
  }
  if (halted_ || phase_ != phase::collecting) return; // said again until we complete
  halted_ = true;
  log::warn("the job was halted: {}; writing the {} result(s) received", h.reason, done_.size());
  // -k: what waits for a task that will never run goes out now, in order, past the gaps.
  for (auto& [id, bytes] : order_.take_all()) {
    held_bytes_ -= std::min<std::uint64_t>(held_bytes_, bytes.size());
    io_.write_output(bytes);
  }
  try_to_complete(now);
}

void sink_core::on_abort(const wire::abort_msg& a, time_point now) {
  if (job_ != 0 && a.job != job_) {
    ++stats_.foreign;
    return;
  }
  if (phase_ == phase::aborting) {
    finish(abort_code_); // the answer we waited for
    return;
  }
  const auto reason = fmt::format("the ventilator gave up: {}", a.reason);
  log::error("{}", reason);
  // Answered, best effort: the ventilator leaves once we have answered or our connection is gone.
  send(wire::abort_msg{.job = job_, .reason = reason}, now);
  finish(exit_failure);
}

void sink_core::on_foreign_version(std::uint64_t version) {
  // It cannot read our abort either: nothing to say to it, nothing to wait for.
  log::error("the ventilator at '{}' speaks protocol version {}; this sink speaks {}", cfg_.ventilator_endpoint,
             version, wire::protocol_version);
  finish(exit_failure);
}

void sink_core::on_results(std::string_view frame, time_point now, std::string_view sender) {
  if (phase_ == phase::finished || phase_ == phase::aborting) return;
  // Decoded as views into the frame, into a reused batch: an output is copied once, to the output.
  try {
    wire::decode_results(frame, batch_, cfg_.max_message_bytes);
  } catch (const protocol_error& e) {
    if (auto version = wire::foreign_version(frame)) {
      ++stats_.malformed;
      if (!foreign_results_logged_) {
        foreign_results_logged_ = true;
        log::error("dropped results in protocol version {}; this sink speaks {} (further ones are only counted)",
                   *version, wire::protocol_version);
      }
      return;
    }
    drop_frame(e.what());
    return;
  }
  if (halted_ && batch_.job == job_) {
    stats_.after_halt += batch_.results.size(); // late (cancelled, or finished as the halt came)
    return;
  }
  if (job_ == 0 || batch_.job != job_) {
    stats_.foreign += batch_.results.size();
    log::info("dropped {} result(s) of another job", batch_.results.size());
    return;
  }
  std::string_view worker = batch_.worker;
  if (!sender.empty()) {
    sender_name_.assign(sender).append("@").append(batch_.worker);
    worker = sender_name_;
  }
  for (const auto& r : batch_.results) accept(r, worker);
  after_batch(now);
}

void sink_core::accept(const wire::result_view& r, std::string_view worker) {
  if (total_ >= 0 && r.id >= static_cast<std::uint64_t>(total_)) {
    ++stats_.malformed;
    log::info("dropped a result for task {}, beyond the job's {} tasks", r.id, total_);
    return;
  }
  // With a journal, acks wait for their group to be durable.
  auto& done = cfg_.journal ? pending_acks_ : status_.done;
  if (done_.contains(r.id)) {
    ++stats_.duplicates;
    if (cfg_.stats) attempts_.on_duplicate();
    // Acknowledged again: the first ack may have been lost with a dropped connection. A flood of
    // copies of one id costs one run, not one entry each.
    const bool in_last_run = !done.empty() && r.id >= done.back().first && r.id - done.back().first < done.back().count;
    if (!in_last_run) wire::append_id(done, r.id);
    return;
  }
  if (cfg_.stats) attempts_.on_attempt(worker, r);
  const bool with_command = report_ && report_->on_attempt(worker, r);
  if (journal_attempts_) journal_attempt(r, worker, with_command);
  if (cfg_.details) io_.write_attempt(r, worker);
  if (!r.final()) {
    // The ventilator runs it again; only the final outcome is written.
    const wire::ack ack{.id = r.id, .attempt = r.attempt, .status = r.status};
    if (journal_attempts_)
      pending_retries_.push_back(ack); // counted once durable: a crash before then reruns it uncounted
    else
      status_.acks.push_back(ack);
    ++stats_.retried;
    log::info("task {} failed on attempt {} ({} retries left)", r.id, r.attempt, r.retries_left);
    return;
  }
  done_.insert(r.id);
  wire::append_id(done, r.id);
  if (cfg_.journal) {
    wire::append_id(pending_.final_ids, r.id);
    ++pending_count_;
  }
  ++stats_.written;
  if (cfg_.results_files) io_.write_result_files(r);
  if (r.status != wire::task_status::ok) {
    ++stats_.failed;
    log::warn("{}", detail::describe_failure(r));
    if (cfg_.failures) io_.write_failure(detail::failure_json(r));
  }
  emit(r, worker);
}

void sink_core::journal_attempt(const wire::result_view& r, std::string_view worker, bool with_command) {
  if (!pending_.attempts) pending_.attempts.emplace();
  auto& log = *pending_.attempts;
  // A group's results come in batches from a few workers: the last name is most likely the next.
  auto w = log.workers.size();
  if (w == 0 || log.workers.back() != worker) {
    w = static_cast<std::size_t>(std::find(log.workers.begin(), log.workers.end(), worker) - log.workers.begin());
    if (w == log.workers.size()) log.workers.emplace_back(worker);
  } else {
    w -= 1;
  }
  // The page shortens what ran to command_kept bytes, which depend on the byte after them (a
  // UTF-8 character cut in two): one more is kept, and shortening the copy gives the same text.
  const auto ran = with_command ? what_ran(r) : std::string_view();
  log.attempts.push_back(
      journal::attempt_entry{.worker = static_cast<std::uint32_t>(w),
                             .id = r.id,
                             .attempt = r.attempt,
                             .status = static_cast<std::uint8_t>(r.status),
                             .code = r.code,
                             .final = r.final(),
                             .runtime_us = r.runtime_us,
                             .start_us = r.start_us,
                             .command = std::string(ran.substr(0, report_collector::command_kept + 1))});
}

void sink_core::emit(const wire::result_view& r, std::string_view worker) {
  if (aggregator_) {
    if (r.status != wire::task_status::ok) return; // its output is not a result to reduce
    try {
      aggregator_->add(r.id, r.output);
    } catch (const error& e) {
      // Bad data from one task: named, counted as a failure, and left out of the total.
      ++stats_.failed;
      log::error("{}", e.what());
    }
    return;
  }
  if (!cfg_.jsonl && !cfg_.keep_order && !cfg_.tag) {
    write_by_rule(r.output); // the common case: straight from the frame to the output
    return;
  }
  std::string bytes;
  if (cfg_.jsonl) {
    bytes = detail::result_json(r, worker);
  } else if (cfg_.tag) {
    detail::append_tagged(bytes, r.payload, r.output);
  } else {
    append_result(bytes, r.output);
  }
  if (!cfg_.keep_order) {
    io_.write_output(bytes);
    return;
  }
  held_bytes_ += bytes.size();
  order_.put(r.id, std::move(bytes));
  while (auto ready = order_.pop()) {
    held_bytes_ -= ready->size();
    io_.write_output(*ready);
  }
  // Held, it has no place in the output yet: the journal keeps its bytes (or it would be lost with
  // the sink after being acknowledged).
  if (cfg_.journal && r.id >= order_.next()) pending_held_.push_back(r.id);
}

void sink_core::write_by_rule(std::string_view output) {
  // The output rule (append_result) without copying the output to add its newline.
  if (output.empty()) return;
  io_.write_output(output);
  if (output.back() != '\n') io_.write_output("\n");
}

void sink_core::after_batch(time_point now) {
  update_held_back(now);
  if (cfg_.journal && (!pending_acks_.empty() || !pending_retries_.empty())) {
    if (complete_journaled_) ship_group(now); // straight to the status: see ship_group
    if (!pending_open_ && (!pending_acks_.empty() || !pending_retries_.empty())) {
      pending_open_ = true;
      pending_since_ = now;
    }
    if (pending_count_ >= cfg_.journal_every) ship_group(now);
  }
  bound_acks();
  // Acknowledge each batch as soon as it is taken, not after the whole backlog: the ventilator's
  // window frees only on acks. A status that cannot go out now waits for the connection.
  if (!status_due_ && (!status_.acks.empty() || !status_.done.empty())) send_status(now);
}

void sink_core::update_held_back(time_point now) {
  if (phase_ != phase::collecting && phase_ != phase::completing) return;
  // Hysteresis: hold back above the limit, take results again once the output has drained to a
  // quarter of it (not at every batch that crosses the line).
  const auto backlog = io_.output_backlog();
  const bool held = held_back_ ? backlog > cfg_.output_limit / 4 : backlog >= cfg_.output_limit;
  if (held == held_back_) return;
  held_back_ = held;
  if (held_back_) log::info("stdout is slow: holding results back until it drains");
  send_status(now); // the ventilator learns at once whether unacknowledged results are only waiting
}

void sink_core::bound_acks() {
  // The acks only pile up while no status can be sent (each one that goes out empties them): fold
  // repeats and drop runs that done_below already acknowledges, so that a flood of duplicates
  // cannot grow them without bound.
  auto& done = status_.done;
  auto& acks = status_.acks;
  if (done.size() + acks.size() < compact_at_) return;
  std::sort(done.begin(), done.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<wire::id_range> merged;
  for (const auto& run : done) {
    if (!merged.empty() && run.first <= merged.back().first + merged.back().count) {
      auto& last = merged.back();
      last.count = std::max(last.first + last.count, run.first + run.count) - last.first;
    } else {
      merged.push_back(run);
    }
  }
  const auto below = cfg_.journal ? durable_below_ : done_.watermark();
  std::erase_if(merged, [below](const auto& run) { return run.first + run.count <= below; });
  done = std::move(merged);
  const auto key = [](const wire::ack& a) { return std::tuple(a.id, a.attempt, a.status); };
  std::sort(acks.begin(), acks.end(), [&](const auto& a, const auto& b) { return key(a) < key(b); });
  acks.erase(std::unique(acks.begin(), acks.end()), acks.end());
  compact_at_ = std::max(min_compact_at, 2 * (done.size() + acks.size()));
}

// ---- time ----

void sink_core::advance(time_point now) {
  switch (phase_) {
    case phase::finished: return;
    case phase::aborting:
      if (now >= deadline_) {
        log::info("the ventilator did not answer our abort");
        finish(abort_code_);
        return;
      }
      break;
    case phase::waiting_for_job:
    case phase::collecting:
      if (pending_open_ && now >= pending_since_ + cfg_.journal_interval) ship_group(now);
      if (cfg_.idle_timeout.count() > 0 && now - vent_seen_ >= cfg_.idle_timeout) {
        log::error("giving up after {} ms without a ventilator at '{}'", cfg_.idle_timeout.count(),
                   cfg_.ventilator_endpoint);
        begin_abort("the sink heard nothing from the ventilator", exit_failure, now);
        return;
      }
      update_held_back(now);
      if (all_written()) try_to_complete(now);
      break;
    case phase::completing:
      if (pending_open_ && now >= pending_since_ + cfg_.journal_interval) ship_group(now); // duplicates' acks
      update_held_back(now);
      // Waits for complete_ack as long as it would wait for a ventilator while collecting: a
      // connection cut off for longer than a heartbeat timeout must not leave the ventilator
      // without `complete` (it would give up with exit 1 on a job whose output is whole).
      if (cfg_.idle_timeout.count() > 0) deadline_ = std::max(deadline_, vent_seen_ + cfg_.idle_timeout);
      if (now >= deadline_) {
        finish_complete(); // its output is complete either way
        return;
      }
      break;
  }
  if (phase_ != phase::finished) send_due(now);
}

void sink_core::send_due(time_point now) {
  const bool beat = now >= next_heartbeat_;
  if (beat) next_heartbeat_ = now + cfg_.heartbeat;
  const bool retry = status_due_;
  status_due_ = false;
  switch (phase_) {
    case phase::waiting_for_job: // hello
    case phase::collecting:
      if (beat || retry || !status_.acks.empty() || !status_.done.empty()) send_status(now);
      break;
    case phase::completing:
      if (beat || retry || !status_.acks.empty() || !status_.done.empty()) send_status(now);
      if (beat || retry) send(wire::complete{.job = job_, .total = done_.size(), .failed = stats_.failed}, now);
      break;
    case phase::aborting:
      // Said once; again only if it could not go out (the ventilator answers each one).
      if (retry) send(wire::abort_msg{.job = job_, .reason = abort_reason_}, now);
      break;
    case phase::finished: break;
  }
}

void sink_core::stop(int signal, time_point now) {
  if (phase_ == phase::aborting || phase_ == phase::finished) return;
  log::warn("stopped by signal {} with {} result(s) written", signal, done_.size());
  begin_abort(fmt::format("the sink was stopped by signal {}", signal), 128 + signal, now);
}

void sink_core::fail(std::string_view reason, time_point now) {
  if (phase_ == phase::aborting || phase_ == phase::finished) return;
  log::error("{}", reason);
  begin_abort(std::string(reason), exit_failure, now);
}

time_point sink_core::next_wakeup() const {
  time_point t = next_heartbeat_;
  switch (phase_) {
    case phase::finished: return time_point::max();
    case phase::aborting: t = deadline_; break;
    case phase::completing: t = std::min(t, deadline_); break;
    case phase::waiting_for_job:
    case phase::collecting:
      if (cfg_.idle_timeout.count() > 0) t = std::min(t, vent_seen_ + cfg_.idle_timeout);
      break;
  }
  if (status_due_) t = std::min(t, last_try_ + retry_interval);
  if (pending_open_) t = std::min(t, pending_since_ + cfg_.journal_interval);
  return t;
}

// ---- transitions ----

bool sink_core::all_written() const {
  if (halted_) return true; // everything that will ever be written is
  if (total_ < 0) return false;
  const auto total = static_cast<std::uint64_t>(total_);
  return done_.size() == total && (!cfg_.keep_order || aggregator_ || order_.next() == total);
}

void sink_core::try_to_complete(time_point now) {
  if (!output_final_) {
    output_final_ = true;
    if (aggregator_) {
      try {
        write_by_rule(aggregator_->finish());
      } catch (const error& e) {
        fail(e.what(), now);
        return;
      }
    }
  }
  if (cfg_.journal) {
    // Every result durable, then the completion itself, before `complete` goes out.
    ship_group(now);
    if (!groups_.empty()) return;
    if (!complete_journaled_) {
      complete_journaled_ = true;
      io_.journal_complete(journal::completion{.job = job_, .total = done_.size(), .failed = stats_.failed});
    }
  }
  // The results are out before we claim they are; until then heartbeats go on while the output
  // drains (the I/O loop wakes us when it has taken more).
  if (!io_.output_drained()) return;
  phase_ = phase::completing;
  deadline_ = now + cfg_.heartbeat_timeout;
  next_heartbeat_ = now; // `complete` (and a last status) at once, in send_due()
}

void sink_core::begin_abort(std::string reason, int code, time_point now) {
  // Tell the ventilator, so that it does not wait for us, and wait (boundedly) for its answering
  // abort: ZeroMQ's linger does not reliably deliver a last message (libzmq#4660).
  phase_ = phase::aborting;
  abort_code_ = code;
  abort_reason_ = std::move(reason);
  deadline_ = now + cfg_.heartbeat_timeout;
  status_due_ = false;
  send(wire::abort_msg{.job = job_, .reason = abort_reason_}, now);
  if (job_ == 0) finish(code); // the ventilator never knew us: nobody waits, nobody answers
}

void sink_core::finish_complete() {
  if (!complete_acked_) log::warn("the ventilator did not confirm completion; every result is written");
  if (stats_.duplicates > 0) log::info("dropped {} duplicate result(s)", stats_.duplicates);
  if (stats_.retried > 0) log::info("{} failed attempt(s) were retried", stats_.retried);
  if (stats_.after_halt > 0) log::info("dropped {} result(s) that came after the halt", stats_.after_halt);
  if (stats_.foreign + stats_.malformed > 0)
    log::warn("dropped {} malformed and {} foreign message(s)", stats_.malformed, stats_.foreign);
  if (stats_.failed > 0) {
    log::warn("{} of {} task(s) failed", stats_.failed, done_.size());
    finish(exit_tasks_failed);
    return;
  }
  finish(exit_ok);
}

void sink_core::ship_group(time_point now) {
  (void)now;
  // Finals always come with acks, failed attempts with retries: nothing at all is open.
  if (pending_acks_.empty() && pending_retries_.empty()) return;
  if (complete_journaled_) {
    // The job's completion is journaled: every result is final and durable, so what is acked now
    // (a late duplicate's ack) needs no group, and a commit after the completion record would make
    // the journal unreadable ("results after the job's completion").
    status_.done.insert(status_.done.end(), pending_acks_.begin(), pending_acks_.end());
    status_.acks.insert(status_.acks.end(), pending_retries_.begin(), pending_retries_.end());
    pending_acks_.clear();
    pending_retries_.clear();
    pending_held_.clear();
    pending_count_ = 0;
    pending_open_ = false;
    return;
  }
  pending_.job = job_;
  if (journal_attempts_) {
    if (!pending_.attempts) pending_.attempts.emplace();
    pending_.attempts->duplicates = stats_.duplicates;
    pending_.attempts->dropped = stats_.malformed + stats_.foreign;
    pending_.attempts->requeued = fleet_.requeued;
  }
  pending_.written_below = cfg_.keep_order ? order_.next() : 0;
  pending_.failed = stats_.failed;
  if (aggregator_) pending_.aggregate = aggregator_->save();
  for (auto id : pending_held_) {
    if (const auto* bytes = order_.find(id)) pending_.held.push_back(journal::held_result{.id = id, .bytes = *bytes});
  }
  io_.journal_group(++group_seq_, pending_);
  groups_.push_back(group{.seq = group_seq_,
                          .acks = std::move(pending_acks_),
                          .retries = std::move(pending_retries_),
                          .done_below = done_.watermark(),
                          .written_below = pending_.written_below});
  // The attempt log's vectors keep their capacity for the next group. (Moved out field by field:
  // moving the whole optional drew a false -Wmaybe-uninitialized from GCC 12 at -O3.)
  const bool attempts = pending_.attempts.has_value();
  std::vector<std::string> workers;
  std::vector<journal::attempt_entry> entries;
  if (attempts) {
    workers = std::move(pending_.attempts->workers);
    entries = std::move(pending_.attempts->attempts);
  }
  pending_ = journal::commit{};
  if (attempts) {
    workers.clear();
    entries.clear();
    auto& log = pending_.attempts.emplace();
    log.workers = std::move(workers);
    log.attempts = std::move(entries);
  }
  pending_acks_.clear();
  pending_retries_.clear();
  pending_held_.clear();
  pending_count_ = 0;
  pending_open_ = false;
}

void sink_core::on_durable(std::uint64_t seq, time_point now) {
  if (phase_ == phase::finished) return;
  bool any = false;
  while (!groups_.empty() && groups_.front().seq <= seq) {
    auto& g = groups_.front();
    status_.done.insert(status_.done.end(), g.acks.begin(), g.acks.end());
    status_.acks.insert(status_.acks.end(), g.retries.begin(), g.retries.end());
    durable_below_ = g.done_below;
    durable_written_below_ = g.written_below;
    groups_.pop_front();
    any = true;
  }
  if (!any || phase_ == phase::aborting) return;
  bound_acks();
  if (!status_due_) send_status(now);
}

void sink_core::finish(int code) {
  phase_ = phase::finished;
  exit_code_ = code;
  status_due_ = false;
}

// ---- sending ----

void sink_core::fill_marks(wire::sink_status& s) const {
  s.details = cfg_.details;
  s.final_results = stats_.written;
  s.failed = stats_.failed;
  const bool ordered = cfg_.keep_order && !aggregator_;
  if (cfg_.journal) {
    // Only what is durable: a crash must not lose what the ventilator was told is done.
    s.written_below = ordered ? durable_written_below_ : std::numeric_limits<std::uint64_t>::max();
    s.done_below = durable_below_;
  } else {
    s.written_below = ordered ? order_.next() : std::numeric_limits<std::uint64_t>::max();
    s.done_below = done_.watermark();
  }
  s.held_bytes = held_bytes_;
  s.held_back = held_back_;
}

void sink_core::send_claim(time_point now) {
  wire::sink_status c{.job = job_ != 0 ? job_ : expected_job_, .claim = true, .fingerprint = fingerprint_};
  fill_marks(c);
  // Every final id above done_below: the watermark's stragglers and the ids beyond it...
  std::vector<std::uint64_t> ids;
  for (auto id = c.done_below; id < done_.watermark(); ++id) ids.push_back(id);
  for (auto id : done_.above()) ids.push_back(id);
  std::sort(ids.begin(), ids.end());
  // ...but with a journal, not those whose group is not durable yet: a ventilator skips what a
  // claim lists for good, so a crash must not be able to take it. (The acks of each open group
  // list its ids, finals and duplicates alike: a duplicate left out is only run once more.)
  std::vector<wire::id_range> pending;
  if (cfg_.journal) {
    for (const auto& g : groups_) pending.insert(pending.end(), g.acks.begin(), g.acks.end());
    pending.insert(pending.end(), pending_acks_.begin(), pending_acks_.end());
    std::sort(pending.begin(), pending.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  }
  // Bounded to fit a message (a sink with many gaps above its watermark): runs left out are only
  // run again, and the copies dropped here.
  const std::size_t max_runs = cfg_.max_message_bytes > 8192 ? (cfg_.max_message_bytes - 8192) / 20 : 0;
  std::size_t p = 0;
  for (auto id : ids) {
    if (c.done.size() >= max_runs && !(c.done.empty() || c.done.back().first + c.done.back().count == id)) {
      log::info("the claim lists the first {} runs of ids only: the rest will run again", max_runs);
      break;
    }
    bool unsure = false;
    for (std::size_t i = p; i < pending.size() && pending[i].first <= id; ++i) {
      if (id - pending[i].first < pending[i].count) {
        unsure = true;
        break;
      }
    }
    while (p < pending.size() && pending[p].first + pending[p].count <= id) ++p;
    if (!unsure) wire::append_id(c.done, id);
  }
  wire::encode_to(frame_, c);
  last_try_ = now;
  (void)io_.send_control(frame_); // not retried: the ventilator asks again with its next job_info
}

void sink_core::send_status(time_point now) {
  status_.job = job_;
  fill_marks(status_);
  wire::encode_to(frame_, status_);
  last_try_ = now;
  if (io_.send_control(frame_) != send_result::sent) {
    // Not connected, or its queue is full: an ack must not be lost (the ventilator would hold that
    // task until it gave up on it), so they stay for the next attempt.
    status_due_ = true;
    log::debug("could not reach the ventilator");
    return;
  }
  if (job_ == 0) return; // a hello: the ventilator reads no acks in it (a resumed sink has some already)
  status_.acks.clear();
  status_.done.clear();
}

void sink_core::send(const wire::message& m, time_point now) {
  wire::encode_to(frame_, m);
  last_try_ = now;
  if (io_.send_control(frame_) != send_result::sent) status_due_ = true;
}

void sink_core::drop_frame(std::string_view why) {
  ++stats_.malformed;
  log::info("dropped a frame: {}", why);
}

} // namespace mtask
