// Unit tests for the sink's protocol core (lib/src/sink/sink_core.cpp), driven with a fake sink_io
// and an injected clock: no sockets, threads or processes.
#include "sink/sink_core.hpp"

#include "common/log.hpp"
#include "protocol/wire.hpp"

#include <doctest/doctest.h>

#include <chrono>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace wire = mtask::wire;
using mtask::millis;
using mtask::send_result;
using mtask::sink_config;
using mtask::sink_core;
using mtask::time_point;
using phase = mtask::sink_core::phase;

namespace {

const time_point t0 = time_point{} + std::chrono::hours(1);
constexpr std::uint64_t job = 7;
constexpr std::uint64_t all_written = std::numeric_limits<std::uint64_t>::max();

// Captures the log lines (errors and warnings) while it lives: one at a time.
class log_capture {
 public:
  log_capture() : level_(mtask::log::current_level()) {
    mtask::log::set_level(mtask::log::level::warn);
    mtask::log::set_sink([this](std::string_view line) { lines_.emplace_back(line); });
  }
  ~log_capture() {
    mtask::log::set_sink(nullptr);
    mtask::log::set_level(level_);
  }
  log_capture(const log_capture&) = delete;
  log_capture& operator=(const log_capture&) = delete;
  [[nodiscard]] const std::vector<std::string>& lines() const { return lines_; }
  [[nodiscard]] bool has(std::string_view text) const {
    for (const auto& l : lines_) {
      if (l.find(text) != std::string::npos) return true;
    }
    return false;
  }

 private:
  mtask::log::level level_;
  std::vector<std::string> lines_;
};

// Records what the core does, log lines included; `answer` says what sending a control frame does.
class fake_io final : public mtask::sink_io {
 public:
  send_result answer = send_result::sent;
  std::vector<wire::message> sent; // control frames that went out, decoded
  std::size_t refused = 0;         // control frames that could not go out
  std::string out;
  std::vector<std::string> failures;
  std::size_t backlog = 0;
  bool drained = true;
  log_capture logs;

  send_result send_control(std::string_view frame) override {
    if (answer != send_result::sent) {
      ++refused;
      return answer;
    }
    sent.push_back(wire::decode(frame));
    return send_result::sent;
  }
  void write_output(std::string_view bytes) override { out.append(bytes); }
  void write_failure(std::string_view line) override { failures.emplace_back(line); }
  [[nodiscard]] std::size_t output_backlog() const override { return backlog; }
  [[nodiscard]] bool output_drained() override { return drained; }
  std::vector<std::pair<std::uint64_t, mtask::journal::commit>> groups; // with a journal
  std::vector<mtask::journal::completion> completions;
  void journal_group(std::uint64_t seq, mtask::journal::commit& c) override { groups.emplace_back(seq, c); }
  void journal_complete(const mtask::journal::completion& c) override { completions.push_back(c); }
  std::vector<mtask::journal::job_record> jobs;
  void journal_job(const mtask::journal::job_record& j) override { jobs.push_back(j); }

  template <typename T>
  [[nodiscard]] std::vector<T> all() const {
    std::vector<T> found;
    for (const auto& m : sent) {
      if (const auto* x = std::get_if<T>(&m)) found.push_back(*x);
    }
    return found;
  }
  [[nodiscard]] wire::sink_status last_status() const {
    auto s = all<wire::sink_status>();
    REQUIRE_FALSE(s.empty());
    return s.back();
  }
};

sink_config config() {
  return sink_config{.heartbeat = millis(250),
                     .heartbeat_timeout = millis(3000),
                     .idle_timeout = millis(60000),
                     .ventilator_endpoint = "tcp://127.0.0.1:5557"};
}

std::string job_info(std::uint64_t j, std::int64_t total, std::string fingerprint = {}) {
  return wire::encode(wire::job_info{.job = j, .total = total, .fingerprint = std::move(fingerprint)});
}

wire::result ok(std::uint64_t id, std::string output) { return wire::result{.id = id, .output = std::move(output)}; }

std::string results(std::uint64_t j, const std::vector<wire::result>& rs) {
  wire::results_builder b;
  b.start(j, "w1");
  for (const auto& r : rs) b.add(r);
  return std::string(b.frame());
}

// A core serving `job` from t0 on (hello said, the job adopted and confirmed).
struct serving {
  explicit serving(sink_config cfg = config(), std::int64_t total = -1) : core(std::move(cfg), io, t0) {
    core.advance(t0);
    core.on_control(job_info(job, total), t0);
    core.advance(t0);
  }
  fake_io io;
  sink_core core;
};

} // namespace

