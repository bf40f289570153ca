// msgpack encoding and defensive decoding of the wire protocol, both derived from the schema in
// wire_schema.hpp: no message's fields are listed here.
#include "protocol/wire.hpp"

#include "mtask/error.hpp"
#include "protocol/msgpack_cursor.hpp"
#include "protocol/msgpack_writer.hpp"
#include "protocol/wire_schema.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <limits>
#include <new>
#include <type_traits>
#include <utility>

namespace mtask::wire {
namespace {

using detail::field_count;
using detail::is_list;
using detail::required_count;
using detail::schema;
using detail::text;
using detail::writer;

template <typename Fn, std::size_t... I>
void for_each_index(Fn& fn, std::index_sequence<I...>) {
  (fn(std::integral_constant<std::size_t, I>{}), ...);
}

// Calls fn(std::integral_constant<std::size_t, I>{}) for the fields [0, To) of T's schema, in wire
// order: an index rather than the field, so that the field's member, encoding and check are
// constant expressions in fn and each field compiles to the code a hand-written one would.
template <typename T, std::size_t To = field_count<T>, typename Fn>
void for_each_field(Fn&& fn) {
  static_assert(detail::covers<T>(), "every member of T has its line in schema<T> (wire_schema.hpp)");
  for_each_index(fn, std::make_index_sequence<To>{});
}

// ---- encoding -------------------------------------------------------------------------------

void pack_header(writer& p, std::size_t fields, msg_type t, std::uint64_t job) {
  p.array(static_cast<std::uint32_t>(3 + fields));
  p.uint(protocol_version);
  p.uint(static_cast<std::uint8_t>(t));
  p.uint(job);
}

template <typename E>
void pack_element(writer& p, const E& e);

template <text As, typename M>
void pack_value(writer& p, const M& v) {
  if constexpr (std::is_same_v<M, bool>) {
    p.boolean(v);
  } else if constexpr (std::is_same_v<M, task_status>) {
    p.uint(static_cast<std::uint8_t>(v));
  } else if constexpr (std::is_integral_v<M> && std::is_signed_v<M>) {
    p.sint(v);
  } else if constexpr (std::is_integral_v<M>) {
    p.uint(v);
  } else if constexpr (is_list<M>) {
    p.array(static_cast<std::uint32_t>(v.size()));
    for (const auto& e : v) pack_element(p, e);
  } else if constexpr (As == text::str) {
    p.str(v);
  } else {
    p.bin(v);
  }
}

// The fields [0, To) of `v`.
template <typename T, std::size_t To = field_count<T>>
void pack_fields(writer& p, const T& v) {
  for_each_field<T, To>([&](auto i) {
    constexpr auto& f = std::get<i>(schema<T>::fields);
    pack_value<f.as>(p, v.*f.member);
  });
}

// Returns: whether E's optional fields (those past required_count) all hold their default.
template <typename E>
bool optional_fields_default(const E& e) {
  bool all = true;
  for_each_field<E>([&](auto i) {
    if constexpr (i >= required_count<E>) {
      constexpr auto& f = std::get<i>(schema<E>::fields);
      using M = std::remove_cvref_t<decltype(e.*f.member)>;
      all = all && e.*f.member == M{};
    }
  });
  return all;
}

template <typename E>
void pack_element(writer& p, const E& e) {
  if constexpr (required_count<E> < field_count<E>) {
    if (optional_fields_default(e)) {
      p.array(static_cast<std::uint32_t>(required_count<E>));
      pack_fields<E, required_count<E>>(p, e);
      return;
    }
  }
  p.array(static_cast<std::uint32_t>(field_count<E>));
  pack_fields(p, e);
}

template <typename M>
void pack_message(writer& p, const M& m) {
  pack_header(p, field_count<M>, schema<M>::type, m.job);
  pack_fields(p, m);
}

// A batch message up to its list, the schema's last field, which a builder then appends to.
template <typename M>
void pack_all_but_list(writer& p, const M& head) {
  constexpr auto n = field_count<M>;
  static_assert(is_list<std::remove_cvref_t<decltype(head.*std::get<n - 1>(schema<M>::fields).member)>>,
                "a builder appends to its message's last field, which must be the list");
  pack_header(p, n, schema<M>::type, head.job);
  pack_fields<M, n - 1>(p, head);
}

// ---- decoding -------------------------------------------------------------------------------

// Reads the fields of one msgpack array in order, turning every surprise into protocol_error.
// Fields beyond those read are a newer peer's additions: finish() skips them.
class array_reader {
 public:
  array_reader(detail::cursor& c, std::string_view what, std::size_t min_size, int depth)
      : c_(c), what_(what), depth_(depth) {
    if (depth_ <= 0) fail("nested too deeply");
    if (!c_.read_array(size_)) fail("not an array");
    if (size_ < min_size) fail(fmt::format("{} fields, expected at least {}", size_, min_size));
  }

