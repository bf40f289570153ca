// The ventilator's protocol as a state machine: no sockets, clock, threads or processes. It takes
// events (a frame from a peer, the input having more, time passing) and acts through
// `ventilator_net::send`; the I/O loop (ventilator.cpp) and the simulator (tests/sim) drive it.
#pragma once

#include "common/clock.hpp"
#include "common/id_set.hpp"
#include "input/input_reader.hpp"
#include "protocol/send_result.hpp"
#include "protocol/wire.hpp"
#include "ventilator/halt_policy.hpp"
#include "ventilator/ledger.hpp"
#include "ventilator/worker_table.hpp"

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace mtask {

struct ventilator_config {
  std::uint64_t job = 1;      // non-zero, random per run
  std::size_t window = 32768; // tasks read and not yet acknowledged by the sink
  std::size_t batch = 4096;   // tasks per message at most
  ledger_limits limits;
  halt_policy halt; // --halt: stop early on failures, successes or tasks done
  millis heartbeat{250};
  millis heartbeat_timeout{3000};
  millis idle_timeout{60000}; // 0: never give up
  // --linger-ms: how long a complete job stays to tell late --once workers it is over (they exit 0
  // at once rather than wait out their idle timeout and exit 1).
  millis linger{0};
  std::size_t max_message_bytes = wire::default_max_frame_bytes;
  // With -k, result bytes the sink may hold for an earlier task before input reading pauses.
  std::uint64_t max_held_bytes = 16u << 20;
  std::string sink_endpoint;       // advertised to workers started without --sink
  std::string ventilator_endpoint; // for messages only
  // What the input is (input/fingerprint.hpp). A sink already serving a job of the same input
  // makes this a restart: its job is adopted and the ids it holds are skipped. "": a pipe, which
  // cannot be resumed.
  std::string fingerprint;
};

// What the core asks of the network.
class ventilator_net {
 public:
  virtual ~ventilator_net() = default;
  // Sends `frame` to the peer whose routing id is `to`, without blocking.
  virtual send_result send(const std::string& to, std::string_view frame) = 0;
};

// What the transport vouches for about the sender of a frame. Under CURVE: the name its key has
// on the --allow list, and whether it is the key given as --sink-key (nothing else may act as the
// sink). In plaintext anyone may be anything.
struct peer_credentials {
  std::string_view name; // "" in plaintext
  bool may_be_sink = true;
};

class ventilator_core {
 public:
  enum class phase {
    waiting_for_sink, // no sink has confirmed our job: nothing is dispatched (its results would be dropped)
    running,          // dispatching against credit until the sink says every task is written
    halting,          // --halt: nothing more dispatched; then the sink is told to finish with what it has
    farewell,         // complete: telling live workers, waiting for the sink to leave (bounded)
    aborting,         // giving up: the sink is told, we wait for it to leave (bounded)
    finished,         // exit_code() is set
  };

  ventilator_core(ventilator_config cfg, task_source& input, ventilator_net& net, time_point now);

  // A frame arrived from the peer with routing id `from`. Malformed and foreign frames are counted
  // and dropped; a frame of another protocol version is answered with wrong_version.
  void on_message(const std::string& from, std::string_view frame, time_point now, peer_credentials who = {});
  // Reads what input is ready, dispatches against credit, runs the timers (heartbeats, expiry,
  // idle timeout, the farewell's end). Call after every batch of events and at next_wakeup().
  void advance(time_point now);
  // Stop by signal: tell the sink and leave (exit code 128 + signal).
  void stop(int signal, time_point now);
  // A local failure (the input cannot be read): tell the sink and leave with exit code 1.
  void give_up(std::string reason, time_point now);

  // Returns: when advance() must run again even if nothing arrives.
  [[nodiscard]] time_point next_wakeup() const;
  // Returns: whether the I/O loop should read more input now (the window has room).
  [[nodiscard]] bool wants_input() const;
  [[nodiscard]] phase current_phase() const { return phase_; }
  // Returns: the process exit code once finished.
  [[nodiscard]] std::optional<int> exit_code() const { return exit_code_; }

  struct counters {
    std::uint64_t malformed = 0;     // frames dropped: malformed, foreign, or from the wrong peer
    std::uint64_t requeued = 0;      // tasks requeued after their worker was lost
    std::uint64_t lost_batches = 0;  // batches that never reached their worker (requeued, no crash)
    std::uint64_t rerun_unacked = 0; // tasks of idle workers the sink never acknowledged, run again
    std::uint64_t retried = 0;       // failed attempts run again
    std::uint64_t too_large = 0;     // tasks failed for exceeding --max-message-bytes
    std::uint64_t skipped = 0;       // resuming: tasks read and not dispatched, the sink held them already
  };
  [[nodiscard]] const counters& stats() const { return stats_; }
  [[nodiscard]] const ledger& tasks() const { return ledger_; }
  [[nodiscard]] const worker_table& workers() const { return workers_; }
  [[nodiscard]] std::uint64_t job() const { return cfg_.job; }
  // Returns: whether this run continues a job a sink was already serving (a restart).
  [[nodiscard]] bool resumed() const { return resumed_; }

 private:
  void read_input(time_point now);
  void dispatch(time_point now);
  void on_tick(time_point now);
  void check_idle(time_point now);
  void on(const wire::worker_status& s, const std::string& from, time_point now);
  void on(const wire::worker_bye& b, const std::string& from, time_point now);
  // --halt: whether the sink's latest counts reach the policy; if so, stop dispatching.
  void check_halt(time_point now);
  // halting: tells the sink once no task is running anywhere (`soon`) or at once (`now`).
  void advance_halt(time_point now);
  // mtask-top asks: answered at once, the asker is not a worker (nothing is dispatched to it).
  void on(const wire::status_request& r, const std::string& from, time_point now);
  void on(const wire::sink_status& s, const std::string& from, time_point now);
  // A sink serving another job answered our job_info: continue its job if its input is ours.
  // Returns: whether the job was adopted (the claim then counts as the sink's first status).
  bool on_claim(const wire::sink_status& s);
  // Resuming: whether task `id` is already final at the sink (it is read and skipped). Asked in
  // increasing order of id.
  [[nodiscard]] bool done_before(std::uint64_t id) const;
  // The sink's acknowledgements: every id below `done_below` and in `done` is final there. Those
  // read release the ledger; resuming, those not read yet are skipped when they are.
  void take_done(std::uint64_t done_below, const std::vector<wire::id_range>& done);
  // Resuming: ids [first, first + count) are final at the sink; those not read yet will be skipped.
  void skip_later(std::uint64_t first, std::uint64_t count);
  void on(const wire::abort_msg& a, const std::string& from, time_point now);
  void on(const wire::complete& c, const std::string& from, time_point now);
  void lose_worker(const std::string& id, std::string_view why);
  // Sends the sink outcomes the ventilator decided itself (quarantined, too large), and keeps them
  // to send again until the sink acknowledges them.
  void send_failures(std::vector<wire::result> results);
  void resend_decided();
  std::size_t batch_header_bytes();
  send_result send_to(const std::string& id, const wire::message& m);
  void send_to_sink(const wire::message& m);
  void send_job_info();
  void send_vent_status(const std::string& id);
  void begin_abort(std::string reason, int code, time_point now);
  void finish(int code);
  [[nodiscard]] bool sink_gone();
  [[nodiscard]] std::int64_t total() const;

  ventilator_config cfg_;
  task_source& input_;
  ventilator_net& net_;
  std::string terminator_;
  ledger ledger_;
  worker_table workers_;
  phase phase_ = phase::waiting_for_sink;
  std::optional<int> exit_code_;
  counters stats_;

  std::uint64_t next_id_ = 0;
  bool input_done_ = false;
  // Resuming: ids not read yet that the sink holds already (its claim, and late acks of tasks our
  // predecessor dispatched), skipped as they are read.
  bool resumed_ = false;
  id_set skip_;
  bool skip_pending_ = false; // a turn's budget ran out with done tasks ahead
  // Waiting for the sink, the acks of its statuses of a job not (yet) ours: the sink has sent them
  // and forgotten them, and its claim lists only what was durable when it was made, so they count
  // if we adopt that job.
  std::uint64_t early_job_ = 0;
  std::uint64_t early_done_below_ = 0;
  std::vector<wire::id_range> early_done_;
  std::string sink_id_;
  bool impostor_logged_ = false; // a non-sink key sent a sink's message (logged once)
  bool sink_held_back_ = false;
  time_point sink_released_at_{};
  time_point sink_seen_{};
  time_point sink_spoke_{}; // the last status of our job (acks can arrive): hellos do not count
  std::uint64_t sink_written_below_ = 0;
  std::uint64_t sink_held_bytes_ = 0;
  bool ordered_sink_ = false; // the sink writes in task order (-k): written_below means something
  std::uint64_t failed_ = 0;
  time_point phase_since_{}; // when farewell or aborting began
  bool lingering_ = false;   // farewell is over but --linger-ms is not: waiting for late workers
  time_point started_{};     // for status reports' elapsed time
  // --halt: the sink's counts of final results and failures, and the halt once decided.
  std::uint64_t sink_final_ = 0;
  std::uint64_t sink_failed_ = 0;
  std::string halt_reason_;
  bool halt_now_ = false;             // `now`: running tasks are cancelled, the sink told at once
  bool halt_told_ = false;            // the sink has been sent `halt` (again at each tick until it completes)
  std::uint64_t halt_wait_final_ = 0; // `now`: the sink's counts the halt waits for
  std::uint64_t halt_wait_failed_ = 0;
  time_point stalled_since_{};
  time_point next_tick_{};
  time_point last_resend_{};
  time_point last_advance_{};
  time_point next_probe_{}; // the next job_info that may answer a sink of another job
  int abort_code_ = 1;
  std::map<std::uint64_t, wire::result> decided_; // outcomes decided here, until the sink acks them
  std::set<std::string> wrong_version_peers_;     // logged once each
  std::size_t batch_header_bytes_ = 0;
  std::string frame_;
  wire::tasks_builder batch_;
  bool sink_wants_details_ = false; // the sink keeps a joblog: batches ask for per-attempt details
};

} // namespace mtask