TEST_CASE("sink core says hello every heartbeat until a ventilator names a job, then adopts the first") {
  fake_io io;
  sink_core core(config(), io, t0);
  core.advance(t0);
  REQUIRE(io.all<wire::sink_status>().size() == 1);
  CHECK(io.last_status().job == 0);
  core.advance(t0 + millis(100));
  CHECK(io.all<wire::sink_status>().size() == 1); // not before the next heartbeat
  core.advance(t0 + millis(250));
  REQUIRE(io.all<wire::sink_status>().size() == 2);
  CHECK(io.last_status().job == 0);
  CHECK(core.current_phase() == phase::waiting_for_job);

  core.on_control(job_info(job, -1), t0 + millis(300));
  CHECK(core.current_phase() == phase::collecting);
  CHECK(core.job() == job);
  REQUIRE(io.all<wire::sink_status>().size() == 3); // confirmed at once, not at the next heartbeat
  CHECK(io.last_status().job == job);

  core.on_control(job_info(job + 1, -1), t0 + millis(301));
  CHECK(core.job() == job);
  CHECK(core.stats().foreign == 1);
}

TEST_CASE("sink core says hello as soon as it can when the first one could not go out") {
  fake_io io;
  io.answer = send_result::unreachable;
  sink_core core(config(), io, t0);
  core.advance(t0);
  CHECK(io.refused == 1);
  CHECK(core.wants_to_send());
  CHECK(core.next_wakeup() <= t0 + millis(10));
  io.answer = send_result::sent;
  core.advance(t0 + millis(1)); // the socket became writable
  REQUIRE(io.all<wire::sink_status>().size() == 1);
  CHECK(io.last_status().job == 0);
  CHECK_FALSE(core.wants_to_send());
}

TEST_CASE("sink core writes each result once and drops, counts and acknowledges again a duplicate") {
  serving s;
  s.core.on_results(results(job, {ok(0, "a"), ok(1, "b\n"), ok(2, "")}), t0);
  CHECK(s.io.out == "a\nb\n"); // the output rule: a newline added where missing, nothing for empty
  auto st = s.io.last_status();
  CHECK(st.done == std::vector<wire::id_range>{{0, 3}});
  CHECK(st.written_below == all_written);
  CHECK(s.core.stats().written == 3);

  s.core.on_results(results(job, {ok(1, "again")}), t0);
  CHECK(s.io.out == "a\nb\n");
  CHECK(s.core.stats().duplicates == 1);
  CHECK(s.io.last_status().done == std::vector<wire::id_range>{{1, 1}});

  // A flood of copies costs one run, not one entry each.
  std::vector<wire::result> flood(500, ok(2, "x"));
  s.core.on_results(results(job, flood), t0);
  CHECK(s.core.stats().duplicates == 501);
  CHECK(s.io.last_status().done == std::vector<wire::id_range>{{2, 1}});
  CHECK(s.io.out == "a\nb\n");
}

TEST_CASE("sink core drops results of another job and results beyond the job's total") {
  serving s(config(), 2);
  s.core.on_results(results(job + 1, {ok(0, "a")}), t0);
  CHECK(s.core.stats().foreign == 1);
  s.core.on_results(results(job, {ok(5, "a")}), t0);
  CHECK(s.core.stats().malformed == 1);
  s.core.on_results("garbage", t0);
  CHECK(s.core.stats().malformed == 2);
  CHECK(s.io.out.empty());
}

TEST_CASE("sink core's done_below follows the watermark of the results it holds") {
  serving s;
  s.core.on_results(results(job, {ok(2, "c")}), t0);
  CHECK(s.io.last_status().done_below == 0);
  s.core.on_results(results(job, {ok(0, "a")}), t0);
  CHECK(s.io.last_status().done_below == 1);
  s.core.on_results(results(job, {ok(1, "b")}), t0);
  CHECK(s.io.last_status().done_below == 3);
  s.core.advance(t0 + millis(250)); // the heartbeat carries it too
  CHECK(s.io.last_status().done_below == 3);
  CHECK(s.io.last_status().done.empty());
}

TEST_CASE("sink core with -k writes in task order while held_bytes rises and falls") {
  auto cfg = config();
  cfg.keep_order = true;
  serving s(cfg);
  s.core.on_results(results(job, {ok(2, "cc")}), t0);
  CHECK(s.io.out.empty());
  CHECK(s.core.held_bytes() == 3);
  CHECK(s.io.last_status().held_bytes == 3);
  CHECK(s.io.last_status().written_below == 0);
  s.core.on_results(results(job, {ok(1, "b")}), t0);
  CHECK(s.core.held_bytes() == 5);
  s.core.on_results(results(job, {ok(0, "a")}), t0);
  CHECK(s.io.out == "a\nb\ncc\n");
  CHECK(s.core.held_bytes() == 0);
  CHECK(s.io.last_status().held_bytes == 0);
  CHECK(s.io.last_status().written_below == 3);
}

