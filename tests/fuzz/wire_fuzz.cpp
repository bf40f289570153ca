// libFuzzer target for the wire decoder: any bytes must either decode or throw protocol_error;
// whatever decodes must encode and decode back to the same message. The hot-path decoders
// (decode_results, decode_tasks: views into the frame) and peek_type must agree with decode on
// every input: the same verdict, the same fields.
#include "mtask/error.hpp"
#include "mtask/wire.hpp"

#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string_view>
#include <variant>

namespace {

namespace wire = mtask::wire;

void check(bool ok) {
  if (!ok) std::abort();
}

template <typename View, typename Decode>
std::optional<View> try_view(std::string_view frame, Decode decode) {
  View v;
  try {
    decode(frame, v, std::size_t{1} << 20);
    return v;
  } catch (const mtask::protocol_error&) {
    return std::nullopt;
  }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view frame(reinterpret_cast<const char*>(data), size);
  std::optional<wire::message> m;
  try {
    m = wire::decode(frame, 1 << 20);
  } catch (const mtask::protocol_error&) {
    // expected for garbage
  }
  if (m) {
    check(wire::decode(wire::encode(*m)) == *m); // a round trip that changes the message is a bug
    check(wire::peek_type(frame) == static_cast<wire::msg_type>(m->index() + 1));
  }
  const auto* results = m ? std::get_if<wire::results_msg>(&*m) : nullptr;
  const auto rv = try_view<wire::results_view>(
      frame, [](std::string_view f, wire::results_view& v, std::size_t max) { wire::decode_results(f, v, max); });
  check(rv.has_value() == (results != nullptr));
  if (results) {
    check(rv->job == results->job && rv->worker == results->worker && rv->results.size() == results->results.size());
    for (std::size_t i = 0; i < rv->results.size(); ++i) {
      const auto a = wire::view_of(results->results[i]);
      const auto& b = rv->results[i];
      check(a.id == b.id && a.attempt == b.attempt && a.status == b.status && a.code == b.code &&
            a.output == b.output && a.error == b.error && a.runtime_us == b.runtime_us &&
            a.retries_left == b.retries_left && a.payload == b.payload);
    }
  }
  const auto* tasks = m ? std::get_if<wire::tasks_msg>(&*m) : nullptr;
  const auto tv = try_view<wire::tasks_view>(
      frame, [](std::string_view f, wire::tasks_view& v, std::size_t max) { wire::decode_tasks(f, v, max); });
  check(tv.has_value() == (tasks != nullptr));
  if (tasks) {
    check(tv->job == tasks->job && tv->terminator == tasks->terminator && tv->sink_endpoint == tasks->sink_endpoint &&
          tv->tasks.size() == tasks->tasks.size());
    for (std::size_t i = 0; i < tv->tasks.size(); ++i) {
      const auto& a = tasks->tasks[i];
      const auto& b = tv->tasks[i];
      check(a.id == b.id && a.attempt == b.attempt && a.payload == b.payload && a.retries_left == b.retries_left);
    }
  }
  return 0;
}
