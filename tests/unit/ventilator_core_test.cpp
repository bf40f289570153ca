// Unit tests for the ventilator's protocol core (lib/src/ventilator/ventilator_core.cpp), driven
// directly: frames in, frames out through a fake network, time injected. No sockets, no processes.
#include "ventilator/ventilator_core.hpp"

#include "common/log.hpp"

#include <doctest/doctest.h>

#include <csignal>

#include <map>
#include <string>
#include <vector>

using namespace mtask;

namespace {

constexpr std::uint64_t job = 77;
const time_point t0{std::chrono::seconds(1000)};

class lines final : public task_source {
 public:
  explicit lines(std::vector<std::string> p) : p_(std::move(p)) {}
  int fd() override { return -1; }
  void read_chunk() override {}
  std::optional<std::string> next() override {
    if (i_ >= p_.size()) return std::nullopt;
    return p_[i_++];
  }
  bool exhausted() const override { return i_ >= p_.size(); }
  std::string terminator() const override { return "\n"; }

 private:
  std::vector<std::string> p_;
  std::size_t i_ = 0;
};

struct fake_net final : ventilator_net {
  std::vector<std::pair<std::string, std::string>> sent; // (to, frame)
  std::map<std::string, send_result> outcome;            // per peer; sent when absent
  send_result send(const std::string& to, std::string_view frame) override {
    auto it = outcome.find(to);
    const auto r = it == outcome.end() ? send_result::sent : it->second;
    if (r == send_result::sent) sent.emplace_back(to, std::string(frame));
    return r;
  }
  // Returns: the task batches sent to `to`, decoded, and forgets everything sent.
  std::vector<wire::tasks_msg> batches_to(const std::string& to) {
    std::vector<wire::tasks_msg> out;
    for (const auto& [who, f] : sent) {
      if (who != to) continue;
      auto m = wire::decode(f);
      if (auto* t = std::get_if<wire::tasks_msg>(&m)) out.push_back(*t);
    }
    return out;
  }
  template <typename T>
  std::vector<T> messages_to(const std::string& to) {
    std::vector<T> out;
    for (const auto& [who, f] : sent) {
      if (who != to || wire::foreign_version(f)) continue;
      auto m = wire::decode(f);
      if (auto* t = std::get_if<T>(&m)) out.push_back(*t);
    }
    return out;
  }
};

std::vector<std::string> numbered(int n, std::size_t pad = 0) {
  std::vector<std::string> v;
  for (int i = 0; i < n; ++i) v.push_back(std::to_string(i) + std::string(pad, 'x'));
  return v;
}

struct fixture {
  explicit fixture(std::vector<std::string> input, ventilator_config cfg = {})
      : source(std::move(input)), core(with_job(cfg), source, net, t0) {
    log::set_sink([](std::string_view) {});
  }
  static ventilator_config with_job(ventilator_config c) {
    c.job = job;
    return c;
  }
  void from(const std::string& peer, const wire::message& m, time_point now = t0) {
    core.on_message(peer, wire::encode(m), now);
    core.advance(now);
  }
  void sink_ready(time_point now = t0) {
    from("sink", wire::sink_status{.job = 0}, now);
    from("sink", wire::sink_status{.job = job, .written_below = UINT64_MAX}, now);
  }
  void worker(const std::string& id, std::uint32_t free, std::uint64_t next_seq = 1,
              std::vector<wire::id_range> lost = {}, time_point now = t0) {
    from(id,
         wire::worker_status{.job = job, .name = id, .slots = free, .free = free, .next_seq = next_seq, .lost = lost},
         now);
  }
  lines source;
  fake_net net;
  ventilator_core core;
};

std::vector<std::uint64_t> ids_of(const std::vector<wire::tasks_msg>& batches) {
  std::vector<std::uint64_t> ids;
  for (const auto& b : batches) {
    for (const auto& t : b.tasks) ids.push_back(t.id);
  }
  return ids;
}

} // namespace

