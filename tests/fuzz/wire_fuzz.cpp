// libFuzzer target for the wire decoder: any bytes must either decode or throw protocol_error;
// whatever decodes must encode and decode back to the same message, and the builders must make a
// frame that decodes to it too. The hot-path decoders (decode_results, decode_tasks: views into
// the frame), peek_type and foreign_version must agree with decode on every input: the same
// verdict, the same fields, the same error.
#include "mtask/error.hpp"
#include "protocol/wire.hpp"

#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

namespace {

namespace wire = mtask::wire;

constexpr std::size_t max_bytes = std::size_t{1} << 20;

void check(bool ok) {
  if (!ok) std::abort();
}

// A decoder's verdict on a frame: the error it threw, or none.
template <typename Decode>
std::optional<std::string> error_of(Decode decode) {
  try {
    decode();
    return std::nullopt;
  } catch (const mtask::protocol_error& e) {
    return std::string(e.what());
  }
}

bool same(const wire::task& a, const wire::task_view& b) {
  return a.id == b.id && a.attempt == b.attempt && a.payload == b.payload && a.retries_left == b.retries_left;
}

bool same(const wire::result& r, const wire::result_view& b) {
  const auto a = wire::view_of(r);
  return a.id == b.id && a.attempt == b.attempt && a.status == b.status && a.code == b.code && a.output == b.output &&
         a.error == b.error && a.runtime_us == b.runtime_us && a.retries_left == b.retries_left &&
         a.payload == b.payload;
}

// A hot-path decoder must give what decode gives for a frame of its type, and for any other frame
// decode's own error, or (for a well-formed message of another type) a wrong-type error.
void check_view_decoder(const std::optional<std::string>& decode_error, std::optional<wire::msg_type> type,
                        wire::msg_type expected, const std::optional<std::string>& view_error) {
  if (type == expected || !type) {
    check(view_error == decode_error);
  } else {
    check(view_error.has_value() && view_error->find("was expected") != std::string::npos);
  }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view frame(reinterpret_cast<const char*>(data), size);
  std::optional<wire::message> m;
  const auto decode_error = error_of([&] { m = wire::decode(frame, max_bytes); });
  const auto type = wire::peek_type(frame);
  const auto foreign = wire::foreign_version(frame);

  // foreign_version names exactly the frames decode refuses for their version.
  check(foreign.has_value() ==
        (decode_error.has_value() && decode_error->starts_with("unsupported protocol version ")));
  if (foreign) {
    check(*decode_error == "unsupported protocol version " + std::to_string(*foreign) + " (this build speaks " +
                               std::to_string(wire::protocol_version) + ")");
    check(!type);
  }
  if (m) {
    check(wire::decode(wire::encode(*m)) == *m); // a round trip that changes the message is a bug
    check(type == static_cast<wire::msg_type>(m->index() + 1));
  }

  const auto* results = m ? std::get_if<wire::results_msg>(&*m) : nullptr;
  wire::results_view rv;
  const auto rv_error = error_of([&] { wire::decode_results(frame, rv, max_bytes); });
  check_view_decoder(decode_error, type, wire::msg_type::results, rv_error);
  if (rv_error) check(rv.results.empty()); // nothing of a bad frame is kept
  if (results) {
    check(rv.job == results->job && rv.worker == results->worker && rv.results.size() == results->results.size());
    wire::results_builder b;
    b.start(results->job, results->worker);
    for (std::size_t i = 0; i < rv.results.size(); ++i) {
      check(same(results->results[i], rv.results[i]));
      b.add(results->results[i]);
    }
    check(b.size() == b.frame().size());
    check(wire::decode(b.frame()) == *m);
  }

  const auto* tasks = m ? std::get_if<wire::tasks_msg>(&*m) : nullptr;
  wire::tasks_view tv;
  const auto tv_error = error_of([&] { wire::decode_tasks(frame, tv, max_bytes); });
  check_view_decoder(decode_error, type, wire::msg_type::tasks, tv_error);
  if (tv_error) check(tv.tasks.empty());
  if (tasks) {
    check(tv.job == tasks->job && tv.seq == tasks->seq && tv.terminator == tasks->terminator &&
          tv.sink_endpoint == tasks->sink_endpoint && tv.tasks.size() == tasks->tasks.size());
    wire::tasks_builder b;
    b.start(tv.job, tv.seq, tv.terminator, tv.sink_endpoint);
    for (std::size_t i = 0; i < tv.tasks.size(); ++i) {
      check(same(tasks->tasks[i], tv.tasks[i]));
      b.add(tv.tasks[i]);
    }
    check(wire::decode(b.frame()) == *m);
  }
  return 0;
}