TEST_CASE("sink core acknowledges a failure with retries left for a retry and does not write it") {
  serving s;
  auto failed = wire::result{
      .id = 0, .attempt = 1, .status = wire::task_status::failed, .code = 4, .output = "partial", .retries_left = 2};
  s.core.on_results(results(job, {failed}), t0);
  CHECK(s.io.out.empty());
  auto st = s.io.last_status();
  CHECK(st.acks == std::vector<wire::ack>{{.id = 0, .attempt = 1, .status = wire::task_status::failed}});
  CHECK(st.done.empty());
  CHECK(st.done_below == 0);
  CHECK(s.core.stats().retried == 1);

  auto second = ok(0, "fine");
  second.attempt = 2;
  s.core.on_results(results(job, {second}), t0);
  CHECK(s.io.out == "fine\n");
  CHECK(s.io.last_status().done == std::vector<wire::id_range>{{0, 1}});
}

TEST_CASE("sink core names a final failure on stderr, writes its --failures line and exits 3") {
  auto cfg = config();
  cfg.failures = true;
  serving s(cfg, 1);
  auto failed = wire::result{.id = 0,
                             .attempt = 3,
                             .status = wire::task_status::failed,
                             .code = 4,
                             .output = "out",
                             .error = "bad\n",
                             .payload = "p"};
  s.core.on_results(results(job, {failed}), t0);
  CHECK(s.io.out == "out\n"); // a final failure's stdout is written like any result
  CHECK(s.io.logs.has("warn: task 0 failed: exit status 4: bad"));
  REQUIRE(s.io.failures.size() == 1);
  CHECK(s.io.failures[0] == R"({"id":0,"attempts":3,"status":"failed","exit_status":4,"payload":"p","stderr":"bad\n"})"
                            "\n");
  s.core.advance(t0);
  REQUIRE(s.io.all<wire::complete>().size() == 1);
  CHECK(s.io.all<wire::complete>()[0] == wire::complete{.job = job, .total = 1, .failed = 1});
  s.core.on_control(wire::encode(wire::complete_ack{.job = job}), t0);
  CHECK(s.core.exit_code() == 3);
}

TEST_CASE("sink core completes only once the output has drained and the ventilator acknowledges") {
  serving s(config(), 2);
  s.io.drained = false;
  s.core.on_results(results(job, {ok(0, "a"), ok(1, "b")}), t0);
  s.core.advance(t0 + millis(1));
  CHECK(s.core.current_phase() == phase::collecting);
  CHECK(s.io.all<wire::complete>().empty());

  s.io.drained = true;
  s.core.advance(t0 + millis(2));
  CHECK(s.core.current_phase() == phase::completing);
  REQUIRE(s.io.all<wire::complete>().size() == 1);
  CHECK(s.io.all<wire::complete>()[0] == wire::complete{.job = job, .total = 2, .failed = 0});

  s.core.advance(t0 + millis(2 + 250)); // repeated each heartbeat until acknowledged
  CHECK(s.io.all<wire::complete>().size() == 2);
  s.core.on_control(wire::encode(wire::complete_ack{.job = job + 1}), t0 + millis(300));
  CHECK_FALSE(s.core.exit_code());
  s.core.on_control(wire::encode(wire::complete_ack{.job = job}), t0 + millis(300));
  CHECK(s.core.current_phase() == phase::finished);
  CHECK(s.core.exit_code() == 0);
}

TEST_CASE("sink core waits for complete's acknowledgement as long as it would wait for a ventilator, then finishes") {
  // A connection cut off for longer than a heartbeat timeout must not make the sink leave before
  // the ventilator has heard `complete` (the ventilator would then give up with exit 1).
  serving s(config(), 1);
  s.core.on_results(results(job, {ok(0, "a")}), t0);
  s.core.advance(t0);
  CHECK(s.core.current_phase() == phase::completing);
  s.core.advance(t0 + millis(3001));
  CHECK_FALSE(s.core.exit_code()); // a heartbeat timeout is not enough
  // The ventilator speaks again (the cut healed): the wait starts over.
  s.core.on_control(job_info(job, 1), t0 + millis(10000));
  s.core.advance(t0 + millis(69999));
  CHECK_FALSE(s.core.exit_code());
  CHECK(s.core.next_wakeup() <= t0 + millis(70000));
  s.core.advance(t0 + millis(70000));
  CHECK(s.core.exit_code() == 0);
  CHECK(s.io.logs.has("the ventilator did not confirm completion; every result is written"));
}