TEST_CASE("ventilator core dispatches nothing until the sink has confirmed the job") {
  fixture f(numbered(4));
  f.worker("w1", 4);
  CHECK(f.net.batches_to("w1").empty());
  CHECK(f.core.current_phase() == ventilator_core::phase::waiting_for_sink);
  f.sink_ready();
  CHECK(f.core.current_phase() == ventilator_core::phase::running);
  const auto b = f.net.batches_to("w1");
  REQUIRE(b.size() == 1);
  CHECK(b[0].seq == 1);
  CHECK(ids_of(b) == std::vector<std::uint64_t>{0, 1, 2, 3});
}

TEST_CASE(
    "ventilator core gives an unreachable worker nothing more and counts no crash for the batch it could not send") {
  ventilator_config cfg;
  cfg.limits.max_crashes = 1; // a single crash counted would quarantine
  fixture f(numbered(5), cfg);
  f.sink_ready();
  f.net.outcome["w1"] = send_result::unreachable; // killed: its connection is gone
  f.worker("w1", 2);
  for (int i = 0; i < 5; ++i) f.core.advance(t0 + millis(i)); // the loop turns again and again
  CHECK(f.net.batches_to("w1").empty());                      // the send never succeeded
  CHECK(f.core.tasks().held() == 0);                          // and nothing is charged to it
  CHECK(f.core.tasks().queued() == f.core.tasks().size());
  f.worker("w2", 8);
  CHECK(ids_of(f.net.batches_to("w2")) == std::vector<std::uint64_t>{0, 1, 2, 3, 4});
  // w1 times out later: it held nothing, so nothing is quarantined.
  f.core.advance(t0 + millis(5000));
  CHECK(f.net.messages_to<wire::results_msg>("sink").empty());
}

TEST_CASE("ventilator core requeues a batch its worker reports lost, with no crash, to another worker") {
  ventilator_config cfg;
  cfg.limits.max_crashes = 1;
  cfg.batch = 2;
  fixture f(numbered(4), cfg);
  f.sink_ready();
  f.worker("w1", 2);
  f.worker("w1", 2, 2); // got batch 1, two slots free again: batch 2
  REQUIRE(f.net.batches_to("w1").size() == 2);
  f.net.sent.clear();
  // Batch 2 died with a dropped connection: the worker says so.
  f.worker("w1", 0, 3, {{.first = 2, .count = 1}});
  CHECK(f.core.stats().lost_batches == 1);
  CHECK(f.core.tasks().queued() == 2);
  const auto settled = f.net.messages_to<wire::vent_status>("w1");
  REQUIRE_FALSE(settled.empty());
  CHECK(settled.back().resolved_below == 3);
  CHECK(settled.back().sent_seq == 2);
  f.worker("w2", 2);
  CHECK(ids_of(f.net.batches_to("w2")) == std::vector<std::uint64_t>{2, 3});
  CHECK(f.net.messages_to<wire::results_msg>("sink").empty()); // nothing quarantined
}

TEST_CASE("ventilator core cuts batches so that no message exceeds the frame limit") {
  ventilator_config cfg;
  cfg.max_message_bytes = 4096;
  fixture f(numbered(10, 1000), cfg);
  f.sink_ready();
  f.worker("w1", 100);
  auto b = f.net.batches_to("w1");
  REQUIRE_FALSE(b.empty());
  for (const auto& [to, frame] : f.net.sent) CHECK(frame.size() <= 4096);
  CHECK(b[0].tasks.size() < 10); // cut, though the worker's credit would take them all
  CHECK(b[0].seq == 1);
  // The worker sees batch 1 and reports; the rest follow, numbered on.
  f.worker("w1", 100, 2);
  b = f.net.batches_to("w1");
  CHECK(b.back().seq >= 2);
}

