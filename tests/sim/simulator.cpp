// The simulated world: links with per-direction FIFO delivery and random delays, faults (dropped
// connections and what was queued on them, partitions, worker crashes, restarts and pauses,
// duplicate deliveries, full queues, a slow reader at the sink, payloads and results near and over
// the frame limit, the sink and the ventilator crashing and restarting), the sink's disk (its
// journal's fsyncs, and what a crash leaves of it), and the invariants checked on every run. One
// seeded RNG decides everything.
#include "simulator.hpp"

#include "common/log.hpp"
#include "input/input_reader.hpp"
#include "mtask/error.hpp"
#include "protocol/wire.hpp"
#include "sink/journal.hpp"
#include "sink/sink_core.hpp"
#include "ventilator/ventilator_core.hpp"
#include "worker/task_runner.hpp"
#include "worker/worker_core.hpp"

#include <fmt/format.h>

#include <time.h>
#include <algorithm>

#include <chrono>
#include <deque>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <queue>
#include <random>
#include <set>
#include <vector>

namespace mtask::sim {
namespace {

// The product's defaults, as a demanding user runs it: the simulation must pass with them.
constexpr millis heartbeat{250};
constexpr millis heartbeat_timeout{3000};
constexpr std::uint32_t max_crashes = 3;
// Small, so that batches are cut and tasks and results cross the limit cheaply.
constexpr std::size_t max_message = 16u << 10;
// The job must end within `settle` (plus its work) after the last fault.
constexpr millis settle{60000};

class random_source {
 public:
  explicit random_source(std::uint64_t seed) : g_(seed) {}
  std::uint64_t below(std::uint64_t n) { return n == 0 ? 0 : g_() % n; }
  bool chance(double p) { return static_cast<double>(g_() >> 11) * 0x1.0p-53 < p; }
  millis between(millis a, millis b) { return a + millis(below(static_cast<std::uint64_t>((b - a).count()) + 1)); }

 private:
  std::mt19937_64 g_;
};

// The tasks of a job: what each asks for, so the expected outcome is known.
struct task_spec {
  std::size_t payload_bytes = 0; // padding in the payload
  std::size_t output_bytes = 0;  // padding the runner puts in the output
  millis duration{0};
};

std::string payload_of(std::uint64_t id, const task_spec& t) {
  return fmt::format("t{}:{}:{}:{}", id, t.output_bytes, t.duration.count(), std::string(t.payload_bytes, 'p'));
}
std::string output_of(std::uint64_t id, std::size_t output_bytes) {
  return fmt::format("r{}:{}\n", id, std::string(output_bytes, 'o'));
}

// Input from memory.
class vector_source final : public task_source {
 public:
  explicit vector_source(std::vector<std::string> payloads) : payloads_(std::move(payloads)) {}
  int fd() override { return -1; }
  void read_chunk() override {}
  std::optional<std::string> next() override {
    if (next_ >= payloads_.size()) return std::nullopt;
    return std::move(payloads_[next_++]);
  }
  bool exhausted() const override { return next_ >= payloads_.size(); }
  std::string terminator() const override { return "\n"; }

 private:
  std::vector<std::string> payloads_;
  std::size_t next_ = 0;
};

// Runs a task by reading what its payload asks for: finishes `duration` after it starts, with
// `output_bytes` of output.
class sim_runner final : public task_runner {
 public:
  // `on_start` hears of every task started (the simulator counts runs per task id).
  sim_runner(unsigned slots, std::function<void(std::uint64_t)> on_start)
      : slots_(slots), on_start_(std::move(on_start)) {}
  bool has_room() const override { return running_.size() < slots_; }
  void start(job_task t, time_point now) override {
    std::uint64_t id = 0, out = 0, ms = 0;
    (void)std::sscanf(t.task.payload.c_str(), "t%lu:%lu:%lu:", &id, &out, &ms);
    on_start_(t.task.id);
    running_.push_back({now + millis(ms), out, std::move(t)});
  }
  std::size_t running() const override { return running_.size(); }
  void poll_items(std::vector<pollfd>&) const override {}
  void on_ready(const std::vector<pollfd>&, time_point now) override {
    for (auto it = running_.begin(); it != running_.end();) {
      if (it->done_at > now) {
        ++it;
        continue;
      }
      auto r = result_for(it->task);
      r.output = output_of(it->task.task.id, it->output_bytes);
      report(it->task, std::move(r));
      it = running_.erase(it);
    }
  }
  time_point next_deadline(time_point fallback) const override {
    for (const auto& r : running_) fallback = std::min(fallback, r.done_at);
    return fallback;
  }
  void stop(int) override { running_.clear(); }