TEST_CASE("sink core writes the aggregate at the end and completes after it has drained") {
  auto cfg = config();
  cfg.make_aggregator = [] { return mtask::make_reducer("sum", false); };
  serving s(cfg, 2);
  s.core.on_results(results(job, {ok(0, "40"), ok(1, "2")}), t0);
  CHECK(s.io.out.empty());
  s.core.advance(t0);
  CHECK(s.io.out == "42\n");
  CHECK(s.core.current_phase() == phase::completing);
}

TEST_CASE("sink core keeps the acks of a status it could not send and sends them once it can") {
  serving s;
  s.io.answer = send_result::full;
  s.core.on_results(results(job, {ok(0, "a")}), t0);
  s.core.on_results(results(job, {ok(1, "b")}), t0);
  s.core.on_results(results(job, {ok(0, "dup")}), t0);
  CHECK(s.core.wants_to_send());
  CHECK(s.core.next_wakeup() <= t0 + millis(10));
  s.core.advance(t0 + millis(10));
  CHECK(s.io.refused >= 1);
  CHECK(s.core.wants_to_send());

  s.io.answer = send_result::sent;
  const auto before = s.io.all<wire::sink_status>().size();
  s.core.advance(t0 + millis(11));
  REQUIRE(s.io.all<wire::sink_status>().size() == before + 1);
  auto st = s.io.last_status();
  CHECK(st.done == std::vector<wire::id_range>{{0, 2}}); // the copy of 0 is in the run already
  CHECK(st.done_below == 2);
  CHECK_FALSE(s.core.wants_to_send());
  s.core.advance(t0 + millis(250));
  CHECK(s.io.last_status().done.empty()); // sent once, not again
}

TEST_CASE("sink core bounds the acks it keeps while no status can be sent") {
  serving s;
  s.io.answer = send_result::unreachable;
  s.core.on_results(results(job, {ok(0, "a"), ok(1, "b"), ok(5, "f")}), t0);
  std::vector<wire::result> copies; // alternating, so that no copy extends the last run
  for (int i = 0; i < 300; ++i) {
    copies.push_back(ok(0, "dup"));
    copies.push_back(ok(5, "dup"));
  }
  for (int i = 0; i < 20; ++i) s.core.on_results(results(job, copies), t0);
  s.io.answer = send_result::sent;
  s.core.advance(t0 + millis(10));
  auto st = s.io.last_status();
  CHECK(st.done_below == 2);
  CHECK(st.done.size() < 1100); // folded, not 12 000 entries
  CHECK(s.core.stats().duplicates == 12000);
}

TEST_CASE("sink core holds results back while the output's backlog is over the limit") {
  auto cfg = config();
  cfg.output_limit = 1000;
  serving s(cfg);
  CHECK(s.core.wants_results());
  s.io.backlog = 1000;
  s.core.on_results(results(job, {ok(0, "a")}), t0);
  CHECK_FALSE(s.core.wants_results());
  CHECK(s.io.last_status().held_back);
  s.io.backlog = 400; // above a quarter: still held back
  s.core.advance(t0 + millis(1));
  CHECK_FALSE(s.core.wants_results());
  s.io.backlog = 250;
  s.core.advance(t0 + millis(2));
  CHECK(s.core.wants_results());
  CHECK_FALSE(s.io.last_status().held_back);
}

TEST_CASE("sink core gives up after idle_timeout without its ventilator") {
  SUBCASE("before any job: at once, nobody to tell") {
    auto cfg = config();
    cfg.idle_timeout = millis(500);
    fake_io io;
    sink_core core(cfg, io, t0);
    core.advance(t0);
    core.advance(t0 + millis(499));
    CHECK_FALSE(core.exit_code());
    CHECK(core.next_wakeup() <= t0 + millis(500));
    core.advance(t0 + millis(500));
    CHECK(core.exit_code() == 1);
    CHECK(io.logs.has("giving up after 500 ms without a ventilator at 'tcp://127.0.0.1:5557'"));
  }
  SUBCASE("serving a job: abort, and exit once the ventilator answers") {
    auto cfg = config();
    cfg.idle_timeout = millis(500);
    serving s(cfg);
    s.core.on_control(job_info(job, -1), t0 + millis(300));
    s.core.advance(t0 + millis(799));
    CHECK(s.core.current_phase() == phase::collecting);
    s.core.advance(t0 + millis(800));
    CHECK(s.core.current_phase() == phase::aborting);
    REQUIRE(s.io.all<wire::abort_msg>().size() == 1);
    CHECK(s.io.all<wire::abort_msg>()[0] ==
          wire::abort_msg{.job = job, .reason = "the sink heard nothing from the ventilator"});
    s.core.on_control(wire::encode(wire::abort_msg{.job = job, .reason = "ok"}), t0 + millis(801));
    CHECK(s.core.exit_code() == 1);
  }
}