TEST_CASE("ventilator core fails a task too large to send, alone, and repeats the failure until the sink acks it") {
  ventilator_config cfg;
  cfg.max_message_bytes = 4096;
  cfg.heartbeat = millis(100);
  cfg.heartbeat_timeout = millis(1000);
  fixture f({"small", std::string(5000, 'x'), "tiny"}, cfg);
  f.sink_ready();
  f.worker("w1", 4);
  auto failures = f.net.messages_to<wire::results_msg>("sink");
  REQUIRE(failures.size() == 1);
  REQUIRE(failures[0].results.size() == 1);
  const auto& r = failures[0].results[0];
  CHECK(r.id == 1);
  CHECK(r.status == wire::task_status::too_large);
  CHECK(r.error == "task of 5000 bytes exceeds --max-message-bytes (4096)");
  CHECK(r.payload.size() <= 256);
  CHECK(ids_of(f.net.batches_to("w1")) == std::vector<std::uint64_t>{0, 2});
  // Not acknowledged: sent again after a heartbeat timeout.
  f.net.sent.clear();
  for (int ms = 100; ms <= 1200; ms += 100) f.core.advance(t0 + millis(ms));
  CHECK(f.net.messages_to<wire::results_msg>("sink").size() == 1);
  // Acknowledged: never again.
  f.from("sink", wire::sink_status{.job = job, .written_below = UINT64_MAX, .done = {{.first = 1, .count = 1}}},
         t0 + millis(1200));
  f.net.sent.clear();
  for (int ms = 1300; ms <= 3000; ms += 100) f.core.advance(t0 + millis(ms));
  CHECK(f.net.messages_to<wire::results_msg>("sink").empty());
}

TEST_CASE("ventilator core releases tasks below the sink's cumulative acknowledgement when the ack itself was lost") {
  fixture f(numbered(6));
  f.sink_ready();
  f.worker("w1", 6);
  CHECK(f.core.tasks().size() == 6);
  // The status acking 0..3 was lost; the next one carries done_below = 4.
  f.from("sink", wire::sink_status{.job = job, .written_below = UINT64_MAX, .done_below = 4});
  CHECK(f.core.tasks().size() == 2);
  // A confused peer cannot release tasks never read.
  f.from("sink", wire::sink_status{.job = job, .written_below = UINT64_MAX, .done_below = 1000});
  CHECK(f.core.tasks().size() == 0);
}

TEST_CASE("ventilator core answers a frame of another protocol version with wrong_version") {
  fixture f(numbered(1));
  // [1, 1, 0, ...]: a version 1 worker's hello.
  const std::string v1{"\x93\x01\x01\x00", 4};
  f.core.on_message("old", v1, t0);
  REQUIRE(f.net.sent.size() == 1);
  CHECK(f.net.sent[0].first == "old");
  auto m = wire::decode(f.net.sent[0].second);
  CHECK(std::holds_alternative<wire::wrong_version>(m));
  CHECK(f.core.stats().malformed == 1);
}

TEST_CASE("ventilator core keeps its sink across a reconnect with the same routing id and ignores another") {
  fixture f(numbered(2));
  f.sink_ready();
  f.worker("w1", 2);
  REQUIRE(f.core.tasks().size() == 2);
  f.from("intruder", wire::sink_status{.job = job, .written_below = UINT64_MAX, .done_below = 2});
  CHECK(f.core.tasks().size() == 2);
  CHECK(f.core.stats().malformed == 1);
  f.from("sink", wire::sink_status{.job = job, .written_below = UINT64_MAX, .done_below = 2});
  CHECK(f.core.tasks().size() == 0);
}

TEST_CASE("ventilator core stops reading input while the sink holds too many bytes for an earlier task") {
  ventilator_config cfg;
  cfg.max_held_bytes = 1000;
  fixture f(numbered(100), cfg);
  f.sink_ready();
  f.worker("w1", 10);
  const auto read = f.core.tasks().size();
  f.from("sink", wire::sink_status{.job = job, .written_below = 0, .held_bytes = 5000});
  f.worker("w1", 10, 2);
  CHECK(f.core.tasks().size() == read); // nothing more read
  f.from("sink", wire::sink_status{.job = job, .written_below = 0, .held_bytes = 0});
  f.worker("w1", 10, 2);
  CHECK(f.core.tasks().size() > read);
}

TEST_CASE("ventilator core never holds more than the window") {
  ventilator_config cfg;
  cfg.window = 8;
  fixture f(numbered(100), cfg);
  f.sink_ready();
  f.worker("w1", 50);
  CHECK(f.core.tasks().size() == 8);
  CHECK_FALSE(f.core.wants_input());
}

