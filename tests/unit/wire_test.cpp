// Unit tests for the wire protocol (lib/src/protocol/wire.cpp): round trips, golden bytes of protocol
// version 3, and the decoder's refusal of truncated, garbage, misshapen, oversized and
// other-version frames.
#include "protocol/wire.hpp"
#include "mtask/error.hpp"

#include <doctest/doctest.h>
#include <msgpack.hpp>

#include <cstdint>
#include <functional>
#include <limits>
#include <random>
#include <set>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace wire = mtask::wire;
using mtask::protocol_error;

namespace {

using packer = msgpack::packer<msgpack::sbuffer>;

std::string to_hex(std::string_view bytes) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) {
    out.push_back(digits[c >> 4]);
    out.push_back(digits[c & 0xf]);
  }
  return out;
}

// Accepts spaces between bytes so the golden strings can be grouped by field.
std::string from_hex(std::string_view hex) {
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  std::string out;
  int high = -1;
  for (char c : hex) {
    if (c == ' ') continue;
    int v = nibble(c);
    REQUIRE(v >= 0);
    if (high < 0) {
      high = v;
    } else {
      out.push_back(static_cast<char>(high * 16 + v));
      high = -1;
    }
  }
  REQUIRE(high < 0);
  return out;
}

// Builds a frame by hand, for shapes our encoder never produces.
template <typename Fn>
std::string packed(Fn&& fn) {
  msgpack::sbuffer buf;
  packer p(buf);
  fn(p);
  return std::string(buf.data(), buf.size());
}

void pack_bin(packer& p, std::string_view s) {
  p.pack_bin(static_cast<std::uint32_t>(s.size()));
  p.pack_bin_body(s.data(), static_cast<std::uint32_t>(s.size()));
}

// One message of every type, with values that reach every integer width msgpack has.
std::vector<wire::message> sample_messages() {
  constexpr auto u64_max = std::numeric_limits<std::uint64_t>::max();
  constexpr auto u32_max = std::numeric_limits<std::uint32_t>::max();
  return {
      wire::worker_status{.job = 1, .name = "host:4242", .slots = 8, .free = 3, .next_seq = 70000, .completed_job = 0},
      wire::worker_status{.job = u64_max,
                          .name = "",
                          .slots = u32_max,
                          .free = u32_max,
                          .next_seq = u64_max,
                          .completed_job = u64_max,
                          .busy = u32_max,
                          .lost = {{.first = 0, .count = 0}, {.first = 3, .count = 2}, {.first = u64_max, .count = 0}}},
      wire::worker_bye{.job = 12},
      wire::tasks_msg{.job = 3,
                      .seq = 1,
                      .terminator = "\n",
                      .sink_endpoint = "tcp://127.0.0.1:5558",
                      .tasks = {{.id = 0, .attempt = 1, .payload = "first line", .retries_left = 0},
                                {.id = 1, .attempt = 2, .payload = "", .retries_left = 3},
                                {.id = u64_max,
                                 .attempt = u32_max,
                                 .payload = std::string("nul\0inside\xff", 11),
                                 .retries_left = u32_max}}},
      wire::tasks_msg{.job = 4, .seq = u64_max, .terminator = std::string(1, '\0'), .sink_endpoint = "", .tasks = {}},
      wire::tasks_msg{.job = 4, .seq = 1, .details = true, .tasks = {{.id = 0, .payload = "a"}}},
      wire::vent_status{.job = 5, .complete = true, .sent_seq = 70000, .resolved_below = 300},
      wire::vent_status{.job = 0, .complete = false},
      wire::vent_status{.job = 5, .complete = false, .sent_seq = 1, .cancel = true},
      wire::vent_status{.job = u64_max, .complete = false, .sent_seq = u64_max, .resolved_below = u64_max},
      wire::job_info{.job = 6, .total = -1},
      wire::job_info{.job = 6, .total = std::numeric_limits<std::int64_t>::max()},
      wire::job_info{.job = 6, .total = -1, .fingerprint = "range 1:100:1"},
      wire::job_info{.job = 6, .total = 70000, .fingerprint = std::string(300, 'f')},
      wire::job_info{.job = 6, .total = 9, .workers = 4000, .slots = u64_max, .requeued = u64_max},
      wire::sink_status{.job = 7,
                        .written_below = 256,
                        .done_below = 1,
                        .acks = {{.id = 0, .attempt = 1, .status = wire::task_status::ok},
                                 {.id = 99, .attempt = 3, .status = wire::task_status::crashed},
                                 {.id = 100, .attempt = u32_max, .status = wire::task_status::too_large}}},
      wire::sink_status{.job = 0, .written_below = 0, .acks = {}},
      wire::sink_status{.job = 7,
                        .written_below = 3,
                        .done_below = 3,
                        .held_bytes = 70000,
                        .held_back = true,
                        .done = {{.first = 0, .count = 3}}},
      wire::sink_status{.job = 7,
                        .written_below = u64_max,
                        .done_below = u64_max,
                        .held_bytes = u64_max,
                        .acks = {},
                        .done = {{.first = 0, .count = 1000}, {.first = std::uint64_t{1} << 40, .count = 1}}},
      wire::sink_status{.job = 7,
                        .written_below = 0,
                        .done_below = 5,
                        .done = {{.first = 9, .count = 2}},
                        .claim = true,
                        .fingerprint = "file size=3 mtime=1.5 head=af63bd4c8601b7df sep=0a lines=1 block=0"},
      wire::sink_status{.job = 7, .claim = true, .fingerprint = ""},
      wire::sink_status{.job = 7, .done_below = 2, .details = true, .final_results = 70000, .failed = u64_max},
      wire::complete{.job = 8, .total = 1000000, .failed = 2},
      wire::complete_ack{.job = 9},
      wire::abort_msg{.job = 11, .reason = "input 'data.txt' cannot be read"},
      wire::abort_msg{.job = 11, .reason = ""},
      wire::wrong_version{.job = 0},
      wire::wrong_version{.job = u64_max},
      wire::status_request{},
      wire::halt_msg{.job = 5, .reason = "3 task(s) failed (--halt soon,fail=3)"},
      wire::status_report{.job = 3, .phase = "running", .total = -1, .read = 10},
      wire::status_report{.job = u64_max,
                          .phase = "farewell",
                          .total = 70000,
                          .read = 70000,
                          .acknowledged = 70000,
                          .requeued = 3,
                          .retried = u64_max,
                          .elapsed_ms = 123456,
                          .workers = {{.name = "host:1",
                                       .slots = 4,
                                       .busy = 4,
                                       .done = 35000,
                                       .rate_milli = 1500,
                                       .silent_ms = 12,
                                       .alive = true},
                                      {.name = "w@host:2", .slots = u32_max, .alive = false}}},
      wire::results_msg{.job = 10,
                        .worker = "host:1",
                        .results = {{.id = 4,
                                     .attempt = 1,
                                     .status = wire::task_status::ok,
                                     .code = 0,
                                     .output = "out\n",
                                     .error = "",
                                     .runtime_us = 1234,
                                     .retries_left = 0,
                                     .payload = "",
                                     .start_us = 1796620523972000,
                                     .payload_bytes = u64_max,
                                     .command = "gzip -9k data/a.txt"},
                                    {.id = 5,
                                     .attempt = 2,
                                     .status = wire::task_status::not_started,
                                     .code = std::numeric_limits<std::int32_t>::min(),
                                     .output = "",
                                     .error = "No such file or directory",
                                     .runtime_us = u64_max,
                                     .retries_left = u32_max,
                                     .payload = std::string("nul\0inside\xff", 11)},
                                    {.id = 6,
                                     .attempt = 1,
                                     .status = wire::task_status::timed_out,
                                     .code = std::numeric_limits<std::int32_t>::max(),
                                     .output = std::string(300, 'x'),
                                     .error = std::string(70000, 'e'),
                                     .runtime_us = 0,
                                     .retries_left = 1,
                                     .payload = std::string(70000, 'p')},
                                    {.id = 7,
                                     .attempt = 1,
                                     .status = wire::task_status::too_large,
                                     .code = 0,
                                     .output = "",
                                     .error = "output of 70000 bytes exceeds --max-output-bytes",
                                     .runtime_us = 5,
                                     .retries_left = 0,
                                     .payload = "p"}}},
  };
}

// A valid frame per type, for the truncation and mutation tests.
std::vector<std::string> sample_frames() {
  std::vector<std::string> frames;
  for (const auto& m : sample_messages()) frames.push_back(wire::encode(m));
  return frames;
}

} // namespace

TEST_CASE("wire round-trips every message type unchanged") {
  std::set<std::size_t> types;
  for (const auto& m : sample_messages()) {
    CAPTURE(m.index());
    CHECK(wire::decode(wire::encode(m)) == m);
    types.insert(m.index());
  }
  // A message type added to the variant needs a sample here.
  CHECK(types.size() == std::variant_size_v<wire::message>);
}

TEST_CASE("wire's results_builder makes the frame encode() would, one result at a time, and can be reused") {
  wire::results_builder b;
  for (const auto& m : sample_messages()) {
    const auto* sample = std::get_if<wire::results_msg>(&m);
    if (!sample) continue;
    for (int reuse = 0; reuse < 2; ++reuse) { // the second time round, the buffer holds the first message
      b.start(sample->job, sample->worker);
      for (const auto& r : sample->results) b.add(r);
      CHECK(b.job() == sample->job);
      CHECK(b.count() == sample->results.size());
      CHECK(wire::decode(b.frame()) == m);
    }
  }
  SUBCASE("an empty message, and one of 70 000 results (past array16)") {
    b.start(9, "w");
    CHECK(wire::decode(b.frame()) == wire::message(wire::results_msg{.job = 9, .worker = "w"}));
    wire::results_msg big{.job = 9, .worker = "w"};
    for (std::uint64_t id = 0; id < 70'000; ++id) {
      big.results.push_back(wire::result{.id = id, .output = std::to_string(id)});
      b.add(big.results.back());
    }
    CHECK(wire::decode(b.frame()) == wire::message(big));
  }
}