TEST_CASE("sink core stopped by a signal aborts and exits 128 + signal, at most a heartbeat timeout later") {
  serving s;
  s.core.stop(15, t0 + millis(5));
  CHECK(s.core.current_phase() == phase::aborting);
  REQUIRE(s.io.all<wire::abort_msg>().size() == 1);
  CHECK(s.io.all<wire::abort_msg>()[0].reason == "the sink was stopped by signal 15");
  s.core.advance(t0 + millis(3004));
  CHECK_FALSE(s.core.exit_code());
  s.core.advance(t0 + millis(3005));
  CHECK(s.core.exit_code() == 128 + 15);
}

TEST_CASE("sink core exits 1 naming the reason when the ventilator gives up, and answers it") {
  serving s;
  s.core.on_control(wire::encode(wire::abort_msg{.job = job, .reason = "no worker"}), t0);
  CHECK(s.core.exit_code() == 1);
  CHECK(s.io.logs.has("error: the ventilator gave up: no worker"));
  CHECK(s.io.all<wire::abort_msg>().size() == 1);
}

TEST_CASE("sink core ends with exit 1 on a control frame of another protocol version") {
  serving s;
  // [1, 5, 7, -1]: a version 1 job_info.
  const std::string v1_job_info("\x94\x01\x05\x07\xff", 5);
  s.core.on_control(v1_job_info, t0);
  CHECK(s.core.exit_code() == 1);
  CHECK(s.core.current_phase() == phase::finished);
  CHECK(s.io.logs.has("error: the ventilator at 'tcp://127.0.0.1:5557' speaks protocol version 1; this sink speaks 4"));
  CHECK(s.io.all<wire::abort_msg>().empty()); // it could not read one
}

TEST_CASE("sink core counts results of another protocol version as malformed and says so once") {
  serving s;
  const std::string v5_results("\x95\x05\x09\x07\xa1w\x90", 7);
  s.core.on_results(v5_results, t0);
  s.core.on_results(v5_results, t0);
  CHECK(s.core.stats().malformed == 2);
  CHECK_FALSE(s.core.exit_code());
  std::size_t named = 0;
  for (const auto& l : s.io.logs.lines())
    named += l.find("protocol version 5; this sink speaks 4") != std::string::npos;
  CHECK(named == 1);
}

// ---- with a journal (--journal) ----

namespace {

sink_config journal_config(bool keep_order = false) {
  auto cfg = config();
  cfg.journal = true;
  cfg.journal_every = 4;
  cfg.journal_interval = millis(10);
  cfg.keep_order = keep_order;
  return cfg;
}

} // namespace

TEST_CASE("sink core with a journal acknowledges results only once their group is durable") {
  serving s(journal_config(), 6);
  const auto statuses = s.io.all<wire::sink_status>().size();
  s.core.on_results(results(job, {ok(0, "a"), ok(1, "b")}), t0);
  CHECK(s.io.out == "a\nb\n");                             // written at once...
  CHECK(s.io.all<wire::sink_status>().size() == statuses); // ...acknowledged later
  CHECK(s.io.groups.empty());
  CHECK(s.core.next_wakeup() <= t0 + millis(10));

  s.core.advance(t0 + millis(10)); // the group's time is up
  REQUIRE(s.io.groups.size() == 1);
  CHECK(s.io.groups[0].first == 1);
  CHECK(s.io.groups[0].second.job == job);
  CHECK(s.io.groups[0].second.final_ids == std::vector<wire::id_range>{{0, 2}});
  CHECK(s.io.last_status().done_below == 0); // closed, not yet durable

  s.core.on_durable(1, t0 + millis(11));
  auto st = s.io.last_status();
  CHECK(st.done == std::vector<wire::id_range>{{0, 2}});
  CHECK(st.done_below == 2);
}

TEST_CASE("sink core with a journal closes a group after journal_every results") {
  serving s(journal_config(), 10);
  s.core.on_results(results(job, {ok(0, "a"), ok(1, "b"), ok(2, "c")}), t0);
  CHECK(s.io.groups.empty());
  s.core.on_results(results(job, {ok(3, "d"), ok(1, "dup")}), t0);
  REQUIRE(s.io.groups.size() == 1);
  CHECK(s.io.groups[0].second.final_ids == std::vector<wire::id_range>{{0, 4}});
  CHECK(s.core.stats().duplicates == 1);
}