 private:
  struct run {
    time_point done_at;
    std::size_t output_bytes;
    job_task task;
  };
  unsigned slots_;
  std::function<void(std::uint64_t)> on_start_;
  std::vector<run> running_;
};

class world;

// The sink's disk (--output FILE --journal J), as journal_file.cpp uses it: each journal group's
// records reach J in order, each after a simulated fsync; the output's bytes are written at once
// but count as durable only with the record after them (the real writer syncs FILE, then appends
// and syncs the record), so a crash cuts FILE back to the end the journal names.
struct sim_disk {
  struct sync {
    time_point at;
    std::uint64_t seq = 0; // the journal group; 0 for the completion
    std::string records;
  };
  std::string journal;      // the synced records (the header first)
  std::deque<sync> syncing; // written, their fsync not yet returned, in order
  std::string job_record;   // the job's record, until the next group carries it (as sink.cpp does)
  bool complete = false;    // a completion record is synced
};

// Kinds of fault (the numbers are what --verbose prints).
enum fault_kind : int {
  sink_link_drop,
  worker_vent_link_drop,
  worker_sink_link_drop,
  worker_crash,
  worker_pause,
  slow_reader,
  worker_start,
  sink_crash,
  sink_restart,
  ventilator_crash,
  ventilator_restart,
};
constexpr const char* fault_names[] = {"sink link drop",        "worker-ventilator link drop",
                                       "worker-sink link drop", "worker crash",
                                       "worker pause",          "slow reader",
                                       "worker start",          "sink crash",
                                       "sink restart",          "ventilator crash",
                                       "ventilator restart"};

// One connection: `a` is the connecting side (a worker or the sink), `b` the bound side (the
// ventilator, or the sink for a worker's results). Each direction is FIFO.
struct link {
  bool up = true;
  std::uint64_t generation = 0; // a drop discards everything of earlier generations in flight
  time_point last_to_a{};
  time_point last_to_b{};
};

struct flight {
  time_point at;
  std::uint64_t order;
  int link;
  std::uint64_t generation;
  bool to_b;
  std::string bytes;
  time_point sent;
  bool operator>(const flight& o) const { return at != o.at ? at > o.at : order > o.order; }
};

struct sim_worker {
  std::string id;
  int vent_link = -1;
  int sink_link = -1;
  bool sink_connected = false;
  bool alive = true;
  time_point paused_until{};
  std::unique_ptr<sim_runner> runner;
  std::unique_ptr<worker_io> io;
  std::unique_ptr<worker_core> core;
  std::set<std::uint64_t> delivered;              // task ids it received
  std::map<std::uint64_t, time_point> dispatched; // when the ventilator sent each id it received, the last time
};

class world {
 public:
  world(const options& o, random_source& rng) : o_(o), rng_(rng) {}
  outcome run();

  // The network, as the cores' adapters use it.
  send_result send(int l, bool to_b, std::string_view frame) {
    auto& k = links_[static_cast<std::size_t>(l)];
    if (!k.up) return send_result::unreachable;
    if (o_.faults && rng_.chance(0.005)) return send_result::full; // a queue at its high-water mark
    auto& last = to_b ? k.last_to_b : k.last_to_a;
    const auto at = std::max(now_ + std::chrono::microseconds(50 + rng_.below(o_.faults ? 3000 : 200)), last);
    last = at;
    flights_.push(flight{at, order_++, l, k.generation, to_b, std::string(frame), now_});
    if (o_.faults && rng_.chance(0.01)) { // a duplicate delivery, right behind the first (FIFO holds)
      flights_.push(flight{at, order_++, l, k.generation, to_b, std::string(frame), now_});
    }
    return send_result::sent;
  }
  // A journal group's (or the completion's) records, synced after a simulated fsync.
  void sync_later(std::uint64_t seq, std::string records) {
    const auto at = now_ + std::chrono::microseconds(200 + rng_.below(7800));
    disk_.syncing.push_back(sim_disk::sync{.at = disk_.syncing.empty() ? at : std::max(at, disk_.syncing.back().at),
                                           .seq = seq,
                                           .records = std::move(records)});
  }
  [[nodiscard]] std::uint64_t failures_bytes() const {
    std::uint64_t n = 0;
    for (const auto& f : failures_) n += f.size();
    return n;
  }
  int worker_index_of(const std::string& id) const {
    auto it = worker_by_id_.find(id);
    return it == worker_by_id_.end() ? -1 : it->second;
  }

  std::string output_;                // what the sink wrote (its FILE)
  std::vector<std::string> failures_; // --failures lines
  std::size_t backlog_ = 0;           // output bytes the reader has not taken
  sim_disk disk_;
  std::vector<sim_worker> workers_;
  std::vector<link> links_;
  int sink_link_ = -1;
  time_point now_{};
  time_point start_ = time_point{} + std::chrono::hours(1);

 private:
  struct fault {
    time_point at;
    int kind;
    std::uint64_t target;
    millis length;
  };

  void start_worker();
  void drop_link(int l, millis down_for);
  [[nodiscard]] bool vent_up() const { return vent_ && !vent_->exit_code(); }
  [[nodiscard]] bool sink_up() const { return sink_ && !sink_->exit_code(); }
  // Whether both processes at the ends of link `l` run (a link to a process that is down stays down).
  [[nodiscard]] bool ends_up(int l) const;
  // Brings up every link that is down for no reason but a process that has restarted since.
  void reconnect();
  void schedule(fault f, std::size_t after);
  [[nodiscard]] millis restart_delay();
  void crash_sink();
  void restart_sink();
  void crash_ventilator();
  void restart_ventilator();
  void on_run(int worker, std::uint64_t id); // a worker started task `id`
  void heard_done(std::string_view frame);   // the ventilator got a sink_status
  [[nodiscard]] double ms_since_start() const {
    return std::chrono::duration<double, std::milli>(now_ - start_).count();
  }
  void crash_worker(int i);
  void strike(int i); // worker i went away (or silent past the timeout) holding what it was sent
  void deliver(flight f);
  void schedule_faults();
  void apply_fault(std::size_t k);
  void check_bounds();
  // Runs `fn` (a call into the ventilator core), timing it in scale mode.
  template <typename Fn>
  void timed(Fn fn) {
    if (!o_.scale) {
      fn();
      return;
    }
    timespec a{}, b{};
    ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &a);
    fn();
    ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &b);
    result_.ventilator_ns +=
        static_cast<double>(b.tv_sec - a.tv_sec) * 1e9 + static_cast<double>(b.tv_nsec - a.tv_nsec);
  }
  std::string check_outcome();