TEST_CASE("ventilator core finishes after the sink completes and every worker heard, with the sink's failure count") {
  fixture f(numbered(1));
  f.sink_ready();
  f.worker("w1", 1);
  f.from("sink", wire::complete{.job = job, .total = 1, .failed = 1});
  CHECK(f.core.current_phase() == ventilator_core::phase::farewell);
  CHECK_FALSE(f.core.exit_code());
  f.from("w1", wire::worker_status{.job = job, .name = "w1", .completed_job = job});
  f.net.outcome["sink"] = send_result::unreachable; // the sink has left
  f.core.advance(t0 + millis(1));
  REQUIRE(f.core.exit_code());
  CHECK(*f.core.exit_code() == 3);
}

TEST_CASE("ventilator core lingers after a complete job for late workers, tells them, and a stop ends it with 0") {
  ventilator_config cfg;
  cfg.linger = millis(60000);
  fixture f(numbered(1), cfg);
  f.sink_ready();
  f.from("sink", wire::complete{.job = job, .total = 1, .failed = 0});
  f.net.outcome["sink"] = send_result::unreachable; // the sink has left
  f.core.advance(t0 + millis(10));
  CHECK_FALSE(f.core.exit_code()); // no live worker left to tell, the sink gone: only the linger holds it
  CHECK(f.core.next_wakeup() > t0 + millis(100)); // asleep until a heartbeat, not polling each millisecond
  f.from("late", wire::worker_status{.job = 0, .name = "late", .slots = 1}, t0 + millis(20));
  const auto told = f.net.messages_to<wire::vent_status>("late");
  REQUIRE_FALSE(told.empty());
  CHECK(told.back().complete);
  f.core.stop(SIGTERM, t0 + millis(30)); // a Slurm script ends the linger: not a failure
  REQUIRE(f.core.exit_code());
  CHECK(*f.core.exit_code() == 0);
}

// ---- a restarted ventilator (the sink claims its job) ----

namespace {

constexpr std::uint64_t old_job = 55; // the job the sink serves: the one we restarted from

wire::sink_status claim(std::string fingerprint, std::uint64_t done_below, std::vector<wire::id_range> done) {
  return wire::sink_status{.job = old_job,
                           .written_below = UINT64_MAX,
                           .done_below = done_below,
                           .done = std::move(done),
                           .claim = true,
                           .fingerprint = std::move(fingerprint)};
}

ventilator_config fingerprinted(std::string fp) {
  ventilator_config c;
  c.fingerprint = std::move(fp);
  return c;
}

} // namespace

TEST_CASE("ventilator core adopts the job a sink claims for the same input and skips the ids it holds") {
  fixture f(numbered(10), fingerprinted("range 0:9:1"));
  f.from("sink", wire::sink_status{.job = 0});
  CHECK(!f.net.messages_to<wire::job_info>("sink").empty());
  CHECK(f.net.messages_to<wire::job_info>("sink").back().fingerprint == "range 0:9:1");
  f.from("sink", claim("range 0:9:1", 3, {{5, 2}, {9, 1}}));
  CHECK(f.core.job() == old_job);
  CHECK(f.core.resumed());
  // It tells the sink it serves that job now, and dispatches once the sink confirms it (a sink
  // restarted from its journal takes the job only at that job_info).
  CHECK(f.net.messages_to<wire::job_info>("sink").back().job == old_job);
  CHECK(f.core.current_phase() == ventilator_core::phase::waiting_for_sink);
  f.from("sink", wire::sink_status{.job = old_job, .written_below = UINT64_MAX, .done_below = 3});
  CHECK(f.core.current_phase() == ventilator_core::phase::running);
  f.net.sent.clear();
  // A worker of the old job: its batches 1..4 came from the process we restarted as.
  f.from("w1", wire::worker_status{.job = old_job, .name = "w1", .slots = 20, .free = 20, .next_seq = 5});
  const auto b = f.net.batches_to("w1");
  REQUIRE(b.size() == 1);
  CHECK(b[0].job == old_job);
  CHECK(b[0].seq == 5); // after the batches it has: a 1 would be dropped as a duplicate
  CHECK(ids_of(b) == std::vector<std::uint64_t>{3, 4, 7, 8});
  CHECK(f.core.stats().skipped == 5); // 1, 2, 5, 6, 9: task 0 was read while waiting for the sink
  // The job ends as any other: the sink acks the rest, input has ended, complete.
  f.from("sink", wire::sink_status{.job = old_job, .written_below = UINT64_MAX, .done_below = 10});
  CHECK(f.core.tasks().empty());
  CHECK(f.net.messages_to<wire::job_info>("sink").back().total == 10);
  f.from("sink", wire::complete{.job = old_job, .total = 10});
  CHECK(f.core.current_phase() == ventilator_core::phase::farewell);
}