TEST_CASE("sink core with a journal and -k journals the results it holds for an earlier task") {
  serving s(journal_config(true), 4);
  s.core.on_results(results(job, {ok(2, "c"), ok(0, "a"), ok(3, "d")}), t0);
  s.core.advance(t0 + millis(10));
  REQUIRE(s.io.groups.size() == 1);
  const auto& g = s.io.groups[0].second;
  CHECK(g.written_below == 1);
  REQUIRE(g.held.size() == 2);
  CHECK(g.held[0] == mtask::journal::held_result{.id = 2, .bytes = "c\n"});
  CHECK(g.held[1] == mtask::journal::held_result{.id = 3, .bytes = "d\n"});
  s.core.on_durable(1, t0 + millis(11));
  CHECK(s.io.last_status().written_below == 1);
}

TEST_CASE("sink core with a journal completes after the last group is durable and the completion journaled") {
  serving s(journal_config(), 2);
  s.core.on_results(results(job, {ok(0, "a"), ok(1, "b")}), t0);
  s.core.advance(t0 + millis(1));
  REQUIRE(s.io.groups.size() == 1); // the job's end does not wait for the timer
  CHECK(s.io.completions.empty());
  CHECK(s.core.current_phase() == phase::collecting);
  s.core.on_durable(1, t0 + millis(2));
  s.core.advance(t0 + millis(2));
  REQUIRE(s.io.completions.size() == 1);
  CHECK(s.io.completions[0] == mtask::journal::completion{.job = job, .total = 2, .failed = 0});
  CHECK(s.core.current_phase() == phase::completing);
}

TEST_CASE("sink core with a journal acks a duplicate that comes after the completion without a group") {
  // A commit after the completion record would make the journal unreadable on the next start.
  serving s(journal_config(), 2);
  s.core.on_results(results(job, {ok(0, "a"), ok(1, "b")}), t0);
  s.core.advance(t0 + millis(1));
  s.core.on_durable(1, t0 + millis(2));
  s.core.advance(t0 + millis(2));
  REQUIRE(s.io.completions.size() == 1);
  REQUIRE(s.core.current_phase() == phase::completing);
  s.core.on_results(results(job, {ok(1, "late")}), t0 + millis(3)); // rerun after a lost ack
  s.core.advance(t0 + millis(100));                                 // past any group interval
  CHECK(s.io.groups.size() == 1);                                   // no group after the completion
  CHECK(s.core.stats().duplicates == 1);
  CHECK(s.io.out == "a\nb\n");
  const auto st = s.io.last_status();
  CHECK(std::find(st.done.begin(), st.done.end(), wire::id_range{1, 1}) != st.done.end()); // acked
}

TEST_CASE("sink core resumed from a journal serves only its job and acknowledges what was final") {
  auto st = std::make_shared<mtask::journal::state>();
  st->job = job;
  st->final_ids.insert(0, 3);
  st->final_ids.insert(5, 2);
  auto cfg = journal_config();
  cfg.resume = st;
  st->fingerprint = "range 1:10:1";
  {
    // A ventilator of another job (a restarted one) hears which job this sink continues, with its
    // input and every id final here; the sink keeps waiting for its own job.
    fake_io io;
    sink_core core(cfg, io, t0);
    core.advance(t0);
    core.on_control(job_info(job + 1, -1, "range 1:10:1"), t0);
    CHECK_FALSE(core.exit_code());
    CHECK(core.current_phase() == phase::waiting_for_job);
    auto claim = io.last_status();
    CHECK(claim.claim);
    CHECK(claim.job == job);
    CHECK(claim.fingerprint == "range 1:10:1");
    CHECK(claim.done_below == 3);
    CHECK(claim.done == std::vector<wire::id_range>{{5, 2}});
    CHECK(io.jobs.empty()); // its job is journaled already
  }
  fake_io io;
  sink_core core(cfg, io, t0);
  core.advance(t0);
  core.on_control(job_info(job, 8), t0);
  auto status = io.last_status();
  CHECK(status.done_below == 3);
  CHECK(status.done == std::vector<wire::id_range>{{5, 2}});
  core.on_results(results(job, {ok(1, "again"), ok(3, "d")}), t0);
  CHECK(io.out == "d\n");
  CHECK(core.stats().duplicates == 1);
  CHECK(core.stats().written == 6);
}

// ---- answering a restarted ventilator (claims) ----

