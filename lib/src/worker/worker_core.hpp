// The worker's protocol as a state machine: no sockets, clock or processes. It takes events (a
// frame from the ventilator, time passing) and acts through `worker_io` (frames to the ventilator
// and the sink) and a task_runner (start tasks, collect finished ones). The I/O loop (worker.cpp)
// polls the runner's descriptors; the simulator (tests/sim) gives it a runner of its own.
#pragma once

#include "common/clock.hpp"
#include "protocol/send_result.hpp"
#include "protocol/wire.hpp"
#include "worker/task_runner.hpp"

#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mtask {

struct worker_config {
  std::string name;   // host:pid, for logs
  unsigned slots = 1; // -j
  bool once = false;  // exit when the job it served is complete
  int prefetch = -1;  // tasks held beyond the slots; -1: sized from observed task times
  millis delay{0};    // --delay: at least this long between two task starts on this worker
  millis heartbeat{250};
  millis heartbeat_timeout{3000};
  millis idle_timeout{0}; // 0: wait for jobs forever
  std::size_t max_message_bytes = wire::default_max_frame_bytes;
  bool sink_given = false;         // --sink was given: ignore the endpoint the ventilator names
  std::string ventilator_endpoint; // for messages only
};

// What the core asks of the network.
class worker_io {
 public:
  virtual ~worker_io() = default;
  virtual send_result send_to_ventilator(std::string_view frame) = 0;
  // (Re)connects the results socket to `endpoint` (named by the ventilator when no --sink was
  // given). The core calls it only when the endpoint changes.
  virtual void connect_sink(const std::string& endpoint) = 0;
  // Returns: unreachable while no sink socket exists or is connected; full when its queue is.
  virtual send_result send_to_sink(std::string_view frame) = 0;
  // Returns: the wall clock in µs since the epoch (a result's start_us, for the sink's joblog).
  [[nodiscard]] virtual std::uint64_t wall_clock_us() const;
};

class worker_core {
 public:
  enum class phase {
    serving,  // taking tasks of whatever job its ventilator runs
    finished, // exit_code() is set (--once after its job, gave up, or stopped)
  };

  worker_core(worker_config cfg, task_runner& runner, worker_io& io, time_point now);

  // A frame from the ventilator (tasks, vent_status, wrong_version). Malformed frames are counted
  // and dropped; a frame of another protocol version ends the worker with exit code 1 and a
  // one-line error naming both versions.
  void on_message(std::string_view frame, time_point now);
  // Collects finished tasks, starts tasks, sends results (cut to stay under max_message_bytes;
  // a single result over it fails as too_large) and the status (credit, batch numbers, lost
  // batches), runs the timers. Call after every batch of events and at next_wakeup().
  void advance(time_point now);
  // Stop by signal: say bye, signal running tasks, exit 128 + signal.
  void stop(int signal, time_point now);
  // A failure the worker cannot get past (the sink refuses it): log `reason` as an error, say bye
  // (the ventilator requeues our tasks at once), signal running tasks, exit 1.
  void give_up(std::string_view reason, time_point now);

  [[nodiscard]] time_point next_wakeup(time_point now) const;
  // Returns: whether the I/O loop should wake when the ventilator's socket becomes writable.
  [[nodiscard]] bool wants_to_send_status() const { return status_due_; }
  // Returns: whether results wait for the sink's socket to become writable.
  [[nodiscard]] bool wants_to_send_results() const { return !outbox_.empty(); }
  [[nodiscard]] phase current_phase() const { return phase_; }
  [[nodiscard]] std::optional<int> exit_code() const { return exit_code_; }
  [[nodiscard]] std::uint64_t malformed() const { return malformed_; }
  // Tasks received and not yet handed on to the sink (the simulator bounds it by the credit offered).
  [[nodiscard]] std::size_t busy() const;

 private:
  // Events.
  void on_tasks(std::string_view frame, time_point now);
  void on_vent_status(const wire::vent_status& v);
  void on_foreign_version(std::uint64_t version);
  bool use_sink(std::string_view endpoint);
  void switch_job(std::uint64_t job);
  void mark_lost(std::uint64_t first, std::uint64_t end);
  void heard_ventilator(time_point now);
  void drop(std::string_view why);
  // advance()'s steps.
  bool timed_out(time_point now);
  void start_tasks(time_point now);
  void collect();
  void add_result(std::uint64_t job, const wire::result& r);
  void flush_results();
  void send_status();
  void finish(int code);
  void leave(); // bye to the ventilator, SIGTERM to running tasks

  // Slots bound what runs; finished results waiting for the sink socket bound how much more starts
  // (so a stalled sink stops the worker instead of piling results up in it).
  [[nodiscard]] bool can_start() const;
  [[nodiscard]] std::size_t outbox_limit() const { return cfg_.slots + prefetch(); }
  [[nodiscard]] std::size_t prefetch() const;
  [[nodiscard]] std::uint32_t free_slots() const;

  worker_config cfg_;
  task_runner& runner_;
  worker_io& io_;
  phase phase_ = phase::serving;
  std::optional<int> exit_code_;
  bool status_due_ = true;
  time_point next_heartbeat_;
  // Finished, not yet handed to the sink socket: one message per job and per max_message_bytes,
  // almost always just one. Each result is encoded as it finishes, into its job's message.
  std::deque<wire::results_builder> outbox_;
  std::size_t outbox_count_ = 0;
  std::size_t results_limit_ = 0;       // bytes a results message may reach
  std::size_t empty_results_bytes_ = 0; // a results message with no result yet (the envelope)
  std::uint64_t malformed_ = 0;
  std::uint64_t duplicates_ = 0; // batches delivered twice, dropped

  std::uint64_t job_ = 0;            // job of the last tasks received
  bool details_ = false;             // job_'s batches ask for per-attempt details (a joblog)
  std::uint64_t done_ = 0;           // tasks of job_ finished here (told in each status, for mtask-top)
  std::uint64_t failed_ = 0;         // of them, failures for good (for the ventilator's --halt)
  std::uint64_t cancelled_job_ = 0;  // the job --halt now cancelled here (once)
  time_point next_start_{};          // --delay: no task starts before this
  std::uint64_t next_seq_ = 1;       // the batch number of job_ expected next
  std::vector<wire::id_range> lost_; // batches of job_ that will never arrive, until resolved
  std::uint64_t completed_job_ = 0;
  std::string sink_endpoint_;    // the one connect_sink() was last called with (none with --sink)
  std::deque<job_task> backlog_; // received (prefetched), waiting for room in the runner
  time_point vent_seen_;
  bool vent_heard_ = false;    // a ventilator has spoken to us (for --once: its silence ends our service)
  double ewma_runtime_us_ = 0; // moving average of task run times
  std::uint64_t runtime_samples_ = 0;

  // Buffers kept for reuse: batches of micro-tasks would otherwise allocate (and page-fault in)
  // thousands of results' worth of memory per batch.
  std::vector<finished_task> finished_;
  std::vector<wire::results_builder> spare_builders_;
  std::string frame_;      // reused encoding buffer
  wire::tasks_view batch_; // reused decoding buffer for tasks
};

} // namespace mtask