TEST_CASE("ventilator core skips ids already read when the claim arrives") {
  fixture f(numbered(6), fingerprinted("range 0:5:1"));
  f.core.advance(t0); // reads input while waiting for the sink
  f.from("sink", wire::sink_status{.job = 0});
  f.from("sink", claim("range 0:5:1", 2, {{4, 1}}));
  f.from("sink", wire::sink_status{.job = old_job, .written_below = UINT64_MAX, .done_below = 2});
  f.worker("w1", 10); // job = 77 in the fixture: another job's numbers, next_seq 1
  f.from("w1", wire::worker_status{.job = old_job, .name = "w1", .slots = 10, .free = 10, .next_seq = 1});
  CHECK(ids_of(f.net.batches_to("w1")) == std::vector<std::uint64_t>{2, 3, 5});
}

TEST_CASE("ventilator core refuses to continue a job of another input, or from a pipe, and exits 1") {
  SUBCASE("another input") {
    fixture f(numbered(3), fingerprinted("file size=3 head=aa"));
    f.from("sink", wire::sink_status{.job = 0});
    f.from("sink", claim("file size=4 head=bb", 1, {}));
    CHECK(f.core.exit_code() == 1);
    CHECK(f.core.job() == job);
  }
  SUBCASE("our input is a pipe") {
    fixture f(numbered(3), fingerprinted(""));
    f.from("sink", wire::sink_status{.job = 0});
    f.from("sink", claim("", 1, {}));
    CHECK(f.core.exit_code() == 1);
  }
  SUBCASE("the sink does not know its input") {
    fixture f(numbered(3), fingerprinted("range 0:2:1"));
    f.from("sink", wire::sink_status{.job = 0});
    f.from("sink", claim("", 1, {}));
    CHECK(f.core.exit_code() == 1);
  }
}

TEST_CASE("ventilator core ignores a claim once it dispatches its own job") {
  fixture f(numbered(3), fingerprinted("range 0:2:1"));
  f.sink_ready();
  f.from("sink", claim("range 0:2:1", 3, {}));
  CHECK(f.core.job() == job);
  CHECK_FALSE(f.core.exit_code());
  CHECK(f.core.stats().malformed == 1);
}

TEST_CASE("ventilator core, resumed, skips tasks the sink acknowledges before it has read them") {
  // A task our predecessor dispatched finishes after the claim: its ack names an id we have not
  // read yet. Reading it later, we must not run it again.
  fixture f(numbered(60), fingerprinted("range 0:59:1"));
  f.from("sink", wire::sink_status{.job = 0});
  f.from("sink", claim("range 0:59:1", 2, {}));
  f.from("sink", wire::sink_status{.job = old_job, .written_below = UINT64_MAX, .done_below = 2, .done = {{50, 1}}});
  f.worker("w1", 100);
  f.from("w1", wire::worker_status{.job = old_job, .name = "w1", .slots = 100, .free = 100, .next_seq = 1});
  const auto ids = ids_of(f.net.batches_to("w1"));
  CHECK(ids.size() == 57);
  CHECK(std::find(ids.begin(), ids.end(), 50) == ids.end());
  CHECK(std::find(ids.begin(), ids.end(), 51) != ids.end());
}