TEST_CASE(
    "wire's decode_results gives views of what decode gives, refuses other types, and keeps nothing of a bad frame") {
  wire::results_view batch;
  for (const auto& m : sample_messages()) {
    const auto frame = wire::encode(m);
    const auto* sample = std::get_if<wire::results_msg>(&m);
    if (!sample) {
      CHECK_THROWS_WITH_AS(wire::decode_results(frame, batch), doctest::Contains("where type 9 was expected"),
                           protocol_error);
      continue;
    }
    wire::decode_results(frame, batch);
    CHECK(batch.job == sample->job);
    CHECK(batch.worker == sample->worker);
    REQUIRE(batch.results.size() == sample->results.size());
    for (std::size_t i = 0; i < batch.results.size(); ++i) {
      const auto& got = batch.results[i];
      const auto want = wire::view_of(sample->results[i]);
      CHECK(got.id == want.id);
      CHECK(got.attempt == want.attempt);
      CHECK(got.status == want.status);
      CHECK(got.code == want.code);
      CHECK(got.output == want.output);
      CHECK(got.error == want.error);
      CHECK(got.runtime_us == want.runtime_us);
      CHECK(got.retries_left == want.retries_left);
      CHECK(got.payload == want.payload);
      CHECK(got.final() == sample->results[i].final());
      // A view into the frame, not a copy.
      CHECK((got.output.empty() ||
             (got.output.data() >= frame.data() && got.output.data() < frame.data() + frame.size())));
    }
    // Every truncation is refused, and leaves no result behind from the frame.
    for (std::size_t len = 0; len < frame.size(); ++len) {
      wire::decode_results(frame, batch);
      CHECK_THROWS_AS(wire::decode_results(std::string_view(frame).substr(0, len), batch), protocol_error);
      CHECK(batch.results.empty());
    }
  }
}

TEST_CASE(
    "wire's decode_tasks gives views of what decode gives, refuses other types, and keeps nothing of a bad frame") {
  wire::tasks_view batch;
  for (const auto& m : sample_messages()) {
    const auto frame = wire::encode(m);
    CHECK(wire::peek_type(frame) == static_cast<wire::msg_type>(m.index() + 1)); // variant order is type order
    const auto* sample = std::get_if<wire::tasks_msg>(&m);
    if (!sample) {
      CHECK_THROWS_WITH_AS(wire::decode_tasks(frame, batch), doctest::Contains("where type 3 was expected"),
                           protocol_error);
      continue;
    }
    wire::decode_tasks(frame, batch);
    CHECK(batch.job == sample->job);
    CHECK(batch.seq == sample->seq);
    CHECK(batch.terminator == sample->terminator);
    CHECK(batch.sink_endpoint == sample->sink_endpoint);
    REQUIRE(batch.tasks.size() == sample->tasks.size());
    for (std::size_t i = 0; i < batch.tasks.size(); ++i) {
      CHECK(batch.tasks[i].id == sample->tasks[i].id);
      CHECK(batch.tasks[i].attempt == sample->tasks[i].attempt);
      CHECK(batch.tasks[i].payload == sample->tasks[i].payload);
      CHECK(batch.tasks[i].retries_left == sample->tasks[i].retries_left);
    }
    for (std::size_t len = 0; len < frame.size(); ++len) {
      wire::decode_tasks(frame, batch);
      CHECK_THROWS_AS(wire::decode_tasks(std::string_view(frame).substr(0, len), batch), protocol_error);
      CHECK(batch.tasks.empty());
    }
  }
  CHECK_FALSE(wire::peek_type("").has_value());
  CHECK_FALSE(wire::peek_type(from_hex("97 01 03 01 01 c4010a a0 90")).has_value()); // another version
  CHECK_FALSE(wire::peek_type(from_hex("97 03 03 01 01 c4010a a0 90")).has_value()); // the previous version
  CHECK_FALSE(wire::peek_type(from_hex("93 04 0f 01")).has_value());                 // no such type
  CHECK_FALSE(wire::peek_type(from_hex("96 04 03 01 01 c4010a a0")).has_value());    // fewer fields than tasks have
  // The envelope only: a body of nils is still named a tasks message (and refused by decode_tasks).
  CHECK(wire::peek_type(from_hex("98 04 03 01 c0 c0 c0 c0 c0")) == wire::msg_type::tasks);
  CHECK_THROWS_AS(wire::decode_tasks(from_hex("98 04 03 01 c0 c0 c0 c0 c0"), batch), protocol_error);
}

TEST_CASE("wire encodes every integer and length boundary byte for byte as this layout says") {
  // Pins each field's msgpack type (uint, int, str or bin) at every size boundary of its encoding,
  // as the encoder's buffered packing must keep them.
  const std::vector<std::uint64_t> unsigned_values = {0,     1,     127,         128,        255,        256,
                                                      65535, 65536, 0xffffffffu, 1ull << 32, ~0ull >> 1, ~0ull};
  const std::vector<std::int32_t> codes = {0,
                                           1,
                                           127,
                                           128,
                                           65536,
                                           -1,
                                           -32,
                                           -33,
                                           -128,
                                           -129,
                                           -32768,
                                           -32769,
                                           std::numeric_limits<std::int32_t>::min(),
                                           std::numeric_limits<std::int32_t>::max()};
  const std::vector<std::size_t> lengths = {0, 1, 15, 31, 32, 255, 256, 65535, 65536, 70000};
  // Every pairing of an integer and a code, with each length in each string field along the way.
  for (std::size_t i = 0; i < unsigned_values.size() * codes.size(); ++i) {
    const auto v = unsigned_values[i % unsigned_values.size()];
    const auto code = codes[i / unsigned_values.size()];
    {
      CAPTURE(v);
      CAPTURE(code);
      const auto out = std::string(lengths[i % lengths.size()], 'o');
      const auto err = std::string(lengths[(i + 3) % lengths.size()], 'e');
      const auto name = std::string(lengths[(i + 7) % lengths.size()], 'n');
      const wire::result r{.id = v,
                           .attempt = static_cast<std::uint32_t>(v),
                           .status = wire::task_status::failed,
                           .code = code,
                           .output = out,
                           .error = err,
                           .runtime_us = v,
                           .retries_left = 7,
                           .payload = name,
                           .start_us = v,
                           .payload_bytes = v,
                           .command = out};
      // Details (the last three) travel only when one of them is set.
      const bool details = v != 0 || !out.empty();
      const auto expected = packed([&](packer& p) {
        p.pack_array(5);
        p.pack(wire::protocol_version);
        p.pack(static_cast<std::uint8_t>(9));
        p.pack(v);
        p.pack(name);
        p.pack_array(1);
        p.pack_array(details ? 12 : 9);
        p.pack(v);
        p.pack(static_cast<std::uint32_t>(v));
        p.pack(static_cast<std::uint8_t>(1));
        p.pack(code);
        for (const auto* s : {&out, &err}) {
          p.pack_bin(static_cast<std::uint32_t>(s->size()));
          p.pack_bin_body(s->data(), static_cast<std::uint32_t>(s->size()));
        }
        p.pack(v);
        p.pack(static_cast<std::uint32_t>(7));
        p.pack_bin(static_cast<std::uint32_t>(name.size()));
        p.pack_bin_body(name.data(), static_cast<std::uint32_t>(name.size()));
        if (!details) return;
        p.pack(v);
        p.pack(v);
        p.pack_bin(static_cast<std::uint32_t>(out.size()));
        p.pack_bin_body(out.data(), static_cast<std::uint32_t>(out.size()));
      });
      CHECK(to_hex(wire::encode(wire::results_msg{.job = v, .worker = name, .results = {r}})) == to_hex(expected));
    }
    // A signed 64-bit field (a job's total) beside a str (its input's fingerprint) of each length,
    // and list lengths past array16.
    const auto total = static_cast<std::int64_t>(v >> 1) * (v % 2 == 0 ? 1 : -1);
    const auto fingerprint = std::string(lengths[(i + 5) % lengths.size()], 'f');
    CHECK(to_hex(wire::encode(wire::job_info{.job = v, .total = total, .fingerprint = fingerprint})) ==
          to_hex(packed([&](packer& p) {
            p.pack_array(8);
            p.pack(wire::protocol_version);
            p.pack(static_cast<std::uint8_t>(5));
            p.pack(v);
            p.pack(total);
            p.pack(fingerprint);
            p.pack(0); // workers, slots, requeued
            p.pack(0);
            p.pack(0);
          })));
  }
  for (std::size_t n : {15u, 16u, 65535u, 65536u}) {
    // A claim (with its fingerprint) every other time.
    const bool claim = n % 2 == 0;
    const auto fingerprint = claim ? std::string(n, 'f') : std::string();
    wire::sink_status st{.job = 1,
                         .written_below = 2,
                         .done_below = 65536,
                         .held_bytes = 1ull << 32,
                         .claim = claim,
                         .fingerprint = fingerprint};
    for (std::size_t i = 0; i < n; ++i) st.done.push_back({.first = 2 * i, .count = 1});
    CHECK(wire::encode(st) == packed([&](packer& p) {
            p.pack_array(14);
            p.pack(wire::protocol_version);
            p.pack(static_cast<std::uint8_t>(6));
            p.pack(1);
            p.pack(2);
            p.pack(65536);
            p.pack(1ull << 32);
            p.pack_false();
            p.pack_array(0);
            p.pack_array(static_cast<std::uint32_t>(n));
            for (std::size_t i = 0; i < n; ++i) {
              p.pack_array(2);
              p.pack(static_cast<std::uint64_t>(2 * i));
              p.pack(1);
            }
            p.pack(claim);
            p.pack(fingerprint);
            p.pack(false); // details
            p.pack(0);     // final_results
            p.pack(0);     // failed
          }));
  }
}

TEST_CASE("wire writes every integer on either side of each msgpack width boundary as msgpack-c does") {
  // The encoder writes msgpack itself (lib/src/protocol/msgpack_writer.hpp): each value must take the
  // encoding msgpack-c's packer picks, as uint (a job) and as int (a job_info's total, which the
  // encoder writes whatever its value; the decoder is the one that refuses totals below -1).
  std::vector<std::uint64_t> magnitudes = {~std::uint64_t{0}};
  for (std::uint64_t edge :
       {std::uint64_t{0}, std::uint64_t{32}, std::uint64_t{128}, std::uint64_t{256}, std::uint64_t{1} << 15,
        std::uint64_t{1} << 16, std::uint64_t{1} << 31, std::uint64_t{1} << 32, std::uint64_t{1} << 63}) {
    for (std::uint64_t m : {edge - 1, edge, edge + 1}) magnitudes.push_back(m);
  }
  for (const auto m : magnitudes) {
    CAPTURE(m);
    CHECK(to_hex(wire::encode(wire::complete_ack{.job = m})) == to_hex(packed([&](packer& p) {
            p.pack_array(3);
            p.pack(wire::protocol_version);
            p.pack(8);
            p.pack(m);
          })));
    for (const auto total : {static_cast<std::int64_t>(m), static_cast<std::int64_t>(0 - m)}) {
      CAPTURE(total);
      CHECK(to_hex(wire::encode(wire::job_info{.job = 1, .total = total})) == to_hex(packed([&](packer& p) {
              p.pack_array(8);
              p.pack(wire::protocol_version);
              p.pack(5);
              p.pack(1);
              p.pack(total);
              p.pack(std::string());
              p.pack(0);
              p.pack(0);
              p.pack(0);
            })));
    }
  }
}