  const options& o_;
  random_source& rng_;
  std::priority_queue<flight, std::vector<flight>, std::greater<>> flights_;
  std::uint64_t order_ = 0;
  std::map<std::string, int> worker_by_id_;
  std::map<int, time_point> link_up_at_;
  unsigned slots_ = 1;

  std::vector<task_spec> tasks_;
  std::vector<std::string> payloads_; // the input, read again by a restarted ventilator
  std::vector<int> strikes_;
  std::vector<int> runs_;       // starts per task id, on any worker
  std::vector<bool> told_done_; // ids the running ventilator was told are final at the sink
  // Tasks the journal held when the sink crashed: they must never be sent to a worker again.
  // `acked`: the running ventilator had its acknowledgement (or no ventilator ran, and the next
  // one learns the job from the sink's claim). Otherwise the ventilator holds it, or will read it,
  // its ack lost with the crash, and the restarted sink acknowledges it again; until then what would rerun it
  // without the crash still may: a worker that received it lost (at any time), or an ack lost
  // or held up on the sink's connection (cut off at the crash, or dropped since).
  struct guard {
    time_point since;
    bool acked = false;
    std::uint64_t sink_link_drops = 0;
  };
  std::map<std::uint64_t, guard> guards_;
  std::uint64_t sink_link_drops_ = 0;
  std::shared_ptr<const journal::state> resume_; // what the restarted sink reads from its journal
  time_point last_restart_{};                    // the job must end in time after this too
  std::unique_ptr<vector_source> input_;
  std::unique_ptr<ventilator_net> vent_net_;
  std::unique_ptr<ventilator_core> vent_;
  std::unique_ptr<sink_io> sink_io_;
  std::unique_ptr<sink_core> sink_;
  ventilator_config vcfg_;
  sink_config scfg_;
  std::size_t drain_per_ms_ = 1u << 20;
  time_point slow_until_{};

  std::vector<fault> faults_;
  std::size_t next_fault_ = 0;
  millis fault_span_{0}; // faults happen while the job is expected to run
  std::string violation_;
  outcome result_;
  bool sink_closed_ = false;
  bool vent_closed_ = false;
};

class vent_adapter final : public ventilator_net {
 public:
  explicit vent_adapter(world& w) : w_(w) {}
  send_result send(const std::string& to, std::string_view frame) override {
    if (to == "sink") return w_.send(w_.sink_link_, false, frame);
    const int i = w_.worker_index_of(to);
    if (i < 0) return send_result::unreachable;
    return w_.send(w_.workers_[static_cast<std::size_t>(i)].vent_link, false, frame);
  }

 private:
  world& w_;
};

class sink_adapter final : public sink_io {
 public:
  explicit sink_adapter(world& w) : w_(w) {}
  send_result send_control(std::string_view frame) override {
    auto r = w_.send(w_.sink_link_, true, frame);
    return r == send_result::unreachable ? send_result::full : r; // a DEALER: EAGAIN either way
  }
  void write_output(std::string_view bytes) override {
    w_.output_.append(bytes);
    w_.backlog_ += bytes.size();
  }
  void write_failure(std::string_view line) override { w_.failures_.emplace_back(line); }
  std::size_t output_backlog() const override { return w_.backlog_; }
  // With a journal, also every record synced (the real loop waits for its journal's thread).
  bool output_drained() override { return w_.backlog_ == 0 && w_.disk_.syncing.empty(); }
  void journal_group(std::uint64_t seq, journal::commit& group) override {
    journal::commit c = group;
    c.output_end = w_.output_.size();
    c.failures_end = w_.failures_bytes();
    std::string records = std::exchange(w_.disk_.job_record, {});
    journal::append_record(records, c);
    w_.sync_later(seq, std::move(records));
  }
  void journal_job(const journal::job_record& j) override { journal::append_record(w_.disk_.job_record, j); }
  void journal_complete(const journal::completion& c) override {
    std::string records;
    journal::append_record(records, c);
    w_.sync_later(0, std::move(records));
  }

 private:
  world& w_;
};

class worker_adapter final : public worker_io {
 public:
  worker_adapter(world& w, int index) : w_(w), i_(index) {}
  send_result send_to_ventilator(std::string_view frame) override {
    auto r = w_.send(self().vent_link, true, frame);
    return r == send_result::unreachable ? send_result::full : r; // a DEALER: EAGAIN either way
  }
  void connect_sink(const std::string&) override { self().sink_connected = true; }
  send_result send_to_sink(std::string_view frame) override {
    if (!self().sink_connected) return send_result::unreachable;
    auto r = w_.send(self().sink_link, true, frame);
    return r == send_result::unreachable ? send_result::full : r;
  }

 private:
  sim_worker& self() { return w_.workers_[static_cast<std::size_t>(i_)]; }
  world& w_;
  int i_;
};

void world::start_worker() {
  const int i = static_cast<int>(workers_.size());
  auto& w = workers_.emplace_back();
  w.id = fmt::format("w{}", i);
  links_.emplace_back();
  w.vent_link = static_cast<int>(links_.size() - 1);
  links_.emplace_back();
  w.sink_link = static_cast<int>(links_.size() - 1);
  w.runner = std::make_unique<sim_runner>(slots_, [this, i](std::uint64_t id) { on_run(i, id); });
  w.io = std::make_unique<worker_adapter>(*this, i);
  // With --sink given, the worker's loop connects at start; otherwise the core asks when the
  // ventilator names the endpoint.
  w.sink_connected = rng_.chance(0.5);
  w.core = std::make_unique<worker_core>(worker_config{.name = w.id,
                                                       .slots = slots_,
                                                       .heartbeat = heartbeat,
                                                       .heartbeat_timeout = heartbeat_timeout,
                                                       .max_message_bytes = vcfg_.max_message_bytes,
                                                       .sink_given = w.sink_connected,
                                                       .ventilator_endpoint = "ipc:///sim/ventilator"},
                                         *w.runner, *w.io, now_);
  worker_by_id_[w.id] = i;
  // A coordinator that is down (crashed, not yet restarted) cannot be connected to yet.
  links_[static_cast<std::size_t>(w.vent_link)].up = ends_up(w.vent_link);
  links_[static_cast<std::size_t>(w.sink_link)].up = ends_up(w.sink_link);
}