TEST_CASE("ventilator core, resumed with -k and a full reorder buffer, still reads the task the sink waits for") {
  ventilator_config cfg = fingerprinted("range 0:999:1");
  cfg.max_held_bytes = 1000;
  fixture f(numbered(1000), cfg);
  f.from("sink", wire::sink_status{.job = 0});
  // The sink holds 150..159 (too many bytes) and waits for 100..149, which died with our predecessor.
  auto c = claim("range 0:999:1", 100, {{150, 10}});
  c.written_below = 100;
  c.held_bytes = 5000;
  f.from("sink", c);
  f.from("sink", wire::sink_status{.job = old_job, .written_below = 100, .done_below = 100, .held_bytes = 5000});
  f.from("w1", wire::worker_status{.job = old_job, .name = "w1", .slots = 8, .free = 8, .next_seq = 1});
  const auto ids = ids_of(f.net.batches_to("w1"));
  REQUIRE_FALSE(ids.empty());
  CHECK(ids.front() == 100); // the gap is read and dispatched: the job cannot stall
}

TEST_CASE("ventilator core, resumed past a long run of done tasks, reads past it a bounded slice per turn") {
  const std::uint64_t n = 300000;
  ventilator_config cfg = fingerprinted("range");
  log::set_sink([](std::string_view) {});
  range_source big(range_spec{.first = 0, .last = static_cast<std::int64_t>(n) - 1, .step = 1});
  fake_net net;
  cfg.job = job;
  ventilator_core core(cfg, big, net, t0);
  core.on_message("sink", wire::encode(wire::sink_status{.job = 0}), t0);
  core.on_message("sink", wire::encode(claim("range", n - 5, {})), t0);
  core.on_message(
      "sink", wire::encode(wire::sink_status{.job = old_job, .written_below = UINT64_MAX, .done_below = n - 5}), t0);
  int turns = 0;
  while (core.stats().skipped < n - 5 && turns < 100) {
    core.advance(t0);
    ++turns;
    if (core.stats().skipped < n - 5) CHECK(core.next_wakeup() <= t0); // the next turn at once
  }
  CHECK(core.stats().skipped == n - 5);
  CHECK(turns >= 4); // 2^16 a turn at most
  CHECK(core.tasks().size() <= 5);
}

TEST_CASE("ventilator core skips the ids acknowledged in statuses of the sink's job that came before its claim") {
  // The sink claimed its job with what was durable then; results that became durable after were
  // acknowledged in ordinary statuses of that job, which arrived before we had adopted it. The
  // sink has sent those acks: nobody but us remembers them.
  fixture f(numbered(6), fingerprinted("range 0:5:1"));
  f.from("sink", wire::sink_status{.job = 0});
  f.from("sink",
         wire::sink_status{.job = old_job, .written_below = UINT64_MAX, .done_below = 2, .done = {{3, 1}, {5, 1}}});
  f.from("sink", claim("range 0:5:1", 1, {}));
  REQUIRE(f.core.job() == old_job);
  f.from("sink", wire::sink_status{.job = old_job, .written_below = UINT64_MAX, .done_below = 1}); // confirms
  f.from("w1", wire::worker_status{.job = old_job, .name = "w1", .slots = 10, .free = 10, .next_seq = 1});
  CHECK(ids_of(f.net.batches_to("w1")) == std::vector<std::uint64_t>{2, 4});
}

TEST_CASE("ventilator core continuing a job skips the ids the sink acknowledges before it has read them") {
  // Results of the ventilator we replace that became final after the sink's claim are acked in its
  // statuses, perhaps before we read their ids (we read only what credit can use soon).
  fixture f(numbered(6), fingerprinted("range 0:5:1"));
  f.from("sink", wire::sink_status{.job = 0});
  f.from("sink", claim("range 0:5:1", 1, {}));
  REQUIRE(f.core.job() == old_job);
  f.from("sink", wire::sink_status{.job = old_job, .written_below = UINT64_MAX, .done_below = 1, .done = {{4, 1}}});
  f.from("w1", wire::worker_status{.job = old_job, .name = "w1", .slots = 10, .free = 10, .next_seq = 1});
  CHECK(ids_of(f.net.batches_to("w1")) == std::vector<std::uint64_t>{1, 2, 3, 5});
}