TEST_CASE("wire's tasks_builder makes the frame encode() would, one task at a time, and can be reused") {
  wire::tasks_builder b;
  for (const auto& m : sample_messages()) {
    const auto* sample = std::get_if<wire::tasks_msg>(&m);
    if (!sample) continue;
    for (int reuse = 0; reuse < 2; ++reuse) {
      b.start(sample->job, sample->seq, sample->terminator, sample->sink_endpoint, sample->details);
      for (const auto& t : sample->tasks) {
        b.add(wire::task_view{.id = t.id, .attempt = t.attempt, .payload = t.payload, .retries_left = t.retries_left});
      }
      CHECK(b.job() == sample->job);
      CHECK(b.count() == sample->tasks.size());
      CHECK(wire::decode(b.frame()) == m);
    }
  }
  b.start(5, 9, "\n", "ipc://s");
  CHECK(b.size() == b.frame().size());
  CHECK(wire::decode(b.frame()) ==
        wire::message(wire::tasks_msg{.job = 5, .seq = 9, .terminator = "\n", .sink_endpoint = "ipc://s"}));
}

TEST_CASE("wire round-trips every task status") {
  for (std::uint8_t s = 0; s <= static_cast<std::uint8_t>(wire::task_status::too_large); ++s) {
    CAPTURE(s);
    const auto status = static_cast<wire::task_status>(s);
    wire::message m =
        wire::results_msg{.job = 1,
                          .worker = "w",
                          .results = {{.id = 1, .status = status, .code = -1, .retries_left = 2, .payload = "p"}}};
    CHECK(wire::decode(wire::encode(m)) == m);
    wire::message a = wire::sink_status{.job = 1, .acks = {{.id = 2, .attempt = 1, .status = status}}};
    CHECK(wire::decode(wire::encode(a)) == a);
  }
}

// Golden bytes of protocol version 4. Regenerated by hand from each message's layout when the
// version changed (never by pasting what the encoder printed); the worker_status one is spelled
// out against the msgpack spec below.
TEST_CASE("wire encodes a worker_status of protocol version 4 as these bytes") {
  const wire::message m = wire::worker_status{.job = 7,
                                              .name = "h:1",
                                              .slots = 4,
                                              .free = 2,
                                              .next_seq = 300,
                                              .completed_job = 70000,
                                              .busy = 5,
                                              .lost = {{.first = 3, .count = 2}, {.first = 200, .count = 1}},
                                              .done = 128,
                                              .failed = 3};
  // [version, type, job, name (str), slots, free, next_seq, completed_job, busy, lost [[first, count], ...],
  //  done, failed]
  // 9c: fixarray (1001xxxx) of 12. 04, 01, 07: positive fixints (0xxxxxxx): version 4, type 1, job 7.
  // a3 683a31: fixstr (101xxxxx) of 3 bytes, "h:1". 04, 02: slots, free. cd 012c: uint16, 300 (too
  // big for a fixint, 255 for uint8). ce 00011170: uint32, 70000 (past 65535). 05: busy.
  // 92: fixarray of 2 runs; 92 03 02: [3, 2]; 92 ccc8 01: [200 as uint8 (past 127), 1]. cc80: done 128. 03: failed.
  const std::string golden = "9c 04 01 07 a3683a31 04 02 cd012c ce00011170 05 92 920302 92ccc801 cc80 03";
  CHECK(to_hex(wire::encode(m)) == to_hex(from_hex(golden)));
  CHECK(wire::decode(from_hex(golden)) == m);
}

TEST_CASE("wire encodes a tasks_msg of protocol version 4 as these bytes") {
  const wire::message m = wire::tasks_msg{.job = 2,
                                          .seq = 256,
                                          .terminator = "\n",
                                          .sink_endpoint = "tcp://h:1",
                                          .details = true,
                                          .tasks = {{.id = 0, .attempt = 1, .payload = "ab", .retries_left = 2},
                                                    {.id = 200, .attempt = 2, .payload = "", .retries_left = 300}}};
  // [version, type, job, seq, terminator (bin), sink endpoint (str), details (c3: true),
  //  [[id, attempt, payload (bin), retries_left], ...]]
  const std::string golden =
      "98 04 03 02 cd0100 c4010a a9 7463703a2f2f683a31 c3 92"
      " 94 00 01 c4026162 02"
      " 94 ccc8 02 c400 cd012c";
  CHECK(to_hex(wire::encode(m)) == to_hex(from_hex(golden)));
  CHECK(wire::decode(from_hex(golden)) == m);
  // The builder's list header is always an array32 (dd), patched when the frame is taken.
  wire::tasks_builder b;
  b.start(2, 256, "\n", "tcp://h:1", true);
  for (const auto& t : std::get<wire::tasks_msg>(m).tasks) {
    b.add(wire::task_view{.id = t.id, .attempt = t.attempt, .payload = t.payload, .retries_left = t.retries_left});
  }
  CHECK(to_hex(b.frame()) == to_hex(from_hex("98 04 03 02 cd0100 c4010a a9 7463703a2f2f683a31 c3 dd00000002"
                                             " 94 00 01 c4026162 02"
                                             " 94 ccc8 02 c400 cd012c")));
}

TEST_CASE("wire encodes a results_msg of protocol version 4 as these bytes") {
  const wire::message m = wire::results_msg{.job = 3,
                                            .worker = "w",
                                            .results = {{.id = 1,
                                                         .attempt = 1,
                                                         .status = wire::task_status::failed,
                                                         .code = -200,
                                                         .output = "x\n",
                                                         .error = "",
                                                         .runtime_us = 1000,
                                                         .retries_left = 1,
                                                         .payload = "in",
                                                         .start_us = 1796620523972000,
                                                         .payload_bytes = 2,
                                                         .command = "sh in"},
                                                        {.id = 70000,
                                                         .attempt = 3,
                                                         .status = wire::task_status::signalled,
                                                         .code = 9,
                                                         .output = "",
                                                         .error = "e",
                                                         .runtime_us = 5000000000,
                                                         .retries_left = 70000,
                                                         .payload = ""},
                                                        {.id = 2,
                                                         .attempt = 1,
                                                         .status = wire::task_status::too_large,
                                                         .code = 0,
                                                         .output = "",
                                                         .error = "",
                                                         .runtime_us = 0,
                                                         .retries_left = 0,
                                                         .payload = ""}}};
  // [version, type, job, worker (str),
  //  [[id, attempt, status, code, output (bin), error (bin), runtime_us, retries_left, payload (bin),
  //    start_us, payload_bytes, command (bin)], ...]]: the first with details (start_us a uint64:
  //    cf 000662045020a5a0), the others without: 9 fields (99), the details left out.
  const std::string golden =
      "95 04 09 03 a177 93"
      " 9c 01 01 01 d1ff38 c402780a c400 cd03e8 01 c402696e cf000662045020a5a0 02 c405736820696e"
      " 99 ce00011170 03 02 09 c400 c40165 cf000000012a05f200 ce00011170 c400"
      " 99 02 01 06 00 c400 c400 00 00 c400";
  CHECK(to_hex(wire::encode(m)) == to_hex(from_hex(golden)));
  CHECK(wire::decode(from_hex(golden)) == m);
  // The details written out as zeros and empty read back the same as left out.
  const std::string spelled_out =
      "95 04 09 03 a177 91"
      " 9c 02 01 06 00 c400 c400 00 00 c400 00 00 c400";
  CHECK(wire::decode(from_hex(spelled_out)) ==
        wire::message(wire::results_msg{
            .job = 3, .worker = "w", .results = {{.id = 2, .status = wire::task_status::too_large}}}));
  // A reused batch of views forgets the details of its last use.
  // (The views point into the frames: each frame lives as long as its views are read.)
  wire::results_view batch;
  const auto with_details = from_hex(golden);
  wire::decode_results(with_details, batch);
  REQUIRE(batch.results.size() == 3);
  CHECK(batch.results[0].command == "sh in");
  const auto without = from_hex("95 04 09 03 a177 91 99 02 01 06 00 c400 c400 00 00 c400");
  wire::decode_results(without, batch);
  REQUIRE(batch.results.size() == 1);
  CHECK(batch.results[0].start_us == 0);
  CHECK(batch.results[0].command.empty());
}

TEST_CASE("wire encodes the small messages of protocol version 4 as these bytes") {
  CHECK(to_hex(wire::encode(wire::worker_bye{.job = 1})) == "93040201");
  // [version, type, job, complete, sent_seq, resolved_below]
  CHECK(to_hex(wire::encode(wire::vent_status{.job = 1, .complete = true, .sent_seq = 300, .resolved_below = 5})) ==
        "97040401c3cd012c05c2");
  CHECK(to_hex(wire::encode(wire::vent_status{.job = 1, .complete = false})) == "97040401c20000c2");
  // [version, type, job, total, fingerprint (str)]: an empty fingerprint is the fixstr a0.
  CHECK(to_hex(wire::encode(wire::job_info{.job = 1, .total = -1})) == "98040501ffa0000000");
  CHECK(to_hex(wire::encode(wire::job_info{.job = 1, .total = 128})) == "98040501cc80a0000000");
  CHECK(to_hex(wire::encode(wire::complete{.job = 1, .total = 5, .failed = 0})) == "950407010500");
  CHECK(to_hex(wire::encode(wire::complete_ack{.job = 300})) == "930408cd012c");
  CHECK(to_hex(wire::encode(wire::abort_msg{.job = 1, .reason = "x"})) == "94040a01a178");
  CHECK(to_hex(wire::encode(wire::wrong_version{.job = 0})) == "93040b00");
  // [version, type, job, written_below, done_below, held_bytes, held_back, acks [[id, attempt,
  //  status], ...], done [[first, count], ...], claim, fingerprint (str), details]: no claim is
  //  c2 a0, no joblog c2.
  CHECK(to_hex(wire::encode(
            wire::sink_status{.job = 4, .written_below = 0, .acks = {}, .done = {{.first = 3, .count = 200}}})) ==
        "9e04060400"
        "0000c2"
        "90"
        "91"
        "9203ccc8"
        "c2a0c2"
        "0000");
  CHECK(to_hex(wire::encode(
            wire::sink_status{.job = 4,
                              .written_below = 2,
                              .done_below = 2,
                              .held_bytes = 70000,
                              .held_back = true,
                              .acks = {{.id = 0, .attempt = 1, .status = wire::task_status::ok},
                                       {.id = 1, .attempt = 2, .status = wire::task_status::timed_out},
                                       {.id = 2, .attempt = 1, .status = wire::task_status::too_large}}})) ==
        "9e04060402"
        "02ce00011170c3"
        "93"
        "93000100"
        "93010204"
        "93020106"
        "90"
        "c2a0c2"
        "0000");
}