bool world::ends_up(int l) const {
  if (l == sink_link_) return vent_up() && sink_up();
  for (const auto& w : workers_) {
    if (l == w.vent_link) return w.alive && vent_up();
    if (l == w.sink_link) return w.alive && sink_up();
  }
  return false;
}

void world::reconnect() {
  // ZeroMQ reconnects every few ms: a restarted coordinator is connected to at once, by its peers'
  // routing ids. A link in a partition (its timer pending) heals at its time.
  for (std::size_t l = 0; l < links_.size(); ++l) {
    const int i = static_cast<int>(l);
    if (!links_[l].up && !link_up_at_.contains(i) && ends_up(i)) links_[l].up = true;
  }
}

void world::heard_done(std::string_view frame) {
  wire::message m;
  try {
    m = wire::decode(frame, vcfg_.max_message_bytes);
  } catch (const protocol_error&) {
    return;
  }
  const auto* st = std::get_if<wire::sink_status>(&m);
  if (!st) return;
  if (o_.trace) {
    std::string runs;
    for (const auto& r : st->done) runs += fmt::format(" {}+{}", r.first, r.count);
    fmt::print(stderr, "{:>10.3f} sim: the ventilator gets a status of job {:016x}{}: done below {},{}\n",
               ms_since_start(), st->job, st->claim ? " (a claim)" : "", st->done_below, runs);
  }
  if (st->job != vent_->job()) return; // dropped (or a claim it refused)
  for (std::uint64_t id = 0; id < told_done_.size() && id < st->done_below; ++id) told_done_[id] = true;
  for (const auto& r : st->done) {
    for (auto id = r.first; id < told_done_.size() && id - r.first < r.count; ++id) told_done_[id] = true;
  }
}

void world::on_run(int worker, std::uint64_t id) {
  if (id >= runs_.size()) return;
  ++runs_[id];
  auto g = guards_.find(id);
  if (g == guards_.end() || !violation_.empty()) return;
  // A copy dispatched before the crash was in flight (a restarted ventilator sends again what the
  // sink had not yet made durable when it claimed the job): it may run.
  const auto& w = workers_[static_cast<std::size_t>(worker)];
  if (auto d = w.dispatched.find(id); d != w.dispatched.end() && d->second < g->second.since) return;
  if (!g->second.acked && (strikes_[id] > 0 || sink_link_drops_ != g->second.sink_link_drops)) return;
  violation_ =
      fmt::format("task {} ran again at +{} ms although the sink's journal held it when the sink crashed at +{} ms", id,
                  std::chrono::duration_cast<millis>(now_ - start_).count(),
                  std::chrono::duration_cast<millis>(g->second.since - start_).count());
}

millis world::restart_delay() {
  // Mostly soon (a supervisor restarting it), sometimes after the heartbeat timeout, always well
  // within the other side's --idle-timeout-ms (60 s), after which it gives up by design.
  return rng_.chance(0.25) ? rng_.between(heartbeat_timeout, millis(20000)) : rng_.between(millis(1), millis(2000));
}

void world::schedule(fault f, std::size_t after) {
  faults_.push_back(f);
  std::sort(faults_.begin() + static_cast<std::ptrdiff_t>(after) + 1, faults_.end(),
            [](const fault& a, const fault& b) { return a.at < b.at; });
}

void world::crash_sink() {
  sink_.reset();
  // A partition of the sink's connection holds up acks as a crash does: counted as a drop since.
  const std::uint64_t drops_before = sink_link_drops_ - (link_up_at_.contains(sink_link_) ? 1 : 0);
  // Its sockets close: the ventilator's connection and every worker's results connection.
  drop_link(sink_link_, millis::max() / 4);
  for (auto& w : workers_) drop_link(w.sink_link, millis::max() / 4);
  // What the disk keeps: the synced records, and perhaps some written ones whose fsync had not
  // returned (the last of them possibly torn). Not a completion, though: a sink restarted on a
  // complete journal exits at once without telling the ventilator, which then gives up after its
  // idle timeout (the known edge in docs/ARCHITECTURE.md, "Journal"), so crash_sink() is not
  // called once the completion is synced, and an unsynced one is lost.
  std::string j = disk_.journal;
  for (const auto& s : disk_.syncing) {
    if (s.seq == 0 || rng_.chance(0.5)) break;
    if (rng_.chance(0.3)) {
      j += s.records.substr(0, rng_.below(s.records.size()));
      break;
    }
    j += s.records;
  }
  disk_.syncing.clear();
  disk_.job_record.clear();
  journal::read_result r;
  try {
    r = journal::read(j);
  } catch (const journal::corrupt& e) {
    violation_ = fmt::format("the journal left by the sink's crash is corrupt: {}", e.what());
    return;
  }
  disk_.journal = j.substr(0, r.valid_bytes); // the restarted sink cuts a torn tail
  if (r.st.output_end > output_.size() || r.st.failures_end > failures_bytes()) {
    violation_ = "the journal names an output end beyond what was written";
    return;
  }
  // FILE and --failures are cut back to the journaled ends: what was written after is lost.
  if (o_.verbose) {
    fmt::print(stderr, "sim: the journal keeps {} final task(s); the output is cut from {} to {} bytes\n",
               r.st.final_ids.size(), output_.size(), r.st.output_end);
  }
  output_.resize(r.st.output_end);
  while (failures_bytes() > r.st.failures_end) failures_.pop_back();
  backlog_ = 0;
  for (const auto& run : r.st.final_ids.runs()) {
    for (auto id = run.first; id < run.first + run.count && id < runs_.size(); ++id) {
      guards_[id] = guard{.since = now_, .acked = !vent_up() || told_done_[id], .sink_link_drops = drops_before};
    }
  }
  resume_ = std::make_shared<const journal::state>(std::move(r.st));
}