  [[nodiscard]] std::uint32_t size() const { return size_; }
  [[nodiscard]] int depth() const { return depth_; }

  template <typename Int>
  Int integer() {
    take();
    detail::cursor::integer v;
    if (!c_.read_integer(v)) fail("expected an integer");
    if (!v.negative) {
      if (v.u > static_cast<std::uint64_t>(std::numeric_limits<Int>::max())) fail("integer out of range");
      return static_cast<Int>(v.u);
    }
    if constexpr (std::is_signed_v<Int>) {
      if (v.i < static_cast<std::int64_t>(std::numeric_limits<Int>::min())) fail("integer out of range");
      return static_cast<Int>(v.i);
    }
    fail("expected an integer");
  }

  bool boolean() {
    take();
    bool v = false;
    if (!c_.read_bool(v)) fail("expected a boolean");
    return v;
  }

  // Strings and binaries are both accepted as bytes.
  std::string_view bytes() {
    take();
    std::string_view v;
    if (!c_.read_bytes(v)) fail("expected bytes");
    return v;
  }

  task_status status() {
    auto v = integer<std::uint8_t>();
    if (v > static_cast<std::uint8_t>(task_status::too_large)) fail(fmt::format("unknown task status {}", v));
    return static_cast<task_status>(v);
  }

  // Returns: the number of elements of the array field `name`, each to be read next.
  std::uint32_t array(std::string_view name) {
    take();
    std::uint32_t n = 0;
    if (!c_.read_array(n)) fail(fmt::format("{} is not an array", name));
    return n;
  }

  // Skips the fields not read.
  void finish() {
    for (; pos_ < size_; ++pos_) c_.skip(depth_ - 1);
  }

  [[noreturn]] void fail(std::string_view why) const {
    // The envelope reader has no name of its own: "malformed message", not "malformed message message".
    throw protocol_error(what_.empty() ? fmt::format("malformed message: {}", why)
                                       : fmt::format("malformed {} message: {}", what_, why));
  }

 private:
  void take() {
    if (pos_ >= size_) fail("missing field");
    ++pos_;
  }

