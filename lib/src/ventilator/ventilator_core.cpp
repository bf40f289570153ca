// The ventilator's protocol core: input to ledger, ledger to workers against credit, the sink's
// acknowledgements back to the ledger, and the job's end. See docs/ARCHITECTURE.md.
#include "ventilator/ventilator_core.hpp"

#include "common/log.hpp"
#include "mtask/error.hpp"
#include "mtask/exit_code.hpp"

#include <algorithm>
#include <array>
#include <limits>

namespace mtask {
namespace {

// Bytes a task adds to a batch besides its payload: its array header, id, attempt, retries and the
// payload's length (msgpack: at most 1 + 9 + 5 + 5 + 5).
constexpr std::size_t task_overhead = 32;
// Ventilator-side failures sent to the sink carry at most this much of the payload (for --failures):
// the payload of a task too large to send is itself too large to send back.
constexpr std::size_t failure_payload_bytes = 256;
// A restarted ventilator reads past at most this many done tasks per loop turn.
constexpr std::size_t skip_per_turn = 1u << 16;
// Waiting for the sink: runs of acks of its statuses of another job kept, at most (a sink sends a
// few per status; a confused one must not grow them without bound).
constexpr std::size_t max_early_runs = 1u << 20;

} // namespace

ventilator_core::ventilator_core(ventilator_config cfg, task_source& input, ventilator_net& net, time_point now)
    : cfg_(std::move(cfg)),
      input_(input),
      net_(net),
      terminator_(input_.terminator()),
      ledger_(cfg_.limits),
      workers_(cfg_.job),
      phase_since_(now),
      started_(now),
      stalled_since_(now),
      next_tick_(now + cfg_.heartbeat),
      last_resend_(now) {}

std::int64_t ventilator_core::total() const { return input_done_ ? static_cast<std::int64_t>(next_id_) : -1; }

bool ventilator_core::wants_input() const {
  return (phase_ == phase::waiting_for_sink || phase_ == phase::running) && !input_done_ &&
         ledger_.size() < cfg_.window;
}

time_point ventilator_core::next_wakeup() const {
  // Farewell and abort end when the sink's connection is gone: look every millisecond (a job's
  // last wait; bounded by one heartbeat timeout).
  if (phase_ == phase::aborting) return last_advance_ + millis(1);
  if (phase_ == phase::farewell)
    return std::min(next_tick_, lingering_ ? phase_since_ + cfg_.linger : last_advance_ + millis(1));
  if (skip_pending_) return last_advance_; // more done tasks to read past: at once
  return next_tick_;
}

void ventilator_core::finish(int code) {
  phase_ = phase::finished;
  exit_code_ = code;
}

send_result ventilator_core::send_to(const std::string& id, const wire::message& m) {
  wire::encode_to(frame_, m);
  return net_.send(id, frame_);
}

void ventilator_core::send_to_sink(const wire::message& m) {
  if (sink_id_.empty()) return;
  if (send_to(sink_id_, m) != send_result::sent) log::debug("could not reach the sink");
}

void ventilator_core::send_job_info() {
  send_to_sink(wire::job_info{.job = cfg_.job,
                              .total = total(),
                              .fingerprint = cfg_.fingerprint,
                              .workers = static_cast<std::uint32_t>(workers_.live_count()),
                              .slots = workers_.live_slots(),
                              .requeued = stats_.requeued});
}

void ventilator_core::send_vent_status(const std::string& id) {
  const auto* w = workers_.find(id);
  if (!w) return;
  (void)send_to(id, wire::vent_status{.job = cfg_.job,
                                      .complete = phase_ == phase::farewell || phase_ == phase::finished,
                                      .sent_seq = w->next_seq - 1,
                                      .resolved_below = w->resolved_below,
                                      .cancel = halt_now_});
}

bool ventilator_core::sink_gone() {
  // ROUTER_MANDATORY: a send to a peer whose connection is gone fails.
  return sink_id_.empty() ||
         send_to(sink_id_, wire::job_info{.job = cfg_.job, .total = total(), .fingerprint = cfg_.fingerprint}) ==
             send_result::unreachable;
}

void ventilator_core::send_failures(std::vector<wire::result> results) {
  if (results.empty()) return;
  for (auto& r : results) {
    if (r.payload.size() > failure_payload_bytes) r.payload.resize(failure_payload_bytes);
    decided_[r.id] = r;
  }
  // The sink accounts for them like any final failure and acknowledges them; until it does, they
  // are sent again each heartbeat timeout (a dropped connection may lose them).
  send_to_sink(wire::results_msg{.job = cfg_.job, .worker = "mtask-ventilator", .results = std::move(results)});
}

void ventilator_core::resend_decided() {
  std::vector<wire::result> again;
  for (auto it = decided_.begin(); it != decided_.end();) {
    if (!ledger_.contains(it->first)) {
      it = decided_.erase(it); // the sink acknowledged it
      continue;
    }
    again.push_back(it->second);
    ++it;
  }
  if (!again.empty()) {
    send_to_sink(wire::results_msg{.job = cfg_.job, .worker = "mtask-ventilator", .results = std::move(again)});
  }
}

bool ventilator_core::done_before(std::uint64_t id) const { return skip_.contains(id); }

void ventilator_core::skip_later(std::uint64_t first, std::uint64_t count) {
  // Only ids not read yet: the ledger settles the others.
  if (first + count <= next_id_) return;
  if (first < next_id_) {
    count -= next_id_ - first;
    first = next_id_;
  }
  skip_.insert(first, count);
}

void ventilator_core::take_done(std::uint64_t done_below, const std::vector<wire::id_range>& done) {
  // Ids at or beyond next_id_ were never handed out by us: a confused peer cannot make us loop on
  // them. A restarted ventilator's predecessor did hand some out, though: what the sink holds of
  // those is read past when we get there (a late result of a task running at the crash).
  (void)ledger_.release_below(std::min(done_below, next_id_));
  for (const auto& run : done) {
    const std::uint64_t end = run.first + std::min(run.count, next_id_ > run.first ? next_id_ - run.first : 0);
    for (std::uint64_t id = run.first; id < end; ++id) {
      (void)ledger_.acknowledge(wire::ack{.id = id, .attempt = 0, .status = wire::task_status::ok});
    }
  }
  if (!resumed_) return;
  skip_later(0, done_below);
  for (const auto& run : done) skip_later(run.first, run.count);
}

void ventilator_core::read_input(time_point) {
  if (input_done_ || phase_ == phase::aborting || phase_ == phase::finished) return;
  // With -k, results the sink holds for an earlier task are bounded in bytes: reading stops (the
  // tasks already queued still go out, among them whatever the gap is waiting for). A restarted
  // ventilator may not have read that task yet: ids up to the sink's written_below are still read.
  const bool held_full = sink_held_bytes_ >= cfg_.max_held_bytes;
  // Read only what credit can use soon, and never beyond the window.
  // A percentage for --halt is of the job's tasks: read ahead to the window, so that the total is
  // known from the start for any input within it.
  const auto want =
      cfg_.halt.is_percent ? cfg_.window : static_cast<std::size_t>(std::max<std::int64_t>(workers_.total_credit(), 1));
  const std::uint64_t id_limit =
      ordered_sink_ && sink_written_below_ <= std::numeric_limits<std::uint64_t>::max() - cfg_.window
          ? sink_written_below_ + cfg_.window
          : std::numeric_limits<std::uint64_t>::max();
  std::vector<wire::result> too_large;
  // Skipping is bounded per turn so that a long run of done ids does not hold up the loop (heartbeats,
  // statuses); next_wakeup() brings the next turn at once.
  std::size_t skip_budget = skip_per_turn;
  skip_pending_ = false;
  for (;;) {
    // A task the sink already holds (we continue a job) is read past, whatever the limits.
    const bool skip = resumed_ && done_before(next_id_);
    if (skip && skip_budget == 0) {
      skip_pending_ = true;
      break;
    }
    if (!skip && !(ledger_.queued() < want && ledger_.size() < cfg_.window && next_id_ < id_limit &&
                   (!held_full || next_id_ <= sink_written_below_)))
      break;
    auto payload = input_.next();
    if (!payload) break;
    const auto id = next_id_++;
    if (skip) {
      ++stats_.skipped;
      --skip_budget;
      continue;
    }
    if (payload->size() + task_overhead + batch_header_bytes() > cfg_.max_message_bytes) {
      // It can never be sent: fail it alone, and the rest of the job goes on.
      ++stats_.too_large;
      too_large.push_back(wire::result{
          .id = id,
          .attempt = 0,
          .status = wire::task_status::too_large,
          .error =
              fmt::format("task of {} bytes exceeds --max-message-bytes ({})", payload->size(), cfg_.max_message_bytes),
          .payload = std::move(*payload),
      });
      ledger_.add(id, {});
      ledger_.set_aside(id);
      continue;
    }
    ledger_.add(id, std::move(*payload));
  }
  send_failures(std::move(too_large));
  if (input_.exhausted()) {
    input_done_ = true;
    log::info("input ended: {} tasks", next_id_);
    send_job_info();
  }
}

std::size_t ventilator_core::batch_header_bytes() {
  if (batch_header_bytes_ == 0) {
    batch_.start(cfg_.job, std::numeric_limits<std::uint64_t>::max(), terminator_, cfg_.sink_endpoint);
    batch_header_bytes_ = batch_.size();
  }
  return batch_header_bytes_;
}

void ventilator_core::dispatch(time_point) {
  if (phase_ != phase::running) return;
  const std::size_t budget = cfg_.max_message_bytes;
  for (const auto& id : workers_.with_credit()) {
    if (ledger_.queued() == 0) break;
    const auto* w = workers_.find(id);
    const auto n = std::min(static_cast<std::size_t>(w->credit()), cfg_.batch);
    const auto seq = w->next_seq;
    batch_.start(cfg_.job, seq, terminator_, cfg_.sink_endpoint, sink_wants_details_);
    // Each task is encoded from the ledger as it is taken (payloads are not copied on the way),
    // and the message is cut before it would exceed the frame limit.
    const auto count = ledger_.take_each(
        id, n, workers_.live_count() > 1, seq,
        [&](std::size_t payload) { return batch_.size() + payload + task_overhead <= budget; },
        [&](const wire::task_view& t) { batch_.add(t); });
    if (count == 0) continue; // only tasks that just failed on this worker are left
    switch (net_.send(id, batch_.frame())) {
      case send_result::sent:
        workers_.on_sent(id, seq, count);
        workers_.served(id);
        log::debug("sent batch {} of {} task(s) to {}", seq, count, w->name);
        break;
      case send_result::unreachable:
        // Its connection is gone (killed, or a network blip it may come back from): the batch never
        // left, so its tasks go back with no crash counted, and the worker gets nothing more until
        // it speaks again. Its heartbeat timeout decides whether it is lost.
        (void)ledger_.requeue_batch(id, seq);
        workers_.on_unreachable(id);
        log::info("worker {} is unreachable: {} task(s) back in the queue", w->name, count);
        break;
      case send_result::full: (void)ledger_.requeue_batch(id, seq); break; // its queue drains first
    }
  }
}

void ventilator_core::lose_worker(const std::string& id, std::string_view why) {
  const auto* w = workers_.find(id);
  // Only tasks of batches it confirmed receiving count a crash: the others may never have reached it.
  auto lost = ledger_.requeue_held_by(id, w ? w->resolved_below : 0);
  stats_.requeued += lost.requeued.size();
  // A worker leaving with nothing in hand (say, stopped after the job) is news, not a warning.
  if (lost.requeued.empty() && lost.quarantined.empty()) {
    log::info("worker {} left ({})", w ? w->name : "?", why);
  } else {
    log::warn("worker {} lost ({}): {} task(s) back in the queue", w ? w->name : "?", why, lost.requeued.size());
  }
  for (const auto& r : lost.quarantined) log::warn("task {} quarantined: {}", r.id, r.error);
  send_failures(std::move(lost.quarantined));
}

void ventilator_core::on(const wire::worker_status& s, const std::string& from, time_point now) {
  auto seen = workers_.on_status(from, s, now);
  const auto* w = workers_.find(from);
  if (seen.how == worker_table::seen::joined) log::info("worker {} joined ({} slots)", s.name, s.slots);
  if (seen.how == worker_table::seen::returned) log::warn("worker {} is back", s.name);
  for (auto seq : seen.lost_batches) {
    const auto n = ledger_.requeue_batch(from, seq);
    ++stats_.lost_batches;
    log::warn("batch {} to worker {} was lost on the way: {} task(s) back in the queue", seq, w->name, n);
  }
  if (s.failed > 0 || cfg_.halt.on != halt_policy::why::fail) check_halt(now);
  // A newcomer learns the job (and a --once worker that it is over); a worker that reported lost
  // batches learns they are settled.
  const bool over = phase_ == phase::farewell || phase_ == phase::finished;
  if (over || seen.how != worker_table::seen::known || !seen.lost_batches.empty() ||
      (!s.lost.empty() && s.job == cfg_.job)) {
    send_vent_status(from);
  }
}

void ventilator_core::on(const wire::worker_bye&, const std::string& from, time_point) {
  if (workers_.on_bye(from)) lose_worker(from, "said goodbye");
}

bool ventilator_core::on_claim(const wire::sink_status& s) {
  if (phase_ != phase::waiting_for_sink || resumed_) return false; // we dispatch our own job already
  const auto refuse = [&](std::string why) {
    log::error("{}", why);
    // Not an abort: that sink keeps waiting for the ventilator of its own job.
    finish(exit_failure);
  };
  if (cfg_.fingerprint.empty()) {
    refuse(fmt::format(
        "the sink is in the middle of job {:016x}; this ventilator reads a pipe, which cannot be checked to be "
        "the same input: to resume, give the input as a file (or stop that sink to start a new job)",
        s.job));
    return false;
  }
  if (s.fingerprint != cfg_.fingerprint) {
    refuse(
        fmt::format("the sink is in the middle of job {:016x}, whose input was [{}]; this input is [{}]: "
                    "refusing to merge another input into its output (stop that sink, or give it a new "
                    "--journal, to start a new job)",
                    s.job, s.fingerprint.empty() ? "unknown" : s.fingerprint, cfg_.fingerprint));
    return false;
  }
  // Nothing was dispatched yet (we were waiting for the sink): taking its job id is all it takes.
  // At the default level: whoever reads the output must know it continues an earlier run.
  std::uint64_t held = s.done_below;
  for (const auto& run : s.done) held += run.first >= s.done_below ? run.count : 0;
  log::warn("resuming job {:016x}: the sink already holds {} task(s); only the others run", s.job, held);
  cfg_.job = s.job;
  workers_.adopt_job(s.job);
  batch_header_bytes_ = 0; // the job id's encoding may be longer
  resumed_ = true;
  // The acks of its statuses of this job that came before the claim: the claim lists only what was
  // durable when it was made, and the sink forgets acks once sent (found by mtask-sim).
  if (early_job_ == s.job) take_done(early_done_below_, early_done_);
  early_done_.clear();
  if (!sink_id_.empty()) send_job_info(); // the sink learns we serve its job now
  return true;
}

void ventilator_core::on(const wire::sink_status& s, const std::string& from, time_point now) {
  if (s.claim && s.job != 0 && s.job != cfg_.job && (sink_id_.empty() || from == sink_id_)) {
    if (!on_claim(s)) {
      if (phase_ != phase::finished) ++stats_.malformed;
      return;
    }
  }
  if (s.job != 0 && s.job != cfg_.job) {
    ++stats_.malformed;
    log::info("dropped a status from a sink serving another job");
    if (phase_ == phase::waiting_for_sink && (sink_id_.empty() || from == sink_id_)) {
      // Kept: they count if we adopt that job (its claim may come after them).
      if (early_job_ != s.job) {
        early_job_ = s.job;
        early_done_below_ = 0;
        early_done_.clear();
      }
      early_done_below_ = std::max(early_done_below_, s.done_below);
      if (early_done_.size() + s.done.size() <= max_early_runs)
        early_done_.insert(early_done_.end(), s.done.begin(), s.done.end());
    }
    // A sink already in a job (ours, before we restarted?) answers our job_info with a claim:
    // ask, once a heartbeat at most (its statuses come with every batch of results).
    if (phase_ == phase::waiting_for_sink && (sink_id_.empty() || from == sink_id_) && now >= next_probe_) {
      next_probe_ = now + cfg_.heartbeat;
      (void)send_to(from, wire::job_info{.job = cfg_.job, .total = total(), .fingerprint = cfg_.fingerprint});
    }
    return;
  }
  if (sink_id_.empty()) {
    sink_id_ = from;
    log::info("sink connected");
    send_job_info();
  } else if (from != sink_id_) {
    // The sink keeps its routing id across reconnects, so this is another process.
    ++stats_.malformed;
    log::warn("ignoring a second sink: this job already has one");
    return;
  }
  sink_seen_ = now;
  if (s.job == 0) {
    // It has not heard of our job yet (its first hello, or our job_info was lost): say it again.
    send_job_info();
    return;
  }
  // A claim is not the sink's confirmation: a sink restarted from its journal takes our (its) job
  // only at the job_info that answers it, and drops results of the job until then.
  if (!s.claim) {
    sink_spoke_ = now;
    sink_wants_details_ = s.details;
    if (phase_ == phase::waiting_for_sink) {
      phase_ = phase::running;
      resend_decided(); // failures decided before the sink was there
    }
  }
  if (s.held_back != sink_held_back_) {
    log::info("{}", s.held_back ? "the sink is holding results back until its stdout drains"
                                : "the sink takes results again");
  }
  if (sink_held_back_ && !s.held_back) sink_released_at_ = now;
  sink_held_back_ = s.held_back;
  ordered_sink_ = s.written_below != std::numeric_limits<std::uint64_t>::max();
  sink_written_below_ = s.written_below;
  sink_held_bytes_ = s.held_bytes;
  take_done(s.done_below, s.done);
  for (const auto& a : s.acks) {
    if (ledger_.acknowledge(a) == ledger::ack_outcome::retry) {
      ++stats_.retried;
      log::info("task {} failed on attempt {}; retrying", a.id, a.attempt);
    }
  }
  if (!s.claim) {
    sink_final_ = s.final_results;
    sink_failed_ = s.failed;
    check_halt(now);
  }
}

void ventilator_core::check_halt(time_point now) {
  if (cfg_.halt.at == halt_policy::when::never || phase_ != phase::running) return;
  // The sink's counts are exact but come after the results; the workers' come in the status that
  // frees a slot, before the slot gets another task (so `--halt soon,fail=1` with one slot stops
  // where parallel does). Either may be ahead: the larger counts.
  const auto [done, failed] = workers_.finished_and_failed();
  auto why = cfg_.halt.reached({.final_results = std::max(sink_final_, done),
                                .failed = std::max(sink_failed_, failed),
                                .total = total(),
                                .read = next_id_});
  if (!why) return;
  phase_ = phase::halting;
  phase_since_ = now;
  halt_reason_ = std::move(*why);
  // What the sink must have before it is told: the results that reached the policy (a worker's
  // status can come before its results reach the sink).
  halt_wait_final_ = std::max(sink_final_, done);
  halt_wait_failed_ = std::max(sink_failed_, failed);
  halt_now_ = cfg_.halt.at == halt_policy::when::now;
  log::warn("halting: {}: {}", halt_reason_,
            halt_now_ ? "running tasks are cancelled" : "no new task starts; running ones finish");
  if (halt_now_) {
    for (const auto& id : workers_.live()) send_vent_status(id); // cancel, now
  }
  advance_halt(now);
}

void ventilator_core::advance_halt(time_point now) {
  if (!halt_told_) {
    // `soon`: what runs finishes and reaches the sink first (its acks empty the ledger of held
    // tasks). `now`: the results that reached the policy reach the sink first (the others are
    // cancelled). Either way bounded: a result lost on the way costs a heartbeat timeout, no more.
    const bool caught_up =
        halt_now_ ? sink_final_ >= halt_wait_final_ && sink_failed_ >= halt_wait_failed_ : ledger_.held() == 0;
    if (!caught_up && now - phase_since_ < cfg_.heartbeat_timeout) return;
  }
  if (!halt_told_) log::info("telling the sink to finish with the results it has");
  halt_told_ = true;
  send_to_sink(wire::halt_msg{.job = cfg_.job, .reason = halt_reason_});
}

void ventilator_core::on(const wire::status_request&, const std::string& from, time_point now) {
  static constexpr std::array<const char*, 6> phase_names{"waiting_for_sink", "running",  "halting",
                                                          "farewell",         "aborting", "finished"};
  wire::status_report r{.job = cfg_.job,
                        .phase = phase_names.at(static_cast<std::size_t>(phase_)),
                        .total = total(),
                        .read = next_id_,
                        .acknowledged = next_id_ - std::min<std::uint64_t>(next_id_, ledger_.size()),
                        .requeued = stats_.requeued,
                        .retried = stats_.retried,
                        .elapsed_ms = static_cast<std::uint64_t>(
                            std::max<std::int64_t>(std::chrono::duration_cast<millis>(now - started_).count(), 0)),
                        .workers = workers_.rows(now)};
  (void)net_.send(from, wire::encode(r)); // a top that went away meanwhile is no one's loss
}

void ventilator_core::on(const wire::abort_msg& a, const std::string& from, time_point) {
  if (from != sink_id_ || (a.job != cfg_.job && a.job != 0)) {
    ++stats_.malformed;
    return;
  }
  log::error("the sink gave up: {}", a.reason);
  // Answer, so it need not wait for us, and leave.
  send_to_sink(wire::abort_msg{.job = cfg_.job, .reason = "the ventilator heard the sink give up"});
  finish(exit_failure);
}

void ventilator_core::on(const wire::complete& c, const std::string& from, time_point now) {
  if (from != sink_id_ || c.job != cfg_.job) {
    ++stats_.malformed;
    return;
  }
  send_to_sink(wire::complete_ack{.job = cfg_.job});
  // Waiting for the sink too: a restarted ventilator whose sink had every result already may hear
  // `complete` before the status that confirms the job (found by mtask-sim, seed 10597).
  if (phase_ != phase::running && phase_ != phase::waiting_for_sink && phase_ != phase::halting) return;
  phase_ = phase::farewell;
  phase_since_ = now;
  failed_ = c.failed;
  log::info("job complete: {} tasks, {} failed", c.total, c.failed);
  for (const auto& id : workers_.live()) send_vent_status(id);
}

void ventilator_core::on_message(const std::string& from, std::string_view frame, time_point now,
                                 peer_credentials who) {
  if (phase_ == phase::finished) return;
  if (auto version = wire::foreign_version(frame)) {
    ++stats_.malformed;
    // Answered every time (it may have missed the first), logged once per peer.
    (void)net_.send(from, wire::encode(wire::wrong_version{}));
    if (wrong_version_peers_.size() < 1024 && wrong_version_peers_.insert(from).second) {
      log::error("a peer speaks protocol version {}; this ventilator speaks {}: told it so", *version,
                 wire::protocol_version);
    }
    return;
  }
  std::optional<wire::message> msg;
  try {
    msg = wire::decode(frame, cfg_.max_message_bytes);
  } catch (const protocol_error& e) {
    ++stats_.malformed;
    log::info("dropped a frame: {}", e.what());
    return;
  }
  std::visit(
      [&](auto& m) {
        using T = std::decay_t<decltype(m)>;
        if constexpr (std::is_same_v<T, wire::sink_status> || std::is_same_v<T, wire::abort_msg> ||
                      std::is_same_v<T, wire::complete>) {
          if (!who.may_be_sink) {
            ++stats_.malformed;
            if (!impostor_logged_) log::warn("dropped a sink's message from a client whose key is not --sink-key");
            impostor_logged_ = true;
            return;
          }
          on(m, from, now);
        } else if constexpr (std::is_same_v<T, wire::worker_status>) {
          if (!who.name.empty()) m.name = fmt::format("{}@{}", who.name, m.name); // vouched for, not claimed
          on(m, from, now);
        } else if constexpr (std::is_same_v<T, wire::worker_bye> || std::is_same_v<T, wire::status_request>) {
          on(m, from, now);
        } else {
          ++stats_.malformed;
          log::info("dropped a message no worker or sink sends");
        }
      },
      *msg);
}

void ventilator_core::on_tick(time_point now) {
  const auto timeout = cfg_.heartbeat_timeout;
  for (const auto& id : workers_.expire(now, timeout)) {
    lose_worker(id, fmt::format("silent for {} ms", timeout.count()));
  }
  // A live worker that has held nothing for a whole heartbeat timeout sent every result on long
  // ago: a task still charged to it lost its result on the way to the sink (a dropped connection),
  // so it runs again (the sink drops the copy should the first result turn up after all).
  // Not while the sink holds results back for a slow stdout, nor for a heartbeat timeout after:
  // those results are waiting in its socket, and their workers look idle meanwhile. Nor while the
  // sink is silent (cut off from us): its acknowledgements cannot arrive, so a missing one says
  // nothing about the result; its first status once back acknowledges what it has (seen across
  // hosts: a 5 s cut reran 400 of 600 tasks the sink already had).
  const bool sink_holding = sink_held_back_ || now - sink_released_at_ < timeout;
  // A sink's hello (job 0: restarted from its journal, say) carries no acks yet: only a status of
  // our job counts as speaking.
  const bool sink_quiet = now - sink_spoke_ > 2 * cfg_.heartbeat;
  // Nor while halting: what the workers still hold was cancelled, or will never be asked for.
  if (!sink_holding && !sink_quiet && phase_ != phase::halting) {
    for (const auto& id : workers_.idle_for(now, timeout)) {
      auto lost = ledger_.requeue_held_by(id, 0);
      if (lost.requeued.empty()) continue;
      stats_.rerun_unacked += lost.requeued.size();
      log::warn(
          "worker {} holds nothing but {} task(s) were never acknowledged (results lost on the way to the "
          "sink?): running them again",
          workers_.find(id)->name, lost.requeued.size());
    }
  }
  send_job_info();
  if (halt_told_ && phase_ == phase::halting) advance_halt(now); // until the sink completes
  if (now - last_resend_ >= timeout) {
    resend_decided();
    last_resend_ = now;
  }
  for (const auto& id : workers_.live()) send_vent_status(id);
}

void ventilator_core::check_idle(time_point now) {
  // Give up only when the job cannot move: no sink, or tasks waiting and no worker alive.
  const bool sink_alive = !sink_id_.empty() && now - sink_seen_ <= cfg_.heartbeat_timeout;
  const bool needs_workers = !ledger_.empty() || !input_done_;
  const bool stalled = !sink_alive || (needs_workers && workers_.live_count() == 0);
  if (!stalled) stalled_since_ = now;
  if (cfg_.idle_timeout.count() <= 0 || now - stalled_since_ <= cfg_.idle_timeout) return;
  std::string why = !sink_alive
                        ? fmt::format("giving up after {} ms without a sink (is mtask-sink connected to '{}'?)",
                                      cfg_.idle_timeout.count(), cfg_.ventilator_endpoint)
                        : fmt::format(
                              "giving up after {} ms without a live worker, {} task(s) unfinished (is mtask-worker "
                              "connected to '{}'?)",
                              cfg_.idle_timeout.count(), ledger_.size(), cfg_.ventilator_endpoint);
  log::error("{}", why);
  begin_abort(std::move(why), exit_failure, now);
}

void ventilator_core::begin_abort(std::string reason, int code, time_point now) {
  abort_code_ = code;
  phase_ = phase::aborting;
  phase_since_ = now;
  if (sink_id_.empty()) {
    finish(code);
    return;
  }
  // The sink must not wait for us; we wait (boundedly) until it has left, because ZeroMQ's linger
  // does not reliably deliver a last message (libzmq#4660).
  send_to_sink(wire::abort_msg{.job = cfg_.job, .reason = std::move(reason)});
}

void ventilator_core::stop(int signal, time_point now) {
  if (phase_ == phase::finished) return;
  if (phase_ == phase::farewell) {
    // The job is complete (the sink has its complete_ack): a stop now only cuts the farewell or
    // the --linger-ms short, the way a Slurm script ends a linger once its workers are gone.
    log::info("stopped by signal {} after the job completed", signal);
    finish(failed_ > 0 ? exit_tasks_failed : exit_ok);
    return;
  }
  log::warn("stopped by signal {} with {} task(s) unfinished", signal, ledger_.size());
  if (phase_ == phase::aborting) {
    finish(128 + signal);
    return;
  }
  begin_abort(fmt::format("the ventilator was stopped by signal {}", signal), 128 + signal, now);
}

void ventilator_core::give_up(std::string reason, time_point now) {
  if (phase_ == phase::finished || phase_ == phase::aborting) return;
  log::error("{}", reason);
  begin_abort(std::move(reason), exit_failure, now);
}

void ventilator_core::advance(time_point now) {
  last_advance_ = now;
  switch (phase_) {
    case phase::finished: return;
    case phase::aborting:
      if (sink_gone() || now - phase_since_ > cfg_.heartbeat_timeout) finish(abort_code_);
      return;
    case phase::farewell: {
      // Stay until every live worker has heard the job is complete (so --once workers exit) and the
      // sink has left (so it surely got complete_ack), but never longer than one heartbeat timeout.
      bool all_told = true;
      for (const auto& id : workers_.live()) all_told = all_told && workers_.find(id)->completed_job == cfg_.job;
      // --linger-ms keeps us longer: a worker arriving now hears at once that the job is over.
      const auto waited = now - phase_since_;
      lingering_ = (all_told && sink_gone()) || waited > cfg_.heartbeat_timeout;
      if (lingering_ && waited >= cfg_.linger) {
        finish(failed_ > 0 ? exit_tasks_failed : exit_ok);
        return;
      }
      break;
    }
    case phase::waiting_for_sink:
    case phase::running:
      read_input(now);
      dispatch(now);
      check_idle(now);
      if (phase_ == phase::aborting) return;
      break;
    case phase::halting:
      if (!halt_told_) advance_halt(now);
      check_idle(now);
      if (phase_ == phase::aborting) return;
      break;
  }
  if (now >= next_tick_) {
    on_tick(now);
    next_tick_ = now + cfg_.heartbeat;
  }
}

} // namespace mtask