void world::restart_sink() {
  // A new process on the same journal: its routing id comes from the journal's header, so the
  // ventilator's ROUTER sees the same peer.
  auto cfg = scfg_;
  cfg.resume = resume_;
  sink_ = std::make_unique<sink_core>(std::move(cfg), *sink_io_, now_);
  sink_closed_ = false;
  reconnect();
}

void world::crash_ventilator() {
  vent_.reset(); // its ledger, its worker table, everything
  input_.reset();
  drop_link(sink_link_, millis::max() / 4);
  for (auto& w : workers_) drop_link(w.vent_link, millis::max() / 4);
}

void world::restart_ventilator() {
  // The same command again: the same input and fingerprint, bound at the same address, and a new
  // random job id, which it gives up for the job the sink claims.
  input_ = std::make_unique<vector_source>(payloads_);
  told_done_.assign(told_done_.size(), false);
  vcfg_.job = rng_.below(std::numeric_limits<std::uint64_t>::max()) | 1;
  timed([&] { vent_ = std::make_unique<ventilator_core>(vcfg_, *input_, *vent_net_, now_); });
  vent_closed_ = false;
  reconnect();
}

void world::drop_link(int l, millis down_for) {
  auto& k = links_[static_cast<std::size_t>(l)];
  ++k.generation; // what was queued on it is lost
  k.up = false;
  if (down_for >= millis::max() / 4)
    link_up_at_.erase(l); // for good
  else
    link_up_at_[l] = now_ + down_for;
}

void world::strike(int i) {
  auto& w = workers_[static_cast<std::size_t>(i)];
  for (auto id : w.delivered) ++strikes_[id];
}

void world::crash_worker(int i) {
  auto& w = workers_[static_cast<std::size_t>(i)];
  if (!w.alive) return;
  strike(i);
  w.alive = false;
  drop_link(w.vent_link, millis::max() / 4);
  drop_link(w.sink_link, millis::max() / 4);
}

void world::deliver(flight f) {
  auto& k = links_[static_cast<std::size_t>(f.link)];
  if (f.generation != k.generation) return; // lost with its connection
  if (f.link == sink_link_) {
    if (f.to_b && vent_) {
      timed([&] { vent_->on_message("sink", f.bytes, now_); });
      if (!o_.scale && wire::peek_type(f.bytes) == wire::msg_type::sink_status) heard_done(f.bytes);
    } else if (!f.to_b && sink_) {
      sink_->on_control(f.bytes, now_);
    }
    return;
  }
  // A worker's link: which one, and which way.
  for (std::size_t i = 0; i < workers_.size(); ++i) {
    auto& w = workers_[i];
    if (f.link == w.vent_link) {
      if (f.to_b) {
        if (vent_) timed([&] { vent_->on_message(w.id, f.bytes, now_); });
      } else if (w.alive) {
        if (w.paused_until > now_) { // stopped: it reads the message when it resumes, in order
          f.at = w.paused_until;
          f.order = order_++;
          flights_.push(std::move(f));
          return;
        }
        if (wire::peek_type(f.bytes) == wire::msg_type::tasks) {
          wire::tasks_view tv;
          try {
            wire::decode_tasks(f.bytes, tv, vcfg_.max_message_bytes);
            for (const auto& t : tv.tasks) {
              w.delivered.insert(t.id);
              w.dispatched[t.id] = f.sent;
            }
            if (o_.trace) {
              std::string ids;
              for (const auto& t : tv.tasks) ids += fmt::format(" {}", t.id);
              fmt::print(stderr, "{:>10.3f} sim: {} gets batch {} of job {:016x}:{}\n", ms_since_start(), w.id, tv.seq,
                         tv.job, ids);
            }
          } catch (const protocol_error&) {}
        }
        w.core->on_message(f.bytes, now_);
      }
      return;
    }
    if (f.link == w.sink_link) {
      if (f.to_b && sink_) {
        if (o_.trace) {
          wire::results_view rv;
          try {
            wire::decode_results(f.bytes, rv, vcfg_.max_message_bytes);
            std::string ids;
            for (const auto& r : rv.results) ids += fmt::format(" {}", r.id);
            fmt::print(stderr, "{:>10.3f} sim: the sink gets results from {}:{}\n", ms_since_start(), w.id, ids);
          } catch (const protocol_error&) {}
        }
        sink_->on_results(f.bytes, now_);
      }
      return;
    }
  }
}