TEST_CASE("wire encodes a job_info's fingerprint and a sink_status's claim of protocol version 4 as these bytes") {
  // A fingerprint of 13 bytes, a fixstr: ad (101xxxxx, 13), then "range 1:100:1".
  const std::string range_fp = "range 1:100:1";
  const std::string range_fp_hex = "ad 72616e676520313a3130303a31";
  // One of 66 bytes, past a fixstr's 31: d9 42, a str8 of 0x42 bytes, then the text.
  const std::string file_fp = "file size=3 mtime=1.5 head=af63bd4c8601b7df sep=0a lines=1 block=0";
  const std::string file_fp_hex =
      "d9 42"
      " 66696c65 20 73697a653d33 20 6d74696d653d312e35 20 686561643d61663633626434633836303162376466"
      " 20 7365703d3061 20 6c696e65733d31 20 626c6f636b3d30";
  REQUIRE(from_hex(range_fp_hex).substr(1) == range_fp);
  REQUIRE(from_hex(file_fp_hex).substr(2) == file_fp);

  SUBCASE("job_info") {
    // 98: fixarray of 8. 04 05 01: version 4, type 5, job 1. 03: total 3. Then the fingerprint,
    // and 3 workers with 300 slots together (cd012c: uint16), 70000 tasks requeued (ce00011170: uint32).
    const wire::message small =
        wire::job_info{.job = 1, .total = 3, .fingerprint = range_fp, .workers = 3, .slots = 300, .requeued = 70000};
    const std::string small_golden = "98 04 05 01 03 " + range_fp_hex + " 03 cd012c ce00011170";
    CHECK(to_hex(wire::encode(small)) == to_hex(from_hex(small_golden)));
    CHECK(wire::decode(from_hex(small_golden)) == small);
    // ff: total -1 (a negative fixint: the input is still being read), then the str8 fingerprint.
    const wire::message big = wire::job_info{.job = 2, .total = -1, .fingerprint = file_fp};
    const std::string big_golden = "98 04 05 02 ff " + file_fp_hex + " 00 00 00";
    CHECK(to_hex(wire::encode(big)) == to_hex(from_hex(big_golden)));
    CHECK(wire::decode(from_hex(big_golden)) == big);
  }
  SUBCASE("sink_status with a claim") {
    // [version, type, job, written_below, done_below, held_bytes, held_back, acks, done, claim, fingerprint,
    //  details]
    // 9c: fixarray of 12. 04 06 09: version 4, type 6, job 9. 00 05 00 c2: written_below 0,
    // done_below 5, held_bytes 0, held_back false. 90: no acks. 91 92 07 03: done [[7, 3]].
    // c3: claim true. Then the fingerprint, and c3: details asked (the sink keeps a joblog).
    const wire::sink_status small{.job = 9,
                                  .done_below = 5,
                                  .done = {{.first = 7, .count = 3}},
                                  .claim = true,
                                  .fingerprint = range_fp,
                                  .details = true};
    const std::string small_golden = "9e 04 06 09 00 05 00 c2 90 91 920703 c3 " + range_fp_hex + " c3 00 00";
    CHECK(to_hex(wire::encode(small)) == to_hex(from_hex(small_golden)));
    CHECK(wire::decode(from_hex(small_golden)) == wire::message(small));
    // cd 012c: job 300 (uint16). 00 ccc8 00 c2: written_below 0, done_below 200 (uint8), held_bytes 0,
    // held_back false. 90 90: no acks, no runs done beyond done_below. c3: claim true. Then the str8,
    // and c2: no details.
    const wire::sink_status big{.job = 300, .done_below = 200, .claim = true, .fingerprint = file_fp};
    const std::string big_golden = "9e 04 06 cd012c 00 ccc8 00 c2 90 90 c3 " + file_fp_hex + " c2 00 00";
    CHECK(to_hex(wire::encode(big)) == to_hex(from_hex(big_golden)));
    CHECK(wire::decode(from_hex(big_golden)) == wire::message(big));
    // The sink's own overload of encode_to writes the same bytes.
    std::string out;
    wire::encode_to(out, small);
    CHECK(to_hex(out) == to_hex(from_hex(small_golden)));
    wire::encode_to(out, big);
    CHECK(to_hex(out) == to_hex(from_hex(big_golden)));
  }
}

TEST_CASE("wire decodes strings where it encodes binaries, and binaries where it encodes strings") {
  const auto frame = packed([](packer& p) {
    p.pack_array(8);
    p.pack(wire::protocol_version);
    p.pack(3);
    p.pack(2);
    p.pack(5);
    p.pack(std::string("\n")); // str instead of bin
    pack_bin(p, "tcp://h:1");  // bin instead of str
    p.pack(false);
    p.pack_array(1);
    p.pack_array(4);
    p.pack(0);
    p.pack(1);
    p.pack(std::string("payload")); // str instead of bin
    p.pack(2);
  });
  const wire::message expected =
      wire::tasks_msg{.job = 2,
                      .seq = 5,
                      .terminator = "\n",
                      .sink_endpoint = "tcp://h:1",
                      .tasks = {{.id = 0, .attempt = 1, .payload = "payload", .retries_left = 2}}};
  CHECK(wire::decode(frame) == expected);

  const auto results = packed([](packer& p) {
    p.pack_array(5);
    p.pack(wire::protocol_version);
    p.pack(9);
    p.pack(3);
    pack_bin(p, "w"); // bin instead of str
    p.pack_array(1);
    p.pack_array(12);
    p.pack(1);
    p.pack(2);
    p.pack(1);
    p.pack(3);
    p.pack(std::string("out")); // str instead of bin
    p.pack(std::string("err")); // str instead of bin
    p.pack(10);
    p.pack(4);
    p.pack(std::string("in")); // str instead of bin
    p.pack(0);
    p.pack(0);
    p.pack(std::string("cmd")); // str instead of bin
  });
  const wire::message expected_results = wire::results_msg{.job = 3,
                                                           .worker = "w",
                                                           .results = {{.id = 1,
                                                                        .attempt = 2,
                                                                        .status = wire::task_status::failed,
                                                                        .code = 3,
                                                                        .output = "out",
                                                                        .error = "err",
                                                                        .runtime_us = 10,
                                                                        .retries_left = 4,
                                                                        .payload = "in",
                                                                        .command = "cmd"}}};
  CHECK(wire::decode(results) == expected_results);
}

TEST_CASE("wire accepts trailing fields it does not know, at every level") {
  SUBCASE("in the envelope of a worker_status") {
    const auto frame = packed([](packer& p) {
      p.pack_array(14);
      p.pack(wire::protocol_version);
      p.pack(1);
      p.pack(7);
      p.pack(std::string("h:1"));
      p.pack(4);
      p.pack(2);
      p.pack(1);
      p.pack(0);
      p.pack(0);
      p.pack_array(0);
      p.pack(0);
      p.pack(0);
      p.pack(std::string("a field from the future"));
      p.pack_map(1);
      p.pack(std::string("k"));
      p.pack_array(2);
      p.pack(1);
      p.pack_nil();
    });
    const wire::message expected =
        wire::worker_status{.job = 7, .name = "h:1", .slots = 4, .free = 2, .next_seq = 1, .completed_job = 0};
    CHECK(wire::decode(frame) == expected);
  }
  SUBCASE("in a message with no body") {
    for (int type : {2, 8, 11}) {
      CAPTURE(type);
      const auto frame = packed([&](packer& p) {
        p.pack_array(4);
        p.pack(wire::protocol_version);
        p.pack(type);
        p.pack(12);
        p.pack_true();
      });
      CHECK(wire::decode(frame).index() == static_cast<std::size_t>(type - 1));
      CHECK(wire::encode(wire::decode(frame)) == frame.substr(1, 3).insert(0, 1, '\x93'));
    }
  }
  SUBCASE("in each lost run of a worker_status") {
    const auto frame = packed([](packer& p) {
      p.pack_array(12);
      p.pack(wire::protocol_version);
      p.pack(1);
      p.pack(7);
      p.pack(std::string("h:1"));
      p.pack(4);
      p.pack(2);
      p.pack(9);
      p.pack(0);
      p.pack(0);
      p.pack_array(1);
      p.pack_array(3);
      p.pack(3);
      p.pack(2);
      p.pack_nil();
      p.pack(0);
      p.pack(0);
    });
    const wire::message expected = wire::worker_status{
        .job = 7, .name = "h:1", .slots = 4, .free = 2, .next_seq = 9, .lost = {{.first = 3, .count = 2}}};
    CHECK(wire::decode(frame) == expected);
  }
  SUBCASE("in each task of a tasks_msg") {
    const auto frame = packed([](packer& p) {
      p.pack_array(9);
      p.pack(wire::protocol_version);
      p.pack(3);
      p.pack(2);
      p.pack(1);
      pack_bin(p, "\n");
      p.pack(std::string("tcp://h:1"));
      p.pack(false);
      p.pack_array(1);
      p.pack_array(6);
      p.pack(9);
      p.pack(1);
      pack_bin(p, "ab");
      p.pack(4);
      p.pack(3.5);
      p.pack(std::string("priority"));
      p.pack(-1);
    });
    const wire::message expected =
        wire::tasks_msg{.job = 2,
                        .seq = 1,
                        .terminator = "\n",
                        .sink_endpoint = "tcp://h:1",
                        .tasks = {{.id = 9, .attempt = 1, .payload = "ab", .retries_left = 4}}};
    CHECK(wire::decode(frame) == expected);
    wire::tasks_view batch;
    wire::decode_tasks(frame, batch);
    REQUIRE(batch.tasks.size() == 1);
    CHECK(batch.tasks[0].payload == "ab");
    CHECK(batch.tasks[0].retries_left == 4);
  }
  SUBCASE("in each ack of a sink_status") {
    const auto frame = packed([](packer& p) {
      p.pack_array(14);
      p.pack(wire::protocol_version);
      p.pack(6);
      p.pack(4);
      p.pack(2);
      p.pack(1);
      p.pack(0);
      p.pack_false();
      p.pack_array(1);
      p.pack_array(4);
      p.pack(1);
      p.pack(2);
      p.pack(4);
      p.pack(std::string("extra"));
      p.pack_array(1);
      p.pack_array(3);
      p.pack(10);
      p.pack(5);
      p.pack(std::string("extra"));
      p.pack_false();
      p.pack(std::string());
      p.pack_false();
      p.pack(0);
      p.pack(0);
    });
    const wire::message expected =
        wire::sink_status{.job = 4,
                          .written_below = 2,
                          .done_below = 1,
                          .acks = {{.id = 1, .attempt = 2, .status = wire::task_status::timed_out}},
                          .done = {{.first = 10, .count = 5}}};
    CHECK(wire::decode(frame) == expected);
  }
  SUBCASE("in each result of a results_msg") {
    const auto frame = packed([](packer& p) {
      p.pack_array(6);
      p.pack(wire::protocol_version);
      p.pack(9);
      p.pack(3);
      p.pack(std::string("w"));
      p.pack_array(1);
      p.pack_array(13);
      p.pack(1);
      p.pack(1);
      p.pack(1);
      p.pack(-2);
      pack_bin(p, "x\n");
      pack_bin(p, "");
      p.pack(1000);
      p.pack(5);
      pack_bin(p, "ab");
      p.pack(0);
      p.pack(0);
      pack_bin(p, "");
      p.pack(std::string("peak rss"));
      p.pack(std::string("a field from the future"));
    });
    const wire::message expected = wire::results_msg{.job = 3,
                                                     .worker = "w",
                                                     .results = {{.id = 1,
                                                                  .attempt = 1,
                                                                  .status = wire::task_status::failed,
                                                                  .code = -2,
                                                                  .output = "x\n",
                                                                  .error = "",
                                                                  .runtime_us = 1000,
                                                                  .retries_left = 5,
                                                                  .payload = "ab"}}};
    CHECK(wire::decode(frame) == expected);
    wire::results_view batch;
    wire::decode_results(frame, batch);
    REQUIRE(batch.results.size() == 1);
    CHECK(batch.results[0].payload == "ab");
  }
}

