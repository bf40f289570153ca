// The sink's protocol as a state machine: no sockets, clock, threads or processes. It takes events
// (a control frame from the ventilator, a results frame from a worker, time passing) and acts
// through `sink_io`: frames to the ventilator, bytes to the output. The I/O loop (sink.cpp) and
// the simulator (tests/sim) drive it.
#pragma once

#include "common/clock.hpp"
#include "mtask/aggregator.hpp"
#include "protocol/send_result.hpp"
#include "protocol/wire.hpp"
#include "sink/done_set.hpp"
#include "sink/job_stats.hpp"
#include "sink/journal.hpp"
#include "sink/reorder_buffer.hpp"
#include "sink/report.hpp"

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mtask {

struct sink_config {
  bool keep_order = false; // -k
  bool jsonl = false;      // one JSON object per result
  bool failures = false;   // --failures: write_failure() gets one JSON line per final failure
  std::function<std::unique_ptr<aggregator>()> make_aggregator; // --reduce...; empty: none
  millis heartbeat{250};
  millis heartbeat_timeout{3000};
  millis idle_timeout{60000}; // 0: never give up
  std::size_t max_message_bytes = wire::default_max_frame_bytes;
  // Output bytes not yet taken by the reader beyond which results are held back (hysteresis: taken
  // again below a quarter of it).
  std::size_t output_limit = 4u << 20;
  std::string ventilator_endpoint; // for messages only
  // --journal: a result is acknowledged only once the group it belongs to is durable (the loop
  // calls on_durable()). A group closes after `journal_every` final results or `journal_interval`
  // after its first, whichever comes first.
  bool journal = false;
  std::size_t journal_every = 8192;
  millis journal_interval{2};
  // Resuming from a journal: its job (the only one this sink serves), its final ids, -k's held results.
  std::shared_ptr<const journal::state> resume;
  bool stats = false;  // --stats: every attempt is counted in job_statistics()
  bool report = false; // --report: every attempt is collected in report() (needs `details`)
  // With a journal and --stats or --report, each group journals its attempts (and a failed attempt
  // is acknowledged for a retry only once its group is durable, like a final one): a resumed sink
  // counts exactly the attempts of the results its journal keeps. A journal of format 1 holds no
  // attempts: resuming it, they are not journaled and the figures count from the restart.
  // --joblog, --report: results are asked to carry per-attempt details (the status says so), and
  // every attempt that is not a duplicate goes to sink_io::write_attempt().
  bool details = false;
  // --tag: each line of a result's output is prefixed with its task (the payload details bring)
  // and a tab.
  bool tag = false;
  bool results_files = false; // --results: every final result also goes to write_result_files()
};

// What the core asks of its surroundings.
class sink_io {
 public:
  virtual ~sink_io() = default;
  // Sends a frame to the ventilator over the control connection, without blocking.
  virtual send_result send_control(std::string_view frame) = 0;
  // Appends result bytes to the output, by the output rule the core has already applied (the core
  // passes exactly the bytes to write).
  virtual void write_output(std::string_view bytes) = 0;
  // One JSON line for --failures.
  virtual void write_failure(std::string_view line) = 0;
  // --results: a final result (with its task, which details bring) for its folder.
  virtual void write_result_files(const wire::result_view& r) { (void)r; }
  // With cfg.details: an attempt's result, from `worker` (its name as results name it).
  virtual void write_attempt(const wire::result_view& r, std::string_view worker) {
    (void)r;
    (void)worker;
  }
  // Bytes written and not yet taken by the reader.
  [[nodiscard]] virtual std::size_t output_backlog() const = 0;
  // Everything written has reached the reader (the I/O loop flushes before answering).
  [[nodiscard]] virtual bool output_drained() = 0;
  // With a journal: closes group `seq`: what was written since the last group (the results whose
  // ids and -k held results `c` lists) is to be made durable together, then on_durable(seq) called.
  // The loop fills in the output's ends in `c`, which the core empties afterwards.
  virtual void journal_group(std::uint64_t seq, journal::commit& c) {
    (void)seq;
    (void)c;
  }
  // With a journal, after every group is durable: the job is complete. output_drained() stays
  // false until that is durable too.
  virtual void journal_complete(const journal::completion& c) { (void)c; }
  // With a journal: the job this sink now serves and its input's fingerprint, to be journaled no
  // later than the first group (a restarted ventilator proves its input against it).
  virtual void journal_job(const journal::job_record& j) { (void)j; }
};

// Resuming from a journal: `stats` and `report` (either may be null) as the journal's tally and
// the attempts after it leave them (the attempts replayed in the order they were taken).
// Throws: error for a tally they cannot read.
void recount(const journal::state& st, job_stats* stats, report_collector* report);

class sink_core {
 public:
  enum class phase {
    waiting_for_job, // no ventilator heard yet: hello (sink_status with job 0) until one answers
    collecting,      // serving one job: results in, acks out
    completing,      // every result written and drained: `complete` sent until complete_ack (bounded)
    aborting,        // giving up: abort sent, waiting for the ventilator's answering abort (bounded)
    finished,        // exit_code() is set
  };

  sink_core(sink_config cfg, sink_io& io, time_point now);

  // A frame from the ventilator (job_info, complete_ack, abort, results of quarantined tasks,
  // wrong_version). Throws nothing: malformed and foreign frames are counted and dropped.
  void on_control(std::string_view frame, time_point now);
  // A results frame from a worker: each result is deduplicated, written (or reduced), acknowledged.
  // A duplicate is acknowledged again (the first ack may have been lost). `sender` is the name
  // the worker's CURVE key has on the --allow list ("" in plaintext): results then name their
  // worker "NAME@host:pid", which the worker cannot forge.
  void on_results(std::string_view frame, time_point now, std::string_view sender = {});
  // Sends due statuses, runs heartbeats and timeouts, completes the job once everything is written.
  // Call after every batch of events and at next_wakeup().
  void advance(time_point now);
  // Stop by signal (after the I/O loop has tried to drain the output): abort, exit 128 + signal.
  void stop(int signal, time_point now);
  // A failure of the sink's own I/O (stdout closed, --failures unwritable): logs `reason` as an
  // error, aborts, exit 1.
  void fail(std::string_view reason, time_point now);
  // With a journal: every group up to `seq` is durable; its results are acknowledged now.
  void on_durable(std::uint64_t seq, time_point now);

  [[nodiscard]] time_point next_wakeup() const;
  // Returns: false while results are held back (the reader is slow): leave them in the socket.
  [[nodiscard]] bool wants_results() const { return !held_back_ && phase_ != phase::finished; }
  // Returns: true while a control frame could not be sent and waits for the connection (poll POLLOUT).
  [[nodiscard]] bool wants_to_send() const { return status_due_; }
  [[nodiscard]] phase current_phase() const { return phase_; }
  [[nodiscard]] std::optional<int> exit_code() const { return exit_code_; }

  struct counters {
    std::uint64_t written = 0;    // distinct final results
    std::uint64_t failed = 0;     // final failures
    std::uint64_t retried = 0;    // non-final failures acknowledged for a retry
    std::uint64_t duplicates = 0; // copies of results already final, dropped (and acknowledged again)
    std::uint64_t foreign = 0;    // results or frames of another job
    std::uint64_t after_halt = 0; // results that came after --halt closed the output
    std::uint64_t malformed = 0;
  };
  [[nodiscard]] const counters& stats() const { return stats_; }
  // The job's number of tasks, or -1 while the ventilator is still reading its input.
  [[nodiscard]] std::int64_t total() const { return total_; }
  // What the ventilator last said of its workers (job_info), for the progress line.
  struct fleet {
    std::uint32_t workers = 0;
    std::uint64_t slots = 0;
    std::uint64_t requeued = 0;
  };
  [[nodiscard]] const fleet& ventilator_fleet() const { return fleet_; }
  [[nodiscard]] std::uint64_t job() const { return job_; }
  // With cfg.stats: the attempts seen so far, for --stats.
  [[nodiscard]] const job_stats& job_statistics() const { return attempts_; }
  // With cfg.report: the attempts collected so far, for --report; otherwise null.
  [[nodiscard]] const report_collector* report() const { return report_.get(); }
  // Bytes held in -k's reorder buffer (the simulator checks it stays bounded).
  [[nodiscard]] std::uint64_t held_bytes() const { return held_bytes_; }

 private:
  // One function per event or transition.
  void on_job_info(const wire::job_info& j, time_point now);
  void on_abort(const wire::abort_msg& a, time_point now);
  void on_halt(const wire::halt_msg& h, time_point now);
  void on_foreign_version(std::uint64_t version);
  void accept(const wire::result_view& r, std::string_view worker);
  void emit(const wire::result_view& r, std::string_view worker);
  void write_by_rule(std::string_view output);
  void after_batch(time_point now);
  void update_held_back(time_point now);
  void bound_acks();
  [[nodiscard]] bool all_written() const;
  void try_to_complete(time_point now); // collecting -> completing, once the output has drained
  void begin_abort(std::string reason, int code, time_point now);
  void finish_complete(); // the job's summary on stderr, then exit 0 or 3
  void finish(int code);
  void send_due(time_point now);
  void send_status(time_point now);
  // Answers a ventilator of another job (a restarted one) with the job this sink serves, its input,
  // and every id final here (durable ones only, with a journal).
  void send_claim(time_point now);
  void fill_marks(wire::sink_status& s) const; // written_below, done_below, held bytes, held back
  void send(const wire::message& m, time_point now);
  void drop_frame(std::string_view why);
  void resume_from(const journal::state& st);
  void ship_group(time_point now); // closes the open journal group
  // With journaled attempts: `r` goes into the open group's attempt log.
  void journal_attempt(const wire::result_view& r, std::string_view worker, bool with_command);
  // Resuming: the journal's tally and the attempts after it, into job_stats and report_collector.
  void recount(const journal::state& st);

  sink_config cfg_;
  sink_io& io_;
  phase phase_ = phase::waiting_for_job;
  std::optional<int> exit_code_;
  counters stats_;
  job_stats attempts_;                       // --stats
  std::unique_ptr<report_collector> report_; // --report
  bool journal_attempts_ = false;            // cfg.journal and (cfg.stats or cfg.report)
  std::uint64_t job_ = 0;
  bool held_back_ = false;  // the output's backlog passed output_limit: results wait in the socket
  bool halted_ = false;     // --halt stopped the job: what we have is the output
  bool status_due_ = false; // the last control frame could not be sent: the phase's frames are retried
  std::uint64_t held_bytes_ = 0;

  std::unique_ptr<aggregator> aggregator_;
  done_set done_;
  reorder_buffer order_; // -k (without an aggregator)
  std::int64_t total_ = -1;
  fleet fleet_;
  // The next status. Its acks and done runs are everything not yet acknowledged: cleared by a send
  // that went out, kept (and bounded by bound_acks()) while none can.
  wire::sink_status status_;
  std::size_t compact_at_ = 0;
  bool output_final_ = false; // the aggregate, if any, is written: nothing more will be
  bool complete_acked_ = false;
  bool foreign_results_logged_ = false;
  int abort_code_ = 1;       // the exit code once the aborting phase ends
  std::string abort_reason_; // what our abort says, resent while it could not go out
  time_point vent_seen_;     // the last job_info of our ventilator (of any, before we have a job)
  time_point next_heartbeat_;
  time_point deadline_;      // completing, aborting: when we stop waiting for the ventilator's answer
  time_point last_try_;      // the last control frame we tried to send
  std::string frame_;        // reused encoding buffer
  wire::results_view batch_; // reused decoding buffer: views into the frame being handled
  std::string sender_name_;  // "NAME@host:pid" for the batch being accepted, under CURVE

  // With a journal. The open group: its final ids and held results (for the journal), and its acks
  // (finals and duplicates), sent once it is durable.
  struct group {
    std::uint64_t seq = 0;
    std::vector<wire::id_range> acks;
    std::vector<wire::ack> retries;  // with journaled attempts: failed attempts to acknowledge for a retry
    std::uint64_t done_below = 0;    // done_.watermark() when it closed
    std::uint64_t written_below = 0; // order_.next() when it closed
  };
  journal::commit pending_;
  std::vector<wire::id_range> pending_acks_;
  std::vector<wire::ack> pending_retries_;
  std::vector<std::uint64_t> pending_held_; // -k: ids put in the reorder buffer during the group
  std::size_t pending_count_ = 0;
  bool pending_open_ = false;
  time_point pending_since_{};
  std::deque<group> groups_; // closed, not yet durable
  std::uint64_t group_seq_ = 0;
  std::uint64_t durable_below_ = 0; // what statuses say: durable, not merely written
  std::uint64_t durable_written_below_ = 0;
  std::uint64_t expected_job_ = 0; // resuming: the journal's job
  std::string fingerprint_;        // the job's input, as its ventilator described it (job_info)
  std::uint64_t claimed_to_ = 0;   // the last other job told of ours (logged once each)
  bool complete_journaled_ = false;
};

} // namespace mtask