void world::schedule_faults() {
  if (!o_.faults) return;
  const auto n = rng_.below(9);
  for (std::uint64_t k = 0; k < n; ++k) {
    faults_.push_back(fault{.at = now_ + rng_.between(millis(0), fault_span_),
                            .kind = static_cast<int>(rng_.below(6)),
                            .target = rng_.below(64),
                            .length = rng_.chance(0.2) ? rng_.between(heartbeat_timeout, 2 * heartbeat_timeout)
                                                       : rng_.between(millis(1), millis(800))});
  }
  // In about a fifth of the seeds, one or two coordinators crash (the sink, the ventilator, both in
  // either order, the second sometimes while the first is still down); each restarts later.
  if (rng_.chance(0.2)) {
    const auto crashes = 1 + rng_.below(2);
    auto at = now_ + rng_.between(millis(0), fault_span_);
    for (std::uint64_t k = 0; k < crashes; ++k) {
      faults_.push_back(fault{
          .at = at, .kind = rng_.chance(0.5) ? sink_crash : ventilator_crash, .target = 0, .length = restart_delay()});
      at = rng_.chance(0.5) ? at + rng_.between(millis(0), millis(3000)) : now_ + rng_.between(millis(0), fault_span_);
    }
  }
  std::sort(faults_.begin(), faults_.end(), [](const fault& a, const fault& b) { return a.at < b.at; });
}

void world::apply_fault(std::size_t k) {
  const auto f = faults_[k]; // a copy: schedule() may move faults_

  ++result_.faults;
  std::vector<int> live;
  for (std::size_t i = 0; i < workers_.size(); ++i) {
    if (workers_[i].alive) live.push_back(static_cast<int>(i));
  }
  const int victim = live.empty() ? -1 : live[f.target % live.size()];
  const bool long_silence = f.length >= heartbeat_timeout;
  if (o_.verbose) {
    fmt::print(stderr, "sim: fault {} ({}) at +{} ms on worker {} for {} ms\n", f.kind, fault_names[f.kind],
               std::chrono::duration_cast<millis>(now_ - start_).count(), victim, f.length.count());
  }
  const auto skip = [&](std::string_view why) {
    if (o_.verbose) fmt::print(stderr, "sim: skipped: {}\n", why);
  };
  switch (f.kind) {
    case sink_link_drop: // the sink's control connection drops (and reconnects with the same routing id)
      if (links_[static_cast<std::size_t>(sink_link_)].up) ++sink_link_drops_; // acks on it may be lost
      drop_link(sink_link_, f.length);
      break;
    case worker_vent_link_drop: // a worker's connection to the ventilator drops
      if (victim < 0) break;
      if (long_silence) strike(victim); // silent past the heartbeat timeout: as good as dead to the ventilator
      drop_link(workers_[static_cast<std::size_t>(victim)].vent_link, f.length);
      break;
    case worker_sink_link_drop: // a worker's connection to the sink drops
      if (victim >= 0) drop_link(workers_[static_cast<std::size_t>(victim)].sink_link, f.length);
      break;
    case worker_crash: // a worker crashes; a new one starts a little later
      if (victim >= 0) crash_worker(victim);
      schedule(fault{.at = now_ + f.length, .kind = worker_start, .target = 0, .length = millis(0)}, k);
      break;
    case worker_pause: // a worker is paused (SIGSTOP) and resumed
      if (victim < 0) break;
      if (long_silence) strike(victim);
      workers_[static_cast<std::size_t>(victim)].paused_until = now_ + f.length;
      break;
    case slow_reader: // the reader of the sink's output stalls
      slow_until_ = now_ + f.length;
      break;
    case worker_start: start_worker(); break;
    case sink_crash: // kill -9 of the sink; the same command runs again later, on the same journal
      if (!sink_up()) {
        skip("the sink is not running");
      } else if (disk_.complete) {
        skip("the job's completion is journaled (known edge: see crash_sink)");
      } else {
        crash_sink();
        schedule(fault{.at = now_ + f.length, .kind = sink_restart, .target = 0, .length = millis(0)}, k);
        last_restart_ = std::max(last_restart_, now_ + f.length);
      }
      break;
    case sink_restart: restart_sink(); break;
    case ventilator_crash: // kill -9 of the ventilator; the same command runs again later
      if (!vent_up()) {
        skip("the ventilator is not running");
      } else if (sink_ && sink_->exit_code()) {
        // The job is over (the sink has its whole output and left): a ventilator started again
        // would find no sink and give up after its idle timeout, by design.
        skip("the sink has finished the job");
      } else {
        crash_ventilator();
        schedule(fault{.at = now_ + f.length, .kind = ventilator_restart, .target = 0, .length = millis(0)}, k);
        last_restart_ = std::max(last_restart_, now_ + f.length);
      }
      break;
    case ventilator_restart: restart_ventilator(); break;
  }
}

void world::check_bounds() {
  if (!violation_.empty()) return;
  if (vent_ && vent_->tasks().size() > vcfg_.window) {
    violation_ = fmt::format("the ledger holds {} tasks, beyond --window {}", vent_->tasks().size(), vcfg_.window);
  }
  // What a worker holds is bounded by the credit it offers: its slots plus the largest prefetch.
  for (const auto& w : workers_) {
    if (w.alive && w.core->busy() > slots_ + 8192 + vcfg_.batch) {
      violation_ = fmt::format("worker {} holds {} tasks", w.id, w.core->busy());
    }
  }
  // The reorder buffer: the held-bytes bound, plus what was already dispatched when it was reached.
  const auto held_bound = vcfg_.max_held_bytes + vcfg_.window * max_message;
  if (sink_ && sink_->held_bytes() > held_bound) {
    violation_ = fmt::format("the sink holds {} bytes for an earlier task (bound {})", sink_->held_bytes(), held_bound);
  }
}