TEST_CASE("wire skips a trailing field of every msgpack kind, as msgpack-c packs it") {
  // The decoder reads msgpack itself (no object tree): whatever a newer peer may append, in any
  // encoding msgpack-c chooses, must be skipped exactly, leaving the message intact.
  const std::vector<std::pair<const char*, std::function<void(packer&)>>> kinds = {
      {"nil", [](packer& p) { p.pack_nil(); }},
      {"true", [](packer& p) { p.pack_true(); }},
      {"fixint", [](packer& p) { p.pack(5); }},
      {"negative fixint", [](packer& p) { p.pack(-5); }},
      {"uint8..64",
       [](packer& p) { p.pack_uint8(200), p.pack_uint16(60000), p.pack_uint32(1u << 31), p.pack_uint64(1ull << 63); }},
      {"int8..64",
       [](packer& p) {
         p.pack_int8(-100), p.pack_int16(-30000), p.pack_int32(-(1 << 30)), p.pack_int64(-(1ll << 62));
       }},
      {"float32", [](packer& p) { p.pack_float(1.5f); }},
      {"float64", [](packer& p) { p.pack_double(2.5); }},
      {"str8..32",
       [](packer& p) { p.pack(std::string(40, 's')), p.pack(std::string(300, 's')), p.pack(std::string(70000, 's')); }},
      {"bin8..32",
       [](packer& p) {
         for (std::uint32_t n : {3u, 300u, 70000u}) p.pack_bin(n), p.pack_bin_body(std::string(n, 'b').data(), n);
       }},
      {"fixext1..16",
       [](packer& p) {
         for (std::uint32_t n : {1u, 2u, 4u, 8u, 16u}) p.pack_ext(n, 7), p.pack_ext_body(std::string(n, 'e').data(), n);
       }},
      {"ext8..32",
       [](packer& p) {
         for (std::uint32_t n : {3u, 300u, 70000u}) p.pack_ext(n, 7), p.pack_ext_body(std::string(n, 'e').data(), n);
       }},
      {"array16, nested",
       [](packer& p) {
         p.pack_array(20);
         for (int i = 0; i < 20; ++i) p.pack_array(1), p.pack(i);
       }},
      {"map16, nested",
       [](packer& p) {
         p.pack_map(20);
         for (int i = 0; i < 20; ++i) p.pack(i), p.pack_map(1), p.pack_nil(), p.pack_nil();
       }},
  };
  for (const auto& [name, pack_extra] : kinds) {
    CAPTURE(name);
    // A job_info [4, 5, job, total, fingerprint, workers, slots, requeued] followed by every value
    // pack_extra writes, counted by msgpack-c.
    msgpack::sbuffer extra;
    packer xp(extra);
    pack_extra(xp);
    std::size_t count = 0;
    for (std::size_t off = 0; off < extra.size(); ++count) (void)msgpack::unpack(extra.data(), extra.size(), off);
    const auto exact = packed([&](packer& p) {
                         p.pack_array(static_cast<std::uint32_t>(8 + count));
                         p.pack(wire::protocol_version);
                         p.pack(5);
                         p.pack(7);
                         p.pack(-1);
                         p.pack(std::string());
                         p.pack(0);
                         p.pack(0);
                         p.pack(0);
                       }) +
                       std::string(extra.data(), extra.size());
    const wire::message expected = wire::job_info{.job = 7, .total = -1};
    CHECK(wire::decode(exact) == expected);
  }
}

TEST_CASE("wire refuses 0xc1, the byte msgpack never uses, as a trailing field") {
  CHECK_THROWS_WITH_AS(wire::decode(from_hex("99040501ffa0000000 c1")), doctest::Contains("0xc1"), protocol_error);
}

TEST_CASE("wire refuses every truncated prefix of a valid frame") {
  for (const auto& frame : sample_frames()) {
    for (std::size_t len = 0; len < frame.size(); ++len) {
      CAPTURE(to_hex(frame.substr(0, 16)));
      CAPTURE(len);
      CHECK_THROWS_AS(wire::decode(std::string_view(frame).substr(0, len)), protocol_error);
    }
  }
}

TEST_CASE("wire refuses an empty frame") {
  CHECK_THROWS_WITH_AS(wire::decode(""), "malformed message: empty frame", protocol_error);
}

TEST_CASE("wire decodes or refuses random garbage, and never fails any other way") {
  std::mt19937_64 rng(20240601);
  auto byte = [&rng] { return static_cast<char>(rng() & 0xff); };
  std::size_t refused = 0;
  std::size_t decoded = 0;
  auto attempt = [&](const std::string& frame) {
    CAPTURE(to_hex(frame.substr(0, 64)));
    try {
      auto m = wire::decode(frame);
      // Whatever decodes must survive another round trip unchanged.
      CHECK(wire::decode(wire::encode(m)) == m);
      ++decoded;
    } catch (const protocol_error&) {
      ++refused;
    }
  };

  SUBCASE("random bytes") {
    for (int i = 0; i < 5000; ++i) {
      std::string frame(static_cast<std::size_t>(rng() % 64), '\0');
      for (auto& c : frame) c = byte();
      attempt(frame);
    }
    CHECK(refused + decoded == 5000);
    CHECK(refused > 4900);
  }
  SUBCASE("random bytes behind a valid envelope") {
    // Starts with fixarray (of up to 11, a sink_status's count), version 3, a valid type: gets past the
    // header into the body decoders.
    for (int i = 0; i < 5000; ++i) {
      std::string frame;
      frame.push_back(static_cast<char>(0x90 | (3 + rng() % 9)));
      frame.push_back('\x03');
      frame.push_back(static_cast<char>(1 + rng() % 13)); // every type, and a few unknown ones
      frame.push_back(static_cast<char>(rng() % 128));
      const auto extra = static_cast<std::size_t>(rng() % 32);
      for (std::size_t k = 0; k < extra; ++k) frame.push_back(byte());
      attempt(frame);
    }
    CHECK(refused + decoded == 5000);
  }
  SUBCASE("valid frames with a few bytes changed, inserted or removed") {
    const auto frames = sample_frames();
    for (int i = 0; i < 20000; ++i) {
      std::string frame = frames[rng() % frames.size()];
      const auto edits = 1 + rng() % 3;
      for (std::uint64_t e = 0; e < edits && !frame.empty(); ++e) {
        const auto at = static_cast<std::size_t>(rng() % frame.size());
        switch (rng() % 3) {
          case 0: frame[at] = byte(); break;
          case 1: frame.insert(frame.begin() + static_cast<std::ptrdiff_t>(at), byte()); break;
          default: frame.erase(at, 1); break;
        }
      }
      attempt(frame);
    }
    CHECK(refused + decoded == 20000);
    CHECK(refused > 0);
    CHECK(decoded > 0);
  }
}

TEST_CASE("wire refuses valid msgpack that is not an array") {
  SUBCASE("a map") {
    const auto frame = packed([](packer& p) {
      p.pack_map(1);
      p.pack(1);
      p.pack(1);
    });
    CHECK_THROWS_WITH_AS(wire::decode(frame), doctest::Contains(": not an array"), protocol_error);
  }
  SUBCASE("a string") {
    const auto frame = packed([](packer& p) { p.pack(std::string("hello")); });
    CHECK_THROWS_WITH_AS(wire::decode(frame), doctest::Contains(": not an array"), protocol_error);
  }
  SUBCASE("an integer") {
    CHECK_THROWS_WITH_AS(wire::decode(from_hex("01")), doctest::Contains(": not an array"), protocol_error);
  }
  SUBCASE("nil") {
    CHECK_THROWS_WITH_AS(wire::decode(from_hex("c0")), doctest::Contains(": not an array"), protocol_error);
  }
}

