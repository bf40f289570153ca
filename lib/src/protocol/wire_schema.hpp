// The wire protocol's schema: every message's fields and every list element's, declared once, in
// wire order. wire.cpp derives from these lists the encoder, the decoders (owned and views), the
// builders and the number of fields each message must have; nothing else lists a field.
// Private to lib/src: the wire format's public face is wire.hpp.
//
// Adding a field to a message is its member in wire.hpp and one line here, at the end of its list:
// a worker's peak memory would be
//     std::uint64_t peak_rss = 0;          // in struct worker_status (wire.hpp)
//     value(&worker_status::peak_rss),     // last in schema<worker_status>::fields
// and nothing else: its encoding, decoding, range check and the message's field count follow.
// A member left out of its schema does not compile (see `covers`). Peers that do not know a new
// field skip it (decoders ignore trailing fields), but peers that know it refuse frames without
// it: unless every peer is rebuilt together, a new field comes with a new protocol_version.
#pragma once

#include "protocol/wire.hpp"

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

namespace mtask::wire::detail {

// How a string travels: msgpack str for text people read (names, endpoints, reasons), bin for bytes
// that are whatever the users' commands make of them (payloads, output, terminators). Decoders take
// either.
enum class text { str, bin };

// One field of a schema: the member, how it travels when it is a string, the name a list field
// has in errors ("lost is not an array"), and a check run once it is read, on the struct read so
// far (returns why the value is refused, or nullptr). Built with value(), str(), bin() or list().
template <typename S, typename M>
struct field {
  M S::*member;
  text as = text::bin;
  const char* name = nullptr;
  const char* (*check)(const S&) = nullptr;
};

template <typename M>
inline constexpr bool is_list = false;
template <typename E>
inline constexpr bool is_list<std::vector<E>> = true;

template <typename M>
concept scalar = std::integral<M> || std::same_as<M, task_status>;
template <typename M>
concept string_like = std::same_as<M, std::string> || std::same_as<M, std::string_view>;

// An integer, a boolean or a task status: its msgpack type follows from its C++ type (unsigned
// integers as uint, signed ones as int, task_status as a uint8 below the number of statuses).
// Integers are refused beyond their member's range.
template <typename S, scalar M>
constexpr field<S, M> value(M S::*member, const char* (*check)(const S&) = nullptr) {
  return {.member = member, .check = check};
}

template <typename S, string_like M>
constexpr field<S, M> str(M S::*member) {
  return {.member = member, .as = text::str};
}

template <typename S, string_like M>
constexpr field<S, M> bin(M S::*member) {
  return {.member = member, .as = text::bin};
}

// A list of elements, each an array laid out by its own schema.
template <typename S, typename M>
requires is_list<M>
constexpr field<S, M> list(M S::*member, const char* name) { return {.member = member, .name = name}; }

// Checks beyond an integer's range, each on the struct read so far.
constexpr const char* known_or_minus_one(const job_info& m) { return m.total < -1 ? "negative total" : nullptr; }
constexpr const char* known_or_minus_one_report(const status_report& m) {
  return m.total < -1 ? "negative total" : nullptr;
}
constexpr const char* within_u64(const id_range& r) {
  return r.count > std::numeric_limits<std::uint64_t>::max() - r.first ? "range overflows" : nullptr;
}

// schema<T>: `fields`, and either `type` (a message: its fields follow version, type and job in
// the envelope) or `name` (a list element, for errors: "malformed task message: ...").
template <typename T>
struct schema;

template <typename T, typename... U>
concept one_of = (std::same_as<T, U> || ...);

// One field a line, in wire order: a table clang-format would otherwise fold into columns.
// clang-format off

// ---- list elements --------------------------------------------------------------------------

// A task, owned or viewed in its frame (the worker's decode_tasks, the ventilator's builder).
template <one_of<task, task_view> T>
struct schema<T> {
  static constexpr const char* name = "task";
  static constexpr auto fields = std::tuple{
      value(&T::id),
      value(&T::attempt),
      bin(&T::payload),
      value(&T::retries_left),
  };
};

// A result, owned or viewed in its frame (the sink's decode_results).
template <one_of<result, result_view> T>
struct schema<T> {
  static constexpr const char* name = "result";
  // The details (start_us, payload_bytes, command) travel only when asked for (a joblog, a
  // report): a result without them is its first 9 fields, and reads back with them zero and empty.
  static constexpr std::size_t required = 9;
  static constexpr auto fields = std::tuple{
      value(&T::id),
      value(&T::attempt),
      value(&T::status),
      value(&T::code),
      bin(&T::output),
      bin(&T::error),
      value(&T::runtime_us),
      value(&T::retries_left),
      bin(&T::payload),
      value(&T::start_us),
      value(&T::payload_bytes),
      bin(&T::command),
  };
};

template <>
struct schema<ack> {
  static constexpr const char* name = "ack";
  static constexpr auto fields = std::tuple{
      value(&ack::id),
      value(&ack::attempt),
      value(&ack::status),
  };
};

template <>
struct schema<worker_row> {
  static constexpr const char* name = "worker row";
  static constexpr auto fields = std::tuple{
      str(&worker_row::name),
      value(&worker_row::slots),
      value(&worker_row::busy),
      value(&worker_row::done),
      value(&worker_row::rate_milli),
      value(&worker_row::silent_ms),
      value(&worker_row::alive),
  };
};

template <>
struct schema<id_range> {
  static constexpr const char* name = "id range";
  static constexpr auto fields = std::tuple{
      value(&id_range::first),
      value(&id_range::count, within_u64),
  };
};

// ---- messages: the fields after [version, type, job] ----------------------------------------

template <>
struct schema<worker_status> {
  static constexpr auto type = msg_type::worker_status;
  static constexpr auto fields = std::tuple{
      str(&worker_status::name),
      value(&worker_status::slots),
      value(&worker_status::free),
      value(&worker_status::next_seq),
      value(&worker_status::completed_job),
      value(&worker_status::busy),
      list(&worker_status::lost, "lost"),
      value(&worker_status::done),
      value(&worker_status::failed),
  };
};

template <>
struct schema<worker_bye> {
  static constexpr auto type = msg_type::worker_bye;
  static constexpr auto fields = std::tuple{};
};

template <one_of<tasks_msg, tasks_view> T>
struct schema<T> {
  static constexpr auto type = msg_type::tasks;
  static constexpr auto fields = std::tuple{
      value(&T::seq),
      bin(&T::terminator),
      str(&T::sink_endpoint),
      value(&T::details),
      list(&T::tasks, "tasks"), // last: tasks_builder appends to it
  };
};

template <>
struct schema<vent_status> {
  static constexpr auto type = msg_type::vent_status;
  static constexpr auto fields = std::tuple{
      value(&vent_status::complete),
      value(&vent_status::sent_seq),
      value(&vent_status::resolved_below),
      value(&vent_status::cancel),
  };
};

template <>
struct schema<job_info> {
  static constexpr auto type = msg_type::job_info;
  static constexpr auto fields = std::tuple{
      value(&job_info::total, known_or_minus_one),
      str(&job_info::fingerprint),
      value(&job_info::workers),
      value(&job_info::slots),
      value(&job_info::requeued),
  };
};

template <>
struct schema<sink_status> {
  static constexpr auto type = msg_type::sink_status;
  static constexpr auto fields = std::tuple{
      value(&sink_status::written_below),
      value(&sink_status::done_below),
      value(&sink_status::held_bytes),
      value(&sink_status::held_back),
      list(&sink_status::acks, "acks"),
      list(&sink_status::done, "done"),
      value(&sink_status::claim),
      str(&sink_status::fingerprint),
      value(&sink_status::details),
      value(&sink_status::final_results),
      value(&sink_status::failed),
  };
};

template <>
struct schema<complete> {
  static constexpr auto type = msg_type::complete;
  static constexpr auto fields = std::tuple{
      value(&complete::total),
      value(&complete::failed),
  };
};

template <>
struct schema<complete_ack> {
  static constexpr auto type = msg_type::complete_ack;
  static constexpr auto fields = std::tuple{};
};

template <one_of<results_msg, results_view> T>
struct schema<T> {
  static constexpr auto type = msg_type::results;
  static constexpr auto fields = std::tuple{
      str(&T::worker),
      list(&T::results, "results"), // last: results_builder appends to it
  };
};

template <>
struct schema<abort_msg> {
  static constexpr auto type = msg_type::abort;
  static constexpr auto fields = std::tuple{
      str(&abort_msg::reason),
  };
};

template <>
struct schema<wrong_version> {
  static constexpr auto type = msg_type::wrong_version;
  static constexpr auto fields = std::tuple{};
};

template <>
struct schema<halt_msg> {
  static constexpr auto type = msg_type::halt;
  static constexpr auto fields = std::tuple{
      str(&halt_msg::reason),
  };
};

template <>
struct schema<status_request> {
  static constexpr auto type = msg_type::status_request;
  static constexpr auto fields = std::tuple{};
};

template <>
struct schema<status_report> {
  static constexpr auto type = msg_type::status_report;
  static constexpr auto fields = std::tuple{
      str(&status_report::phase),
      value(&status_report::total, known_or_minus_one_report),
      value(&status_report::read),
      value(&status_report::acknowledged),
      value(&status_report::requeued),
      value(&status_report::retried),
      value(&status_report::elapsed_ms),
      list(&status_report::workers, "workers"),
  };
};

// clang-format on

// ---- what the schemas promise ---------------------------------------------------------------

template <typename T>
inline constexpr std::size_t field_count = std::tuple_size_v<std::remove_const_t<decltype(schema<T>::fields)>>;

// The fields an element must have: all of them, unless its schema names fewer (`required`): the
// rest are optional, left out by the encoder when they all hold their default, and read as the
// default when absent. Only list elements have optional fields (a message's count is its type's).
template <typename T>
constexpr std::size_t required_fields() {
  if constexpr (requires { schema<T>::required; }) {
    static_assert(schema<T>::required <= field_count<T>);
    return schema<T>::required;
  } else {
    return field_count<T>;
  }
}
template <typename T>
inline constexpr std::size_t required_count = required_fields<T>();

// The number of members of an aggregate: the most initialisers its braces take.
struct any_value {
  template <typename U>
  operator U() const; // never called: only asked whether it would convert
};
template <typename T, std::size_t... I>
constexpr bool takes_initialisers(std::index_sequence<I...>) {
  return requires { T{(void(I), any_value{})...}; };
}
template <typename T, std::size_t N = 0>
constexpr std::size_t member_count() {
  if constexpr (takes_initialisers<T>(std::make_index_sequence<N + 1>{}))
    return member_count<T, N + 1>();
  else
    return N;
}

// Every member is in the schema (a message's job travels in the envelope): wire.cpp asserts it of
// every struct it encodes or decodes, so a member without its line here does not compile.
template <typename T>
constexpr bool covers() {
  if constexpr (requires { schema<T>::type; })
    return member_count<T>() == 1 + field_count<T>;
  else
    return member_count<T>() == field_count<T>;
}

} // namespace mtask::wire::detail