std::string world::check_outcome() {
  const std::uint64_t n = tasks_.size();
  std::vector<int> seen(n, 0);
  std::uint64_t last = 0;
  bool first = true;
  std::size_t pos = 0;
  // Output: one "r<id>:<padding>" line per successful task.
  while (pos < output_.size()) {
    auto end = output_.find('\n', pos);
    if (end == std::string::npos) return "the output ends without a newline";
    const std::string line = output_.substr(pos, end + 1 - pos);
    pos = end + 1;
    std::uint64_t id = 0;
    if (std::sscanf(line.c_str(), "r%lu:", &id) != 1 || id >= n) return fmt::format("a foreign output line '{}'", line);
    if (line != output_of(id, tasks_[id].output_bytes)) return fmt::format("task {}'s output is wrong", id);
    if (scfg_.keep_order && !first && id <= last) return fmt::format("with -k, task {} came after task {}", id, last);
    first = false;
    last = id;
    ++seen[id];
  }
  std::uint64_t failed = 0;
  for (const auto& f : failures_) {
    std::uint64_t id = 0;
    const auto at = f.find("\"id\":");
    if (at == std::string::npos || std::sscanf(f.c_str() + at + 5, "%lu", &id) != 1 || id >= n) {
      return fmt::format("a failure line without a task: {}", f);
    }
    ++seen[id];
    ++failed;
    const auto& t = tasks_[id];
    if (f.find("\"status\":\"crashed\"") != std::string::npos) {
      if (strikes_[id] < static_cast<int>(max_crashes)) {
        return fmt::format("task {} reported crashed, but only {} worker(s) holding it died", id, strikes_[id]);
      }
    } else if (f.find("\"status\":\"too large\"") != std::string::npos) {
      if (t.payload_bytes <= max_message / 2 && t.output_bytes <= max_message / 2) {
        return fmt::format("task {} failed as too large, but its payload and output fit", id);
      }
    } else {
      return fmt::format("task {} failed unexpectedly: {}", id, f);
    }
  }
  for (std::uint64_t id = 0; id < n; ++id) {
    if (seen[id] != 1) return fmt::format("task {} is in the output {} times", id, seen[id]);
    const auto& t = tasks_[id];
    const bool must_fail = t.payload_bytes >= max_message || t.output_bytes >= max_message;
    if (must_fail && output_.find(fmt::format("r{}:", id)) != std::string::npos) {
      return fmt::format("task {} is over the frame limit yet succeeded", id);
    }
  }
  const int expected = failed > 0 ? 3 : 0;
  if (sink_->exit_code() != expected)
    return fmt::format("the sink exited {}, expected {}", *sink_->exit_code(), expected);
  if (vent_->exit_code() != expected) {
    return fmt::format("the ventilator exited {}, expected {}", *vent_->exit_code(), expected);
  }
  return {};
}