TEST_CASE("sink core keeps the input's fingerprint of the job it adopts and journals it with the job") {
  auto cfg = config();
  cfg.journal = true;
  fake_io io;
  sink_core core(cfg, io, t0);
  core.advance(t0);
  core.on_control(job_info(job, -1, "file size=3"), t0);
  REQUIRE(io.jobs.size() == 1);
  CHECK(io.jobs[0] == mtask::journal::job_record{.job = job, .fingerprint = "file size=3"});
  // Later job_infos of the same job journal nothing more.
  core.on_control(job_info(job, 4, "file size=3"), t0);
  CHECK(io.jobs.size() == 1);
}

TEST_CASE("sink core answers a ventilator of another job with a claim listing every final id") {
  fake_io io;
  sink_core core(config(), io, t0);
  core.advance(t0);
  core.on_control(job_info(job, -1, "range 0:99:1"), t0);
  core.on_results(results(job, {ok(0, "a"), ok(1, "b"), ok(4, "e"), ok(5, "f"), ok(9, "j")}), t0);
  const auto before = io.sent.size();
  core.on_control(job_info(job + 1, -1, "range 0:99:1"), t0);
  REQUIRE(io.sent.size() == before + 1);
  auto claim = io.last_status();
  CHECK(claim.claim);
  CHECK(claim.job == job);
  CHECK(claim.fingerprint == "range 0:99:1");
  CHECK(claim.done_below == 2);
  CHECK(claim.done == std::vector<wire::id_range>{{4, 2}, {9, 1}});
  CHECK(claim.acks.empty());
  CHECK(core.current_phase() == phase::collecting); // still serving its job
  CHECK(core.stats().foreign == 1);
  // Its own job goes on: a result of it is still taken.
  core.on_results(results(job, {ok(2, "c")}), t0);
  CHECK(io.out == "a\nb\ne\nf\nj\nc\n");
}

TEST_CASE("sink core's claim with a journal lists only ids whose group is durable") {
  auto cfg = journal_config();
  fake_io io;
  sink_core core(cfg, io, t0);
  core.advance(t0);
  core.on_control(job_info(job, -1, "range 0:99:1"), t0);
  core.on_results(results(job, {ok(0, "a"), ok(1, "b"), ok(5, "f")}), t0);
  core.advance(t0 + millis(10)); // the group closes
  REQUIRE(io.groups.size() == 1);
  core.on_durable(io.groups[0].first, t0 + millis(10));
  core.on_results(results(job, {ok(2, "c"), ok(7, "h")}), t0 + millis(11)); // not durable
  core.on_control(job_info(job + 1, -1, "range 0:99:1"), t0 + millis(11));
  auto claim = io.last_status();
  CHECK(claim.claim);
  CHECK(claim.done_below == 2);
  CHECK(claim.done == std::vector<wire::id_range>{{5, 1}});
  // Once that group is durable too, a claim lists its ids.
  core.advance(t0 + millis(30));
  REQUIRE(io.groups.size() == 2);
  core.on_durable(io.groups[1].first, t0 + millis(30));
  core.on_control(job_info(job + 1, -1, "range 0:99:1"), t0 + millis(30));
  claim = io.last_status();
  CHECK(claim.claim);
  CHECK(claim.done_below == 3);
  CHECK(claim.done == std::vector<wire::id_range>{{5, 1}, {7, 1}});
}

TEST_CASE("sink core journals a reduction's total with each group and resumes it exactly") {
  auto cfg = journal_config();
  cfg.make_aggregator = [] { return mtask::make_reducer("sum", false); };
  mtask::journal::state st;
  {
    fake_io io;
    sink_core core(cfg, io, t0);
    core.advance(t0);
    core.on_control(job_info(job, 6), t0);
    core.on_results(results(job, {ok(0, "1"), ok(1, "2"), ok(2, "3"), ok(3, "4")}), t0); // a group of 4
    REQUIRE(io.groups.size() == 1);
    REQUIRE(io.groups[0].second.aggregate);
    st.apply(io.groups[0].second);
    core.on_results(results(job, {ok(4, "100")}), t0); // not durable when the sink dies
  }
  cfg.resume = std::make_shared<mtask::journal::state>(st);
  fake_io io;
  sink_core core(cfg, io, t0);
  core.advance(t0);
  core.on_control(job_info(job, 6), t0);
  core.on_results(results(job, {ok(2, "3"), ok(4, "5"), ok(5, "6")}), t0); // 2 is a duplicate now
  CHECK(core.stats().duplicates == 1);
  core.advance(t0 + millis(20));
  REQUIRE(io.groups.size() == 1);
  core.on_durable(io.groups[0].first, t0 + millis(20));
  core.advance(t0 + millis(21));
  CHECK(io.out == "21\n"); // 1+2+3+4 from the journal, 5+6 since: task 4's first result died with the sink
}