TEST_CASE("wire refuses an envelope shorter than version, type and job") {
  CHECK_THROWS_WITH_AS(wire::decode(from_hex("90")), "malformed message: 0 fields, expected at least 3",
                       protocol_error);
  CHECK_THROWS_WITH_AS(wire::decode(from_hex("9104")), "malformed message: 1 fields, expected at least 3",
                       protocol_error);
  CHECK_THROWS_WITH_AS(wire::decode(from_hex("920401")), "malformed message: 2 fields, expected at least 3",
                       protocol_error);
}

TEST_CASE("wire refuses another protocol version with a message naming both versions") {
  CHECK_THROWS_WITH_AS(wire::decode(from_hex("93070801")), "unsupported protocol version 7 (this build speaks 4)",
                       protocol_error);
  CHECK_THROWS_WITH_AS(wire::decode(from_hex("93000801")), "unsupported protocol version 0 (this build speaks 4)",
                       protocol_error);
  // A worker_status of version 1 (golden bytes of that version: no lost list, `received` for next_seq).
  CHECK_THROWS_WITH_AS(wire::decode(from_hex("99 01 01 07 a3683a31 04 02 cd012c ce00011170 05")),
                       "unsupported protocol version 1 (this build speaks 4)", protocol_error);
  // A job_info of version 2, the one before ours (golden bytes of that version: no fingerprint).
  CHECK_THROWS_WITH_AS(wire::decode(from_hex("94 02 05 01 ff")), "unsupported protocol version 2 (this build speaks 4)",
                       protocol_error);
  // A sink_status of version 2 (no claim, no fingerprint), and one laid out as ours but of version 2.
  CHECK_THROWS_WITH_AS(wire::decode(from_hex("99 02 06 04 00 00 00 c2 90 90")),
                       "unsupported protocol version 2 (this build speaks 4)", protocol_error);
  CHECK_THROWS_WITH_AS(wire::decode(from_hex("9b 02 06 04 00 00 00 c2 90 90 c2 a0")),
                       "unsupported protocol version 2 (this build speaks 4)", protocol_error);
  // A job_info of version 3 (golden bytes of that version: no workers, slots or requeued).
  CHECK_THROWS_WITH_AS(wire::decode(from_hex("95 03 05 01 ff a0")),
                       "unsupported protocol version 3 (this build speaks 4)", protocol_error);
  // A version 5 worker_status that is otherwise perfectly valid.
  auto frame = wire::encode(wire::worker_status{.job = 1, .name = "w", .slots = 1, .free = 1});
  frame[1] = '\x05';
  CHECK_THROWS_WITH_AS(wire::decode(frame), "unsupported protocol version 5 (this build speaks 4)", protocol_error);
  // The version is read before anything else is checked: whatever a future envelope holds, and
  // however large its version number, the peer is told which version it speaks.
  CHECK_THROWS_WITH_AS(wire::decode(from_hex("9107")), "unsupported protocol version 7 (this build speaks 4)",
                       protocol_error);
  CHECK_THROWS_WITH_AS(wire::decode(from_hex("93 01 cd0100 c0")),
                       "unsupported protocol version 1 (this build speaks 4)", protocol_error);
  CHECK_THROWS_WITH_AS(wire::decode(from_hex("93 cf0000000100000001 08 01")),
                       "unsupported protocol version 4294967297 (this build speaks 4)", protocol_error);
  // So do the hot-path decoders.
  wire::tasks_view tasks;
  CHECK_THROWS_WITH_AS(wire::decode_tasks(from_hex("93070301"), tasks),
                       "unsupported protocol version 7 (this build speaks 4)", protocol_error);
  wire::results_view results;
  CHECK_THROWS_WITH_AS(wire::decode_results(from_hex("93070901"), results),
                       "unsupported protocol version 7 (this build speaks 4)", protocol_error);
}

TEST_CASE("wire's foreign_version names the version of a frame decode refuses for its version, and only then") {
  CHECK(wire::foreign_version(from_hex("93070801")) == 7u);
  CHECK(wire::foreign_version(from_hex("93000801")) == 0u);
  CHECK(wire::foreign_version(from_hex("9107")) == 7u);
  CHECK(wire::foreign_version(from_hex("99 01 01 07 a3683a31 04 02 cd012c ce00011170 05")) == 1u);
  CHECK(wire::foreign_version(from_hex("93 cf0000000100000001 08 01")) == 4294967297u);
  CHECK(wire::foreign_version(from_hex("94 02 05 01 ff")) == 2u); // a job_info of version 2
  // A newer ventilator's answer to us: [its version, 11, 0].
  CHECK(wire::foreign_version(from_hex("93050b00")) == 5u);
  CHECK_THROWS_WITH_AS(wire::decode(from_hex("93050b00")), "unsupported protocol version 5 (this build speaks 4)",
                       protocol_error);
  // And an older one's (version 2 sends the same envelope).
  CHECK(wire::foreign_version(from_hex("93020b00")) == 2u);
  CHECK_THROWS_WITH_AS(wire::decode(from_hex("93020b00")), "unsupported protocol version 2 (this build speaks 4)",
                       protocol_error);
  SUBCASE("nothing for our own frames, well-formed or not") {
    for (const auto& frame : sample_frames()) {
      CAPTURE(to_hex(frame.substr(0, 16)));
      CHECK_FALSE(wire::foreign_version(frame).has_value());
    }
    CHECK_FALSE(wire::foreign_version(from_hex("9304")).has_value());         // ours, truncated
    CHECK_FALSE(wire::foreign_version(from_hex("930464c0")).has_value());     // ours, no such type
    CHECK_FALSE(wire::foreign_version(from_hex("93 cc04 0801")).has_value()); // ours, in a uint8
  }
  SUBCASE("nothing for garbage") {
    for (const auto* hex : {"", "c0", "02", "90", "80", "a3616263", "93ff0801", "93a1310801", "93c30801", "93c00801",
                            "dd ffffffff 01", "91", "c1"}) {
      CAPTURE(hex);
      CHECK_FALSE(wire::foreign_version(from_hex(hex)).has_value());
    }
  }
}

TEST_CASE("wire round-trips wrong_version, the answer to a peer of another version") {
  const wire::message m = wire::wrong_version{.job = 0};
  const auto frame = wire::encode(m);
  CHECK(wire::decode(frame) == m);
  CHECK(wire::peek_type(frame) == wire::msg_type::wrong_version);
  CHECK_FALSE(wire::foreign_version(frame).has_value());
  // Its envelope, the same in every version from 2 on: [version, 11, job].
  CHECK(to_hex(frame) == "93040b00");
}

TEST_CASE("wire refuses a version that is not an unsigned integer") {
  CHECK_THROWS_WITH_AS(wire::decode(from_hex("93 ff 08 01")), "malformed message: expected an integer", protocol_error);
  CHECK_THROWS_WITH_AS(wire::decode(from_hex("93 a131 08 01")), "malformed message: expected an integer",
                       protocol_error);
  CHECK_THROWS_WITH_AS(wire::decode(from_hex("93 c0 08 01")), "malformed message: expected an integer", protocol_error);
}

TEST_CASE("wire refuses an unknown message type") {
  CHECK_THROWS_WITH_AS(wire::decode(from_hex("93040001")), "malformed message: unknown type 0", protocol_error);
  CHECK_THROWS_WITH_AS(wire::decode(from_hex("93040f01")), "malformed message: unknown type 15", protocol_error);
  CHECK_THROWS_WITH_AS(wire::decode(from_hex("93046401")), "malformed message: unknown type 100", protocol_error);
  CHECK_THROWS_WITH_AS(wire::decode(from_hex("9304ccff01")), "malformed message: unknown type 255", protocol_error);
  CHECK_THROWS_WITH_AS(wire::decode(from_hex("9304cd010001")), doctest::Contains(": integer out of range"),
                       protocol_error);
  CHECK_THROWS_WITH_AS(wire::decode(from_hex("9304c301")), doctest::Contains(": expected an integer"), protocol_error);
}

TEST_CASE("wire refuses a message with fewer fields than its type needs") {
  // Each count is its schema's length (lib/src/protocol/wire_schema.hpp): a field added there, one line,
  // raises it with no other change.
  // worker_status needs 3 + 7 fields; this has 9 (no `lost`, as version 1 laid it out).
  const auto frame = packed([](packer& p) {
    p.pack_array(9);
    p.pack(wire::protocol_version);
    p.pack(1);
    p.pack(7);
    p.pack(std::string("h:1"));
    p.pack(4);
    p.pack(2);
    p.pack(0);
    p.pack(0);
    p.pack(0);
  });
  CHECK_THROWS_WITH_AS(wire::decode(frame), "malformed message: type 1 has 9 fields, expected 12", protocol_error);
  CHECK_THROWS_WITH_AS(wire::decode(from_hex("96040302 01 c4010a a0")),
                       "malformed message: type 3 has 6 fields, expected 8", protocol_error);
  CHECK_THROWS_WITH_AS(wire::decode(from_hex("94040401 c3")), "malformed message: type 4 has 4 fields, expected 7",
                       protocol_error);
  CHECK_THROWS_WITH_AS(wire::decode(from_hex("93040501")), "malformed message: type 5 has 3 fields, expected 8",
                       protocol_error);
  // job_info without its fingerprint (as version 2 laid it out).
  CHECK_THROWS_WITH_AS(wire::decode(from_hex("94040501 ff")), "malformed message: type 5 has 4 fields, expected 8",
                       protocol_error);
  // job_info without workers, slots and requeued (as version 3 laid it out).
  CHECK_THROWS_WITH_AS(wire::decode(from_hex("95040501 ff a0")), "malformed message: type 5 has 5 fields, expected 8",
                       protocol_error);
  // sink_status without its done list (and version 1's layout, held_back optional and last).
  CHECK_THROWS_WITH_AS(wire::decode(from_hex("98040604 00 00 00 c2 90")),
                       "malformed message: type 6 has 8 fields, expected 14", protocol_error);
  // sink_status without its claim and fingerprint (as version 2 laid it out), without its fingerprint,
  // and without details (as version 3 laid it out).
  CHECK_THROWS_WITH_AS(wire::decode(from_hex("99040604 00 00 00 c2 90 90")),
                       "malformed message: type 6 has 9 fields, expected 14", protocol_error);
  CHECK_THROWS_WITH_AS(wire::decode(from_hex("9a040604 00 00 00 c2 90 90 c3")),
                       "malformed message: type 6 has 10 fields, expected 14", protocol_error);
  CHECK_THROWS_WITH_AS(wire::decode(from_hex("9b040604 00 00 00 c2 90 90 c3 a0")),
                       "malformed message: type 6 has 11 fields, expected 14", protocol_error);
  CHECK_THROWS_WITH_AS(wire::decode(from_hex("94040701 05")), "malformed message: type 7 has 4 fields, expected 5",
                       protocol_error);
  CHECK_THROWS_WITH_AS(wire::decode(from_hex("9404090161")), "malformed message: type 9 has 4 fields, expected 5",
                       protocol_error);
  CHECK_THROWS_WITH_AS(wire::decode(from_hex("93040a01")), "malformed message: type 10 has 3 fields, expected 4",
                       protocol_error);
}