TEST_CASE("ventilator core continuing a job the sink has finished ends on its `complete`, even before a status") {
  // The sink had every result when we restarted: its status confirming the job may be lost (a full
  // queue) while its `complete` arrives (mtask-sim, seed 10597).
  fixture f(numbered(4), fingerprinted("range 0:3:1"));
  f.from("sink", wire::sink_status{.job = 0});
  f.from("sink", claim("range 0:3:1", 4, {}));
  REQUIRE(f.core.current_phase() == ventilator_core::phase::waiting_for_sink);
  f.from("sink", wire::complete{.job = old_job, .total = 4});
  CHECK(f.core.current_phase() == ventilator_core::phase::farewell);
  CHECK(f.net.messages_to<wire::complete_ack>("sink").size() == 1);
}

TEST_CASE("ventilator core answers a status request from anyone and never takes the asker for a worker") {
  fixture f(numbered(6));
  f.sink_ready();
  f.worker("w1", 2);
  f.from("top", wire::status_request{});
  const auto reports = f.net.messages_to<wire::status_report>("top");
  REQUIRE(reports.size() == 1);
  CHECK(reports[0].job == job);
  CHECK(reports[0].phase == "running");
  REQUIRE(reports[0].workers.size() == 1);
  CHECK(reports[0].workers[0].name == "w1");
  CHECK(reports[0].workers[0].slots == 2);
  CHECK(f.net.batches_to("top").empty()); // no task, no credit: not a worker
  CHECK(f.net.messages_to<wire::vent_status>("top").empty());
}

TEST_CASE("ventilator core halting soon dispatches nothing more and tells the sink once nothing runs") {
  ventilator_config cfg;
  cfg.halt = parse_halt_policy("soon,fail=1");
  fixture f(numbered(10), cfg);
  f.sink_ready();
  f.worker("w1", 2); // tasks 0 and 1
  REQUIRE(ids_of(f.net.batches_to("w1")) == std::vector<std::uint64_t>{0, 1});
  f.net.sent.clear();
  // Task 0 failed for good: the worker's status says so as it frees the slot, before its result
  // reaches the sink. Task 1 still runs.
  f.from("w1", wire::worker_status{
                   .job = job, .name = "w1", .slots = 2, .free = 1, .next_seq = 2, .busy = 1, .done = 1, .failed = 1});
  CHECK(f.core.current_phase() == ventilator_core::phase::halting);
  CHECK(f.net.batches_to("w1").empty());                    // the free slot gets nothing
  CHECK(f.net.messages_to<wire::halt_msg>("sink").empty()); // task 1 still runs
  // The sink acknowledges both (0 failed, 1 done): nothing runs any more, the sink is told.
  f.from("sink",
         wire::sink_status{.job = job, .written_below = UINT64_MAX, .done_below = 2, .final_results = 2, .failed = 1});
  const auto halts = f.net.messages_to<wire::halt_msg>("sink");
  REQUIRE(halts.size() == 1);
  CHECK(halts[0].reason == "1 task(s) failed (--halt soon,fail=1)");
  // It completes as a job does: the sink's `complete` ends it, exit 3 for the failure.
  f.from("sink", wire::complete{.job = job, .total = 2, .failed = 1});
  CHECK(f.core.current_phase() == ventilator_core::phase::farewell);
}

TEST_CASE("ventilator core halting now cancels the workers' tasks and waits for the sink to have the failure") {
  ventilator_config cfg;
  cfg.halt = parse_halt_policy("now,fail=1");
  fixture f(numbered(10), cfg);
  f.sink_ready();
  f.worker("w1", 2);
  f.net.sent.clear();
  f.from("w1", wire::worker_status{
                   .job = job, .name = "w1", .slots = 2, .free = 1, .next_seq = 2, .busy = 1, .done = 1, .failed = 1});
  CHECK(f.core.current_phase() == ventilator_core::phase::halting);
  const auto told = f.net.messages_to<wire::vent_status>("w1");
  REQUIRE_FALSE(told.empty());
  CHECK(told.back().cancel);
  CHECK(f.net.messages_to<wire::halt_msg>("sink").empty()); // the failure has not reached the sink
  f.from("sink",
         wire::sink_status{.job = job, .written_below = UINT64_MAX, .done_below = 1, .final_results = 1, .failed = 1});
  CHECK(f.net.messages_to<wire::halt_msg>("sink").size() == 1); // task 1 is not waited for
}