TEST_CASE("sink core's claim leaves out a group handed to the journal and not yet durable") {
  auto cfg = journal_config();
  fake_io io;
  sink_core core(cfg, io, t0);
  core.advance(t0);
  core.on_control(job_info(job, -1, "range 0:99:1"), t0);
  core.on_results(results(job, {ok(0, "a"), ok(3, "d")}), t0);
  core.advance(t0 + millis(10)); // the group closes and goes to the journal's thread...
  REQUIRE(io.groups.size() == 1);
  core.on_control(job_info(job + 1, -1, "range 0:99:1"), t0 + millis(10)); // ...which has not synced it
  auto claim = io.last_status();
  CHECK(claim.claim);
  CHECK(claim.done_below == 0);
  CHECK(claim.done.empty());
  core.on_durable(io.groups[0].first, t0 + millis(11));
  core.on_control(job_info(job + 1, -1, "range 0:99:1"), t0 + millis(11));
  claim = io.last_status();
  CHECK(claim.done_below == 1);
  CHECK(claim.done == std::vector<wire::id_range>{{3, 1}});
}

TEST_CASE("sink core's claim fits a message: runs beyond what fits are left out (they only run again)") {
  auto cfg = config();
  cfg.max_message_bytes = 8192 + 20 * 10; // room for 10 runs
  fake_io io;
  sink_core core(cfg, io, t0);
  core.advance(t0);
  core.on_control(job_info(job, -1, "range"), t0);
  std::vector<wire::result> rs;
  for (std::uint64_t id = 1; id < 100; id += 2) rs.push_back(ok(id, "x")); // 50 runs of one id
  core.on_results(results(job, rs), t0);
  core.on_control(job_info(job + 1, -1, "range"), t0);
  const auto claim = io.last_status();
  CHECK(claim.claim);
  CHECK(claim.done.size() == 10);
  CHECK(claim.done.front() == wire::id_range{1, 1});
}

TEST_CASE("sink core journals the attempts --stats counts, acks a retry once durable, and a resumed core counts on") {
  auto cfg = journal_config();
  cfg.stats = true;
  mtask::journal::state st;
  st.head.stats = true;
  std::string before; // the stats of an uninterrupted run of the journaled attempts
  {
    fake_io io;
    sink_core core(cfg, io, t0);
    core.advance(t0);
    core.on_control(job_info(job, 4), t0);
    auto failed = wire::result{.id = 1, .attempt = 1, .status = wire::task_status::failed, .retries_left = 1};
    core.on_results(results(job, {ok(0, "a"), failed}), t0);
    core.advance(t0 + millis(10)); // the group closes...
    REQUIRE(io.groups.size() == 1);
    const auto& g = io.groups[0].second;
    REQUIRE(g.attempts);
    CHECK(g.attempts->workers == std::vector<std::string>{"w1"});
    REQUIRE(g.attempts->attempts.size() == 2);
    CHECK(g.attempts->attempts[1] ==
          mtask::journal::attempt_entry{.worker = 0, .id = 1, .attempt = 1, .status = 1, .final = false});
    for (const auto& s : io.all<wire::sink_status>()) CHECK(s.acks.empty()); // ...the retry waits for it
    core.on_durable(io.groups[0].first, t0 + millis(11));
    CHECK(io.last_status().acks ==
          std::vector<wire::ack>{{.id = 1, .attempt = 1, .status = wire::task_status::failed}});
    st.apply(g);
    before = core.job_statistics().to_json({});
    core.on_results(results(job, {ok(2, "c")}), t0 + millis(12)); // written, never journaled: dies with the sink
  }
  cfg.resume = std::make_shared<mtask::journal::state>(st);
  fake_io io;
  sink_core core(cfg, io, t0);
  CHECK(core.job_statistics().to_json({}) == before);
  core.advance(t0);
  core.on_control(job_info(job, 4), t0);
  auto second = ok(1, "b");
  second.attempt = 2;
  core.on_results(results(job, {ok(0, "a"), second, ok(2, "c"), ok(3, "d")}), t0); // 0 is a duplicate now
  const auto json = core.job_statistics().to_json({});
  CHECK(json.find(R"("tasks":4,"tasks_per_second")") != std::string::npos);
  CHECK(json.find(R"("retries":1,"requeues":0,"duplicates_dropped":1,)") != std::string::npos);
  CHECK(json.find(R"({"name":"w1","attempts":5,"failures":1,)") != std::string::npos); // 0, 1 twice, 2, 3
}