TEST_CASE("wire refuses fields of the wrong type") {
  // worker_status: 9a 03 01 07 | name slots free next_seq completed_job busy lost
  SUBCASE("a worker name that is an integer") {
    CHECK_THROWS_WITH_AS(wire::decode(from_hex("9c040107 05 04 02 00 00 00 90 00 00")),
                         "malformed message: expected bytes", protocol_error);
  }
  SUBCASE("a slot count that is a string") {
    CHECK_THROWS_WITH_AS(wire::decode(from_hex("9c040107 a168 a134 02 00 00 00 90 00 00")),
                         "malformed message: expected an integer", protocol_error);
  }
  SUBCASE("a slot count that is negative") {
    CHECK_THROWS_WITH_AS(wire::decode(from_hex("9c040107 a168 ff 02 00 00 00 90 00 00")),
                         "malformed message: expected an integer", protocol_error);
  }
  SUBCASE("a slot count or a busy count beyond 32 bits") {
    CHECK_THROWS_WITH_AS(wire::decode(from_hex("9c040107 a168 cf0000000100000000 02 00 00 00 90 00 00")),
                         "malformed message: integer out of range", protocol_error);
    CHECK_THROWS_WITH_AS(wire::decode(from_hex("9c040107 a168 04 02 00 00 cf0000000100000000 90 00 00")),
                         "malformed message: integer out of range", protocol_error);
  }
  SUBCASE("a next_seq that is negative") {
    CHECK_THROWS_WITH_AS(wire::decode(from_hex("9c040107 a168 04 02 ff 00 00 90 00 00")),
                         "malformed message: expected an integer", protocol_error);
  }
  SUBCASE("a lost list that is not an array, or holds a malformed run") {
    CHECK_THROWS_WITH_AS(wire::decode(from_hex("9c040107 a168 04 02 00 00 00 a0 00 00")),
                         "malformed message: lost is not an array", protocol_error);
    CHECK_THROWS_WITH_AS(wire::decode(from_hex("9c040107 a168 04 02 00 00 00 91 02 00 00")),
                         "malformed id range message: not an array", protocol_error);
    CHECK_THROWS_WITH_AS(wire::decode(from_hex("9c040107 a168 04 02 00 00 00 91 9102 00 00")),
                         "malformed id range message: 1 fields, expected at least 2", protocol_error);
    CHECK_THROWS_WITH_AS(wire::decode(from_hex("9c040107 a168 04 02 00 00 00 91 92 02 cfffffffffffffffff 00 00")),
                         "malformed id range message: range overflows", protocol_error);
    CHECK_THROWS_WITH_AS(wire::decode(from_hex("9c040107 a168 04 02 00 00 00 91 92 ff 01 00 00")),
                         "malformed id range message: expected an integer", protocol_error);
  }
  SUBCASE("a job that is a float") {
    CHECK_THROWS_WITH_AS(wire::decode(from_hex("930402 cb3ff0000000000000")), "malformed message: expected an integer",
                         protocol_error);
  }
  SUBCASE("a completion flag that is an integer, or a sent_seq that is a boolean") {
    CHECK_THROWS_WITH_AS(wire::decode(from_hex("97040401 01 00 00 c2")), "malformed message: expected a boolean",
                         protocol_error);
    CHECK_THROWS_WITH_AS(wire::decode(from_hex("97040401 c3 c3 00 c2")), "malformed message: expected an integer",
                         protocol_error);
    CHECK_THROWS_WITH_AS(wire::decode(from_hex("97040401 c3 00 a0 c2")), "malformed message: expected an integer",
                         protocol_error);
  }
  SUBCASE("a held_back flag that is an integer, or held bytes that are negative") {
    CHECK_THROWS_WITH_AS(wire::decode(from_hex("9e040604 00 00 00 01 90 90 c2 a0 c2 00 00")),
                         "malformed message: expected a boolean", protocol_error);
    CHECK_THROWS_WITH_AS(wire::decode(from_hex("9e040604 00 00 ff c2 90 90 c2 a0 c2 00 00")),
                         "malformed message: expected an integer", protocol_error);
  }
  // tasks: 97 03 03 02 | seq terminator sink_endpoint tasks
  SUBCASE("a seq that is a string") {
    CHECK_THROWS_WITH_AS(wire::decode(from_hex("98040302 a0 c4010a a0 c2 90")),
                         "malformed message: expected an integer", protocol_error);
  }
  SUBCASE("a task list that is a map") {
    CHECK_THROWS_WITH_AS(wire::decode(from_hex("98040302 01 c4010a a0 c2 80")),
                         "malformed message: tasks is not an array", protocol_error);
  }
  SUBCASE("a task that is not an array") {
    CHECK_THROWS_WITH_AS(wire::decode(from_hex("98040302 01 c4010a a0 c2 91 05")),
                         "malformed task message: not an array", protocol_error);
  }
  SUBCASE("a task with three fields (no retries_left)") {
    CHECK_THROWS_WITH_AS(wire::decode(from_hex("98040302 01 c4010a a0 c2 91 93 00 01 c400")),
                         "malformed task message: 3 fields, expected at least 4", protocol_error);
  }
  SUBCASE("a task with two fields") {
    CHECK_THROWS_WITH_AS(wire::decode(from_hex("98040302 01 c4010a a0 c2 91 92 00 01")),
                         "malformed task message: 2 fields, expected at least 4", protocol_error);
  }
  SUBCASE("a task payload that is nil") {
    CHECK_THROWS_WITH_AS(wire::decode(from_hex("98040302 01 c4010a a0 c2 91 94 00 01 c0 00")),
                         "malformed task message: expected bytes", protocol_error);
  }
  SUBCASE("a task attempt beyond 32 bits") {
    CHECK_THROWS_WITH_AS(wire::decode(from_hex("98040302 01 c4010a a0 c2 91 94 00 cf0000000100000000 c400 00")),
                         "malformed task message: integer out of range", protocol_error);
  }
  SUBCASE("a task retries_left that is not a 32-bit unsigned integer") {
    CHECK_THROWS_WITH_AS(wire::decode(from_hex("98040302 01 c4010a a0 c2 91 94 00 01 c400 cf0000000100000000")),
                         "malformed task message: integer out of range", protocol_error);
    CHECK_THROWS_WITH_AS(wire::decode(from_hex("98040302 01 c4010a a0 c2 91 94 00 01 c400 ff")),
                         "malformed task message: expected an integer", protocol_error);
    CHECK_THROWS_WITH_AS(wire::decode(from_hex("98040302 01 c4010a a0 c2 91 94 00 01 c400 a133")),
                         "malformed task message: expected an integer", protocol_error);
  }
  // sink_status: 9b 03 06 04 | written_below done_below held_bytes held_back acks done claim fingerprint
  SUBCASE("a done list that is a string, or a range that overflows") {
    CHECK_THROWS_WITH_AS(wire::decode(from_hex("9e040604 02 00 00 c2 90 a0 c2 a0 c2 00 00")),
                         "malformed message: done is not an array", protocol_error);
    CHECK_THROWS_WITH_AS(wire::decode(from_hex("9e040604 02 00 00 c2 90 91 92 02 cfffffffffffffffff c2 a0 c2 00 00")),
                         "malformed id range message: range overflows", protocol_error);
    // The largest range that does not overflow.
    CHECK(wire::decode(from_hex("9e040604 02 00 00 c2 90 91 92 01 cffffffffffffffffe c2 a0 c2 00 00")) ==
          wire::message(
              wire::sink_status{.job = 4,
                                .written_below = 2,
                                .done = {{.first = 1, .count = std::numeric_limits<std::uint64_t>::max() - 1}}}));
  }
  SUBCASE("an ack list that is a string") {
    CHECK_THROWS_WITH_AS(wire::decode(from_hex("9e040604 02 00 00 c2 a0 90 c2 a0 c2 00 00")),
                         "malformed message: acks is not an array", protocol_error);
  }
  SUBCASE("an ack with an unknown task status") {
    CHECK_THROWS_WITH_AS(wire::decode(from_hex("9e040604 02 00 00 c2 91 93 00 01 07 90 c2 a0 c2 00 00")),
                         "malformed ack message: unknown task status 7", protocol_error);
    CHECK_THROWS_WITH_AS(wire::decode(from_hex("9e040604 02 00 00 c2 91 93 00 01 ccff 90 c2 a0 c2 00 00")),
                         "malformed ack message: unknown task status 255", protocol_error);
    CHECK_THROWS_WITH_AS(wire::decode(from_hex("9e040604 02 00 00 c2 91 93 00 01 cd0100 90 c2 a0 c2 00 00")),
                         "malformed ack message: integer out of range", protocol_error);
  }
  SUBCASE("an ack of a task too large, the last status there is") {
    CHECK(
        wire::decode(from_hex("9e040604 02 00 00 c2 91 93 00 01 06 90 c2 a0 c2 00 00")) ==
        wire::message(wire::sink_status{
            .job = 4, .written_below = 2, .acks = {{.id = 0, .attempt = 1, .status = wire::task_status::too_large}}}));
  }
  SUBCASE("a claim that is not a boolean, or a fingerprint that is not a string") {
    CHECK_THROWS_WITH_AS(wire::decode(from_hex("9e040604 02 00 00 c2 90 90 01 a0 c2 00 00")),
                         "malformed message: expected a boolean", protocol_error);
    CHECK_THROWS_WITH_AS(wire::decode(from_hex("9e040604 02 00 00 c2 90 90 c0 a0 c2 00 00")),
                         "malformed message: expected a boolean", protocol_error);
    CHECK_THROWS_WITH_AS(wire::decode(from_hex("9e040604 02 00 00 c2 90 90 c3 05 c2 00 00")),
                         "malformed message: expected bytes", protocol_error);
    CHECK_THROWS_WITH_AS(wire::decode(from_hex("9e040604 02 00 00 c2 90 90 c3 c0 c2 00 00")),
                         "malformed message: expected bytes", protocol_error);
    // A fingerprint as bin (c4 02 "fp") is read as the str it is sent as.
    CHECK(wire::decode(from_hex("9e040604 02 00 00 c2 90 90 c3 c4026670 c2 00 00")) ==
          wire::message(wire::sink_status{.job = 4, .written_below = 2, .claim = true, .fingerprint = "fp"}));
  }
  // job_info: 98 04 05 01 | total fingerprint workers slots requeued
  SUBCASE("a total that is a string, or a fingerprint that is not a string") {
    CHECK_THROWS_WITH_AS(wire::decode(from_hex("98040501 a0 a0 00 00 00")), "malformed message: expected an integer",
                         protocol_error);
    CHECK_THROWS_WITH_AS(wire::decode(from_hex("98040501 ff 05 00 00 00")), "malformed message: expected bytes",
                         protocol_error);
    CHECK_THROWS_WITH_AS(wire::decode(from_hex("98040501 ff c0 00 00 00")), "malformed message: expected bytes",
                         protocol_error);
    CHECK_THROWS_WITH_AS(wire::decode(from_hex("98040501 ff 90 00 00 00")), "malformed message: expected bytes",
                         protocol_error);
  }
  SUBCASE("a result list that is nil") {
    CHECK_THROWS_WITH_AS(wire::decode(from_hex("95040903 a177 c0")), doctest::Contains(": results is not an array"),
                         protocol_error);
  }
  SUBCASE("a result with eight fields (no payload)") {
    CHECK_THROWS_WITH_AS(wire::decode(from_hex("95040903 a177 91 98 01 01 00 00 c400 c400 00 00")),
                         "malformed result message: 8 fields, expected at least 9", protocol_error);
  }
  SUBCASE("a result with seven fields (no retries_left, no payload)") {
    CHECK_THROWS_WITH_AS(wire::decode(from_hex("95040903 a177 91 97 01 01 00 00 c400 c400 00")),
                         "malformed result message: 7 fields, expected at least 9", protocol_error);
  }
  SUBCASE("a result code beyond 32 bits") {
    CHECK_THROWS_WITH_AS(
        wire::decode(from_hex("95040903 a177 91 9c 01 01 01 ce80000000 c400 c400 00 00 c400 00 00 c400")),
        "malformed result message: integer out of range", protocol_error);
    CHECK_THROWS_WITH_AS(
        wire::decode(from_hex("95040903 a177 91 9c 01 01 01 d3ffffffff7fffffff c400 c400 00 00 c400 00 00 c400")),
        "malformed result message: integer out of range", protocol_error);
  }
  SUBCASE("a result with an unknown status") {
    CHECK_THROWS_WITH_AS(wire::decode(from_hex("95040903 a177 91 9c 01 01 07 00 c400 c400 00 00 c400 00 00 c400")),
                         "malformed result message: unknown task status 7", protocol_error);
  }
  SUBCASE("a result runtime that is negative") {
    CHECK_THROWS_WITH_AS(wire::decode(from_hex("95040903 a177 91 9c 01 01 00 00 c400 c400 ff 00 c400 00 00 c400")),
                         "malformed result message: expected an integer", protocol_error);
  }
  SUBCASE("a result retries_left that is not a 32-bit unsigned integer") {
    CHECK_THROWS_WITH_AS(
        wire::decode(from_hex("95040903 a177 91 9c 01 01 01 01 c400 c400 00 cf0000000100000000 c400 00 00 c400")),
        "malformed result message: integer out of range", protocol_error);
    CHECK_THROWS_WITH_AS(wire::decode(from_hex("95040903 a177 91 9c 01 01 01 01 c400 c400 00 ff c400 00 00 c400")),
                         "malformed result message: expected an integer", protocol_error);
    CHECK_THROWS_WITH_AS(wire::decode(from_hex("95040903 a177 91 9c 01 01 01 01 c400 c400 00 c400 c400 00 00 c400")),
                         "malformed result message: expected an integer", protocol_error);
  }
  SUBCASE("a result payload that is not bytes") {
    CHECK_THROWS_WITH_AS(wire::decode(from_hex("95040903 a177 91 9c 01 01 01 01 c400 c400 00 00 c0 00 00 c400")),
                         "malformed result message: expected bytes", protocol_error);
    CHECK_THROWS_WITH_AS(wire::decode(from_hex("95040903 a177 91 9c 01 01 01 01 c400 c400 00 00 05 00 00 c400")),
                         "malformed result message: expected bytes", protocol_error);
  }
}