  detail::cursor& c_;
  std::string_view what_;
  int depth_;
  std::uint32_t size_ = 0;
  std::uint32_t pos_ = 0;
};

template <typename T>
void read_fields(detail::cursor& c, array_reader& r, T& out);

// Reads the list field `name` of `parent`: elements each an array of at least the fields their
// schema has, into owned structs or views.
template <typename E>
void read_list(detail::cursor& c, array_reader& parent, std::string_view name, std::vector<E>& out) {
  const auto n = parent.array(name);
  // Reserved up front only as far as a batch normally goes, and never beyond what the rest of
  // the frame can hold (an element is an array header and its fields, a byte each at least):
  // a hostile length costs memory only for elements that really are there.
  out.reserve(std::min({std::size_t{n}, c.remaining() / (required_count<E> + 1), std::size_t{1} << 16}));
  for (std::uint32_t i = 0; i < n; ++i) {
    array_reader r(c, schema<E>::name, required_count<E>, parent.depth() - 1);
    read_fields(c, r, out.emplace_back());
    r.finish();
  }
}

template <typename M>
void read_value(detail::cursor& c, array_reader& r, std::string_view name, M& out) {
  if constexpr (std::is_same_v<M, bool>) {
    out = r.boolean();
  } else if constexpr (std::is_same_v<M, task_status>) {
    out = r.status();
  } else if constexpr (std::is_integral_v<M>) {
    out = r.integer<M>();
  } else if constexpr (is_list<M>) {
    read_list(c, r, name, out);
  } else {
    out = r.bytes(); // a copy into a std::string, or a view into the frame
  }
}

// Reads T's fields in schema order, each checked once read.
template <typename T>
void read_fields(detail::cursor& c, array_reader& r, T& out) {
  for_each_field<T>([&](auto i) {
    constexpr auto& f = std::get<i>(schema<T>::fields);
    if constexpr (i >= required_count<T>) {
      // An optional field the sender left out: the default (a reused element is reset).
      if (i >= r.size()) {
        out.*f.member = std::remove_cvref_t<decltype(out.*f.member)>{};
        return;
      }
    }
    read_value(c, r, f.name ? f.name : "", out.*f.member);
    // A plain `if`: GCC 12 does not take a function pointer's comparison with nullptr as a
    // constant expression at -O0 (the sanitizer build); optimised, the branch folds away.
    if (f.check != nullptr) {
      if (const char* why = f.check(out)) r.fail(why);
    }
  });
}

template <typename M>
message read_message(detail::cursor& c, std::uint64_t job, array_reader& r) {
  M m;
  m.job = job;
  read_fields(c, r, m);
  return m;
}

// Each message type's entry, in type order: msg_type n is the message variant's alternative n - 1.
struct message_kind {
  std::size_t body_fields; // the fields its type must have after the header
  message (*read)(detail::cursor&, std::uint64_t job, array_reader&);
};

template <std::size_t... I>
constexpr auto make_kinds(std::index_sequence<I...>) {
  using std::variant_alternative_t;
  static_assert(((schema<variant_alternative_t<I, message>>::type == static_cast<msg_type>(I + 1)) && ...),
                "the message variant lists the types in msg_type order");
  return std::array{message_kind{field_count<variant_alternative_t<I, message>>,
                                 &read_message<variant_alternative_t<I, message>>}...};
}

constexpr auto kinds = make_kinds(std::make_index_sequence<std::variant_size_v<message>>{});

} // namespace

void encode_to(std::string& out, const message& m) {
  out.clear();
  writer p(out);
  std::visit([&](const auto& body) { pack_message(p, body); }, m);
}

void encode_to(std::string& out, const sink_status& m) {
  out.clear();
  writer p(out);
  pack_message(p, m);
}

void batch_builder::open_list() {
  count_ = 0;
  count_at_ = frame_.size();
  frame_.append("\xdd\0\0\0\0", 5); // array32 with the length to come
}

std::string_view batch_builder::frame() {
  for (int i = 0; i < 4; ++i) frame_[count_at_ + 1 + i] = static_cast<char>((count_ >> (8 * (3 - i))) & 0xffu);
  return frame_;
}

void results_builder::start(std::uint64_t job, std::string_view worker) {
  job_ = job;
  frame_.clear();
  {
    writer p(frame_);
    pack_all_but_list(p, results_view{.job = job, .worker = worker});
  } // flushed
  open_list();
}

// The builders' add() are the throughput path (a call each per task and per result): every
// field's encoder is inlined into them, whatever the compiler would weigh it against elsewhere.
[[gnu::flatten]] void results_builder::add(const result& r) {
  writer p(frame_);
  pack_element(p, r);
  ++count_;
}

void tasks_builder::start(std::uint64_t job, std::uint64_t seq, std::string_view terminator,
                          std::string_view sink_endpoint, bool details) {
  job_ = job;
  frame_.clear();
  {
    writer p(frame_);
    pack_all_but_list(
        p, tasks_view{
               .job = job, .seq = seq, .terminator = terminator, .sink_endpoint = sink_endpoint, .details = details});
  } // flushed
  open_list();
}

[[gnu::flatten]] void tasks_builder::add(const task_view& t) {
  writer p(frame_);
  pack_element(p, t);
  ++count_;
}

std::string encode(const message& m) {
  std::string out;
  encode_to(out, m);
  return out;
}

namespace {

// Every container the cursor reads is bounded by the frame's size, and nesting by this depth.
constexpr int max_depth = 8;

void check_size(std::string_view frame, std::size_t max_bytes) {
  if (frame.empty()) throw protocol_error("malformed message: empty frame");
  if (frame.size() > max_bytes) {
    throw protocol_error(fmt::format("malformed message: {} bytes exceeds the limit of {}", frame.size(), max_bytes));
  }
}

struct envelope {
  msg_type type;
  std::uint64_t job;
};

// Reads version, type and job, and checks the message has the fields its type needs. The version
// comes first, before any other check: a peer of another version is told so (foreign_version()
// names the same frames), whatever the rest of its envelope looks like.
envelope read_envelope(array_reader& header) {
  if (header.size() > 0) {
    const auto version = header.integer<std::uint64_t>();
    if (version != protocol_version) {
      throw protocol_error(
          fmt::format("unsupported protocol version {} (this build speaks {})", version, protocol_version));
    }
  }
  if (header.size() < 3) header.fail(fmt::format("{} fields, expected at least 3", header.size()));
  const auto raw_type = header.integer<std::uint8_t>();
  const auto job = header.integer<std::uint64_t>();
  if (raw_type < 1 || raw_type > kinds.size()) {
    throw protocol_error(fmt::format("malformed message: unknown type {}", raw_type));
  }
  const auto body_fields = kinds[raw_type - 1].body_fields;
  if (header.size() < 3 + body_fields) {
    throw protocol_error(
        fmt::format("malformed message: type {} has {} fields, expected {}", raw_type, header.size(), 3 + body_fields));
  }
  return {static_cast<msg_type>(raw_type), job};
}

// After the body: skips fields a newer peer added, and refuses bytes after the message.
void finish(detail::cursor& c, array_reader& header) {
  header.finish();
  if (!c.at_end()) throw protocol_error("malformed message: trailing bytes after the message");
}

// Runs a decoder; running out of memory on a frame (millions of tiny list elements within
// --max-message-bytes) is that frame's fault: refused like any malformed frame, not a crash.
template <typename Decode>
auto refusing_huge(Decode decode) {
  try {
    return decode();
  } catch (const std::bad_alloc&) {
    throw protocol_error("malformed message: too large to decode in memory");
  }
}

// A reused batch keeps its capacity from frame to frame, unless a rare huge frame grew it.
template <typename T>
void clear_batch(std::vector<T>& v) {
  if (v.capacity() > (std::size_t{1} << 16))
    std::vector<T>().swap(v);
  else
    v.clear();
}

// Decodes a frame that must hold a message of type `expected`, its body read by `read_body`.
template <typename ReadBody>
void decode_expected(std::string_view frame, std::size_t max_bytes, msg_type expected, ReadBody read_body) {
  refusing_huge([&] {
    check_size(frame, max_bytes);
    detail::cursor c(frame);
    array_reader header(c, "", 0, max_depth);
    const auto env = read_envelope(header);
    if (env.type != expected) {
      throw protocol_error(fmt::format("malformed message: type {} where type {} was expected",
                                       static_cast<unsigned>(env.type), static_cast<unsigned>(expected)));
    }
    read_body(c, header, env.job);
    finish(c, header);
  });
}

// A batch decoded into views: all or nothing, as decode_results() and decode_tasks() promise.
template <typename View, typename List>
void decode_view(std::string_view frame, std::size_t max_bytes, View& out, List& list) {
  clear_batch(list);
  try {
    decode_expected(frame, max_bytes, schema<View>::type, [&](detail::cursor& c, array_reader& r, std::uint64_t job) {
      out.job = job;
      read_fields(c, r, out);
    });
  } catch (...) {
    list.clear(); // none of a malformed frame's elements may be used
    throw;
  }
}

} // namespace

message decode(std::string_view frame, std::size_t max_bytes) {
  return refusing_huge([&] {
    check_size(frame, max_bytes);
    detail::cursor c(frame);
    array_reader header(c, "", 0, max_depth);
    const auto env = read_envelope(header);
    auto m = kinds[static_cast<std::size_t>(env.type) - 1].read(c, env.job, header);
    finish(c, header);
    return m;
  });
}

void decode_results(std::string_view frame, results_view& out, std::size_t max_bytes) {
  decode_view(frame, max_bytes, out, out.results);
}

void decode_tasks(std::string_view frame, tasks_view& out, std::size_t max_bytes) {
  decode_view(frame, max_bytes, out, out.tasks);
}

std::optional<msg_type> peek_type(std::string_view frame) {
  try {
    detail::cursor c(frame);
    array_reader header(c, "", 0, max_depth);
    return read_envelope(header).type;
  } catch (const protocol_error&) {
    return std::nullopt;
  }
}

std::optional<std::uint64_t> foreign_version(std::string_view frame) {
  try {
    detail::cursor c(frame);
    std::uint32_t n = 0;
    if (!c.read_array(n) || n == 0) return std::nullopt;
    detail::cursor::integer v;
    if (!c.read_integer(v) || v.negative || v.u == protocol_version) return std::nullopt;
    return v.u;
  } catch (const protocol_error&) {
    return std::nullopt;
  }
}

result_view view_of(const result& r) {
  // The same schema lays out both, field for field.
  result_view v;
  for_each_field<result>([&](auto i) {
    v.*std::get<i>(schema<result_view>::fields).member = r.*std::get<i>(schema<result>::fields).member;
  });
  return v;
}

void append_id(std::vector<id_range>& runs, std::uint64_t id) {
  if (!runs.empty() && runs.back().first + runs.back().count == id) {
    ++runs.back().count;
  } else {
    runs.push_back(id_range{.first = id, .count = 1});
  }
}

std::string_view to_string(task_status s) {
  switch (s) {
    case task_status::ok: return "ok";
    case task_status::failed: return "failed";
    case task_status::signalled: return "signalled";
    case task_status::not_started: return "not started";
    case task_status::timed_out: return "timed out";
    case task_status::crashed: return "crashed";
    case task_status::too_large: return "too large";
  }
  return "unknown";
}

} // namespace mtask::wire