outcome world::run() {
  now_ = start_;
  if (o_.trace) {
    log::set_level(log::level::debug);
    log::set_sink([this](std::string_view line) { fmt::print(stderr, "{:>10.3f} {}", ms_since_start(), line); });
  }
  slots_ = o_.scale ? 1 : 1 + static_cast<unsigned>(rng_.below(4));
  const int n_workers = o_.workers > 0 ? o_.workers : 1 + static_cast<int>(rng_.below(5));
  const auto n_tasks = static_cast<std::size_t>(o_.tasks > 0 ? o_.tasks : 20 + static_cast<int>(rng_.below(200)));
  std::vector<std::string> payloads;
  millis work{0};
  for (std::size_t id = 0; id < n_tasks; ++id) {
    task_spec t;
    if (o_.scale) {
      tasks_.push_back(t);
      payloads.push_back(payload_of(id, t));
      continue;
    }
    t.duration = rng_.chance(0.1) ? rng_.between(millis(20), millis(300)) : rng_.between(millis(0), millis(5));
    if (rng_.chance(0.03)) t.payload_bytes = rng_.chance(0.5) ? max_message / 2 : max_message + rng_.below(1000);
    if (rng_.chance(0.03)) t.output_bytes = rng_.chance(0.5) ? max_message / 2 : max_message + rng_.below(1000);
    if (rng_.chance(0.2)) t.output_bytes = rng_.below(2000);
    work += t.duration;
    tasks_.push_back(t);
    payloads.push_back(payload_of(id, t));
  }
  strikes_.assign(n_tasks, 0);
  runs_.assign(n_tasks, 0);
  told_done_.assign(n_tasks, false);
  // Faults are spread over about as long as the job takes without them.
  fault_span_ = std::max(millis(300), work * 3 / 2 / (static_cast<int>(slots_) * n_workers));
  payloads_ = std::move(payloads);
  input_ = std::make_unique<vector_source>(payloads_);
  vcfg_ = ventilator_config{.job = 0x5eed0000 + o_.seed,
                            .window = o_.scale ? 32768 : 8 + rng_.below(64),
                            .batch = o_.scale ? 4096 : 1 + rng_.below(64),
                            .limits = {.retries = 0, .max_crashes = max_crashes},
                            .heartbeat = heartbeat,
                            .heartbeat_timeout = heartbeat_timeout,
                            .idle_timeout = millis(60000),
                            .max_message_bytes = o_.scale ? wire::default_max_frame_bytes : max_message,
                            .max_held_bytes = 4 * max_message,
                            .sink_endpoint = "ipc:///sim/sink",
                            .ventilator_endpoint = "ipc:///sim/ventilator",
                            .fingerprint = fmt::format("sim seed {}", o_.seed)};
  scfg_ = sink_config{.keep_order = rng_.chance(0.5),
                      .failures = true,
                      .heartbeat = heartbeat,
                      .heartbeat_timeout = heartbeat_timeout,
                      .idle_timeout = millis(60000),
                      .max_message_bytes = vcfg_.max_message_bytes,
                      .output_limit = o_.scale ? std::size_t{4} << 20 : 8 * max_message,
                      .ventilator_endpoint = "ipc:///sim/ventilator",
                      // --output FILE --journal J, so that the sink may crash and restart (not when
                      // timing the ventilator: its acks would wait for the simulated fsyncs).
                      .journal = !o_.scale,
                      .journal_every = rng_.chance(0.5) ? 1 + rng_.below(16) : 8192};
  journal::append_record(disk_.journal, journal::header{.routing_id = "sink",
                                                        .output_path = "/sim/output",
                                                        .keep_order = scfg_.keep_order,
                                                        .failures_path = "/sim/failures"});
  links_.emplace_back();
  sink_link_ = 0;
  vent_net_ = std::make_unique<vent_adapter>(*this);
  vent_ = std::make_unique<ventilator_core>(vcfg_, *input_, *vent_net_, now_);
  sink_io_ = std::make_unique<sink_adapter>(*this);
  sink_ = std::make_unique<sink_core>(scfg_, *sink_io_, now_);
  for (int i = 0; i < n_workers; ++i) start_worker();
  schedule_faults();
  const time_point last_fault = faults_.empty() ? now_ : faults_.back().at;
  time_point drained_at = now_;

  while (!(vent_ && vent_->exit_code() && sink_ && sink_->exit_code())) {
    if (++result_.events > 5'000'000) {
      std::string who;
      if (vent_up() && vent_->next_wakeup() <= now_) who += " ventilator";
      if (sink_up() && sink_->next_wakeup() <= now_) who += " sink";
      for (auto& w : workers_) {
        if (w.alive && !w.core->exit_code() && w.core->next_wakeup(now_) <= now_) who += " " + w.id;
      }
      return {.failure = fmt::format("livelock: five million events without the job ending; due now:{}", who)};
    }
    // The earliest thing that happens next.
    time_point next = time_point::max();
    if (!flights_.empty()) next = flights_.top().at;
    if (vent_up()) next = std::min(next, vent_->next_wakeup());
    if (sink_up()) next = std::min(next, sink_->next_wakeup());
    if (!disk_.syncing.empty()) next = std::min(next, disk_.syncing.front().at);
    for (auto& w : workers_) {
      if (!w.alive || w.core->exit_code()) continue;
      const auto wake = std::min(w.core->next_wakeup(now_), w.runner->next_deadline(time_point::max()));
      next = std::min(next, std::max(wake, w.paused_until));
    }
    if (next_fault_ < faults_.size()) next = std::min(next, faults_[next_fault_].at);
    for (const auto& [l, at] : link_up_at_) next = std::min(next, at);
    if (backlog_ > 0) next = std::min(next, now_ + millis(1));
    // A coordinator restarted after the last fault drawn: the job has as long again from then.
    const time_point deadline = std::max(last_fault, last_restart_) + settle + work;
    if (next > deadline) {
      return {.failure = fmt::format("the job did not end within {} s of the last fault",
                                     std::chrono::duration_cast<std::chrono::seconds>(settle + work).count())};
    }
    now_ = std::max(now_, next);

    // The reader takes output (slowly while stalled).
    const auto elapsed = std::chrono::duration_cast<millis>(now_ - drained_at).count();
    if (elapsed > 0) {
      const std::size_t rate = now_ < slow_until_ ? 512 : drain_per_ms_;
      backlog_ -= std::min(backlog_, static_cast<std::size_t>(elapsed) * rate);
      drained_at = now_;
    }
    while (next_fault_ < faults_.size() && faults_[next_fault_].at <= now_) apply_fault(next_fault_++);
    for (auto it = link_up_at_.begin(); it != link_up_at_.end();) {
      if (it->second <= now_) {
        links_[static_cast<std::size_t>(it->first)].up = ends_up(it->first); // not to a process that is down
        it = link_up_at_.erase(it);
      } else {
        ++it;
      }
    }
    while (!flights_.empty() && flights_.top().at <= now_) {
      auto f = flights_.top();
      flights_.pop();
      deliver(std::move(f));
    }
    // The sink's disk: records whose fsync returned are durable, and the loop tells the core.
    while (!disk_.syncing.empty() && disk_.syncing.front().at <= now_) {
      auto s = std::move(disk_.syncing.front());
      disk_.syncing.pop_front();
      disk_.journal += s.records;
      if (s.seq == 0)
        disk_.complete = true;
      else if (sink_)
        sink_->on_durable(s.seq, now_);
    }
    if (vent_up()) timed([&] { vent_->advance(now_); });
    if (sink_up()) sink_->advance(now_);
    for (auto& w : workers_) {
      if (!w.alive || w.core->exit_code() || w.paused_until > now_) continue;
      w.runner->on_ready({}, now_);
      w.core->advance(now_);
    }
    // A process that has exited closes its connections.
    if (sink_ && sink_->exit_code() && !sink_closed_) {
      sink_closed_ = true;
      drop_link(sink_link_, millis::max() / 4);
      for (auto& w : workers_) drop_link(w.sink_link, millis::max() / 4);
    }
    if (vent_ && vent_->exit_code() && !vent_closed_) {
      vent_closed_ = true;
      drop_link(sink_link_, millis::max() / 4);
      for (auto& w : workers_) drop_link(w.vent_link, millis::max() / 4);
    }
    check_bounds();
    if (!violation_.empty()) return {.failure = violation_};
  }
  result_.simulated_seconds = std::chrono::duration<double>(now_ - (time_point{} + std::chrono::hours(1))).count();
  result_.failure = check_outcome();
  result_.ok = result_.failure.empty();
  return result_;
}

} // namespace

outcome run(const options& o) {
  if (!o.verbose) {
    log::set_level(log::level::error);
    log::set_sink([](std::string_view) {});
  }
  random_source rng(o.seed);
  world w(o, rng);
  auto out = w.run();
  return out;
}

} // namespace mtask::sim