TEST_CASE("wire accepts a total of -1 and refuses any other negative total") {
  CHECK(wire::decode(from_hex("98040501ffa0000000")) == wire::message{wire::job_info{.job = 1, .total = -1}});
  CHECK(wire::decode(from_hex("9804050100a0000000")) == wire::message{wire::job_info{.job = 1, .total = 0}});
  CHECK_THROWS_WITH_AS(wire::decode(from_hex("98040501fea0000000")), doctest::Contains(": negative total"),
                       protocol_error);
  CHECK_THROWS_WITH_AS(wire::decode(from_hex("98040501d38000000000000000a0000000")),
                       doctest::Contains(": negative total"), protocol_error);
  CHECK_THROWS_WITH_AS(wire::decode(from_hex("98040501cf8000000000000000a0000000")),
                       doctest::Contains(": integer out of range"), protocol_error);
}

TEST_CASE("wire refuses bytes after a complete message") {
  const auto frame = wire::encode(wire::complete_ack{.job = 3});
  CHECK_THROWS_WITH_AS(wire::decode(frame + '\xc0'), "malformed message: trailing bytes after the message",
                       protocol_error);
  CHECK_THROWS_WITH_AS(wire::decode(frame + frame), "malformed message: trailing bytes after the message",
                       protocol_error);
}

TEST_CASE("wire refuses a frame larger than max_bytes and accepts one of exactly max_bytes") {
  const wire::message m =
      wire::tasks_msg{.job = 1, .terminator = "\n", .tasks = {{.id = 0, .payload = std::string(1000, 'p')}}};
  const auto frame = wire::encode(m);
  // 98 04 03 01 | 00 | c4 01 0a | a0 | c2 | 91 | 94 00 01 c5 03e8 <1000 bytes> 00
  REQUIRE(frame.size() == 1018);
  CHECK(wire::decode(frame, frame.size()) == m);
  CHECK_THROWS_WITH_AS(wire::decode(frame, frame.size() - 1), "malformed message: 1018 bytes exceeds the limit of 1017",
                       protocol_error);
  CHECK_THROWS_WITH_AS(wire::decode(frame, 0), "malformed message: 1018 bytes exceeds the limit of 0", protocol_error);
}

TEST_CASE("wire refuses length prefixes that claim more than the frame holds") {
  // An array of 2^32-1 elements and a bin of 2^32-1 bytes in a few bytes: refused, not allocated.
  CHECK_THROWS_AS(wire::decode(from_hex("ddffffffff 01 01 01")), protocol_error);
  CHECK_THROWS_AS(wire::decode(from_hex("97040302 00 c6ffffffff 0a")), protocol_error);
  CHECK_THROWS_AS(wire::decode(from_hex("98040302 00 c4010a a0 c2 ddffffffff")), protocol_error);
  CHECK_THROWS_AS(wire::decode(from_hex("df ffffffff 01 01")), protocol_error);
}

TEST_CASE("wire refuses nesting deeper than the protocol uses") {
  // A job_info with a trailing field nested 100 arrays deep.
  const auto frame = from_hex("96040501ffa0") + std::string(100, '\x91') + from_hex("00");
  CHECK_THROWS_AS(wire::decode(frame), protocol_error);
}

TEST_CASE("wire error messages say 'malformed message' once, not 'malformed message message'") {
  // The envelope's field reader is named "message", and its errors are formatted as
  // "malformed {name} message: ...", so every envelope or body-field error doubles the word.
  const auto map = packed([](packer& p) {
    p.pack_map(1);
    p.pack(1);
    p.pack(1);
  });
  CHECK_THROWS_WITH_AS(wire::decode(map), "malformed message: not an array", protocol_error);
  CHECK_THROWS_WITH_AS(wire::decode(from_hex("920401")), "malformed message: 2 fields, expected at least 3",
                       protocol_error);
  CHECK_THROWS_WITH_AS(wire::decode(from_hex("98040501fea0000000")), "malformed message: negative total",
                       protocol_error);
}

TEST_CASE("wire names each task status in lower case") {
  CHECK(wire::to_string(wire::task_status::ok) == "ok");
  CHECK(wire::to_string(wire::task_status::failed) == "failed");
  CHECK(wire::to_string(wire::task_status::signalled) == "signalled");
  CHECK(wire::to_string(wire::task_status::not_started) == "not started");
  CHECK(wire::to_string(wire::task_status::timed_out) == "timed out");
  CHECK(wire::to_string(wire::task_status::crashed) == "crashed");
  CHECK(wire::to_string(wire::task_status::too_large) == "too large");
}

TEST_CASE("append_id extends the last run for the next id and starts a new run otherwise") {
  std::vector<wire::id_range> runs;
  for (std::uint64_t id : {5u, 6u, 7u, 9u, 3u, 4u}) wire::append_id(runs, id);
  CHECK(runs ==
        std::vector<wire::id_range>{{.first = 5, .count = 3}, {.first = 9, .count = 1}, {.first = 3, .count = 2}});
}

TEST_CASE("wire's sink_status overload of encode_to writes the same bytes as encoding the message") {
  const wire::sink_status s{.job = 3, .written_below = 9, .acks = {}, .done = {{.first = 0, .count = 2}}};
  std::string out = "stale bytes that must be replaced";
  wire::encode_to(out, s);
  CHECK(out == wire::encode(wire::message(s)));
  // And a claim, whose fields come last.
  const wire::sink_status claim{
      .job = 3, .done_below = 9, .done = {{.first = 12, .count = 2}}, .claim = true, .fingerprint = "range 1:20:1"};
  wire::encode_to(out, claim);
  CHECK(out == wire::encode(wire::message(claim)));
  CHECK(wire::decode(out) == wire::message(claim));
}
