// msgpack encoding and defensive decoding of the wire protocol.
#include "mtask/wire.hpp"

#include "msgpack_cursor.hpp"
#include "mtask/error.hpp"

#include <fmt/format.h>
#include <msgpack.hpp>

#include <algorithm>
#include <cstring>
#include <limits>
#include <new>

namespace mtask::wire {
namespace {

// msgpack-c's packer writes every field through its sink's write(): gathered in a local buffer,
// a result's nine fields reach the string in one or two appends instead of one each (appending
// per field was a fifth of the worker's time with micro-tasks).
class buffered_sink {
 public:
  explicit buffered_sink(std::string& out) : out_(out) {}
  ~buffered_sink() { flush(); }
  void write(const char* data, std::size_t size) {
    if (size > sizeof buf_ - len_) {
      flush();
      if (size > sizeof buf_ / 2) {
        out_.append(data, size);
        return;
      }
    }
    std::memcpy(buf_ + len_, data, size);
    len_ += size;
  }
  void flush() {
    out_.append(buf_, len_);
    len_ = 0;
  }

 private:
  std::string& out_;
  char buf_[256];
  std::size_t len_ = 0;
};

// The packer calls the encoders below make, by msgpack type.
class writer {
 public:
  explicit writer(std::string& out) : sink_(out), p_(sink_) {}
  void array(std::uint32_t n) { p_.pack_array(n); }
  void uint(std::uint64_t v) { p_.pack(v); }
  void sint(std::int64_t v) { p_.pack(v); }
  void boolean(bool v) { p_.pack(v); }
  void str(std::string_view s) {
    p_.pack_str(static_cast<std::uint32_t>(s.size()));
    p_.pack_str_body(s.data(), static_cast<std::uint32_t>(s.size()));
  }
  void bin(std::string_view s) {
    p_.pack_bin(static_cast<std::uint32_t>(s.size()));
    p_.pack_bin_body(s.data(), static_cast<std::uint32_t>(s.size()));
  }

 private:
  buffered_sink sink_;
  msgpack::packer<buffered_sink> p_;
};

void pack_header(writer& p, std::size_t fields, msg_type t, std::uint64_t job) {
  p.array(static_cast<std::uint32_t>(3 + fields));
  p.uint(protocol_version);
  p.uint(static_cast<std::uint8_t>(t));
  p.uint(job);
}

void pack_body(writer& p, const worker_status& m) {
  pack_header(p, 6, msg_type::worker_status, m.job);
  p.str(m.name);
  p.uint(m.slots);
  p.uint(m.free);
  p.uint(m.received);
  p.uint(m.completed_job);
  p.uint(m.busy);
}

void pack_body(writer& p, const worker_bye& m) { pack_header(p, 0, msg_type::worker_bye, m.job); }

void pack_task(writer& p, std::uint64_t id, std::uint32_t attempt, std::string_view payload,
               std::uint32_t retries_left) {
  p.array(4);
  p.uint(id);
  p.uint(attempt);
  p.bin(payload);
  p.uint(retries_left);
}

void pack_body(writer& p, const tasks_msg& m) {
  pack_header(p, 3, msg_type::tasks, m.job);
  p.bin(m.terminator);
  p.str(m.sink_endpoint);
  p.array(static_cast<std::uint32_t>(m.tasks.size()));
  for (const auto& t : m.tasks) pack_task(p, t.id, t.attempt, t.payload, t.retries_left);
}

void pack_body(writer& p, const vent_status& m) {
  pack_header(p, 1, msg_type::vent_status, m.job);
  p.boolean(m.complete);
}

void pack_body(writer& p, const job_info& m) {
  pack_header(p, 1, msg_type::job_info, m.job);
  p.sint(m.total);
}

void pack_body(writer& p, const sink_status& m) {
  pack_header(p, m.held_back ? 4 : 3, msg_type::sink_status, m.job);
  p.uint(m.written_below);
  p.array(static_cast<std::uint32_t>(m.acks.size()));
  for (const auto& a : m.acks) {
    p.array(3);
    p.uint(a.id);
    p.uint(a.attempt);
    p.uint(static_cast<std::uint8_t>(a.status));
  }
  p.array(static_cast<std::uint32_t>(m.done.size()));
  for (const auto& r : m.done) {
    p.array(2);
    p.uint(r.first);
    p.uint(r.count);
  }
  if (m.held_back) p.boolean(true);
}

void pack_body(writer& p, const complete& m) {
  pack_header(p, 2, msg_type::complete, m.job);
  p.uint(m.total);
  p.uint(m.failed);
}

void pack_body(writer& p, const complete_ack& m) { pack_header(p, 0, msg_type::complete_ack, m.job); }

void pack_body(writer& p, const abort_msg& m) {
  pack_header(p, 1, msg_type::abort, m.job);
  p.str(m.reason);
}

void pack_result(writer& p, const result& r) {
  p.array(9);
  p.uint(r.id);
  p.uint(r.attempt);
  p.uint(static_cast<std::uint8_t>(r.status));
  p.sint(r.code);
  p.bin(r.output);
  p.bin(r.error);
  p.uint(r.runtime_us);
  p.uint(r.retries_left);
  p.bin(r.payload);
}

void pack_body(writer& p, const results_msg& m) {
  pack_header(p, 2, msg_type::results, m.job);
  p.str(m.worker);
  p.array(static_cast<std::uint32_t>(m.results.size()));
  for (const auto& r : m.results) pack_result(p, r);
}

// Reads the fields of one msgpack array in order, turning every surprise into protocol_error.
// Fields beyond those read are a newer peer's additions: finish() skips them.
class fields {
 public:
  fields(detail::cursor& c, std::string_view what, std::size_t min_size, int depth)
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

// Reads `n` elements of a list field, each an array of at least `min_size` fields, with `read`.
template <typename T, typename Read>
void read_list(detail::cursor& c, const fields& parent, std::uint32_t n, std::string_view what, std::size_t min_size,
               std::vector<T>& out, Read read) {
  // Reserved up front only as far as a batch normally goes, and never beyond what the rest of
  // the frame can hold (an element is an array header and min_size fields, a byte each at least):
  // a hostile length costs memory only for elements that really are there.
  out.reserve(std::min({std::size_t{n}, c.remaining() / (min_size + 1), std::size_t{1} << 16}));
  for (std::uint32_t i = 0; i < n; ++i) {
    fields f(c, what, min_size, parent.depth() - 1);
    read(f, out.emplace_back());
    f.finish();
  }
}

// One task's fields, into a task (payload copied) or a task_view (a view into the frame).
template <typename Task>
void read_task(fields& t, Task& out) {
  out.id = t.integer<std::uint64_t>();
  out.attempt = t.integer<std::uint32_t>();
  out.payload = t.bytes();
  out.retries_left = t.integer<std::uint32_t>();
}

// One result's fields, into a result (strings copied) or a result_view (views into the frame).
template <typename Result>
void read_result(fields& r, Result& out) {
  out.id = r.integer<std::uint64_t>();
  out.attempt = r.integer<std::uint32_t>();
  out.status = r.status();
  out.code = r.integer<std::int32_t>();
  out.output = r.bytes();
  out.error = r.bytes();
  out.runtime_us = r.integer<std::uint64_t>();
  out.retries_left = r.integer<std::uint32_t>();
  out.payload = r.bytes();
}

message decode_body(detail::cursor& c, msg_type type, std::uint64_t job, fields& f) {
  switch (type) {
    case msg_type::worker_status: {
      worker_status m{.job = job};
      m.name = f.bytes();
      m.slots = f.integer<std::uint32_t>();
      m.free = f.integer<std::uint32_t>();
      m.received = f.integer<std::uint64_t>();
      m.completed_job = f.integer<std::uint64_t>();
      m.busy = f.integer<std::uint32_t>();
      return m;
    }
    case msg_type::worker_bye: return worker_bye{.job = job};
    case msg_type::tasks: {
      tasks_msg m{.job = job};
      m.terminator = f.bytes();
      m.sink_endpoint = f.bytes();
      read_list(c, f, f.array("tasks"), "task", 4, m.tasks, read_task<task>);
      return m;
    }
    case msg_type::vent_status: {
      vent_status m{.job = job};
      m.complete = f.boolean();
      return m;
    }
    case msg_type::job_info: {
      job_info m{.job = job};
      m.total = f.integer<std::int64_t>();
      if (m.total < -1) f.fail("negative total");
      return m;
    }
    case msg_type::sink_status: {
      sink_status m{.job = job};
      m.written_below = f.integer<std::uint64_t>();
      read_list(c, f, f.array("acks"), "ack", 3, m.acks, [](fields& a, ack& out) {
        out.id = a.integer<std::uint64_t>();
        out.attempt = a.integer<std::uint32_t>();
        out.status = a.status();
      });
      read_list(c, f, f.array("done"), "id range", 2, m.done, [](fields& r, id_range& out) {
        out.first = r.integer<std::uint64_t>();
        out.count = r.integer<std::uint64_t>();
        if (out.count > std::numeric_limits<std::uint64_t>::max() - out.first) r.fail("range overflows");
      });
      if (f.size() > 3 + 3) m.held_back = f.boolean(); // optional: sent only when true
      return m;
    }
    case msg_type::complete: {
      complete m{.job = job};
      m.total = f.integer<std::uint64_t>();
      m.failed = f.integer<std::uint64_t>();
      return m;
    }
    case msg_type::complete_ack: return complete_ack{.job = job};
    case msg_type::abort: {
      abort_msg m{.job = job};
      m.reason = f.bytes();
      return m;
    }
    case msg_type::results: {
      results_msg m{.job = job};
      m.worker = f.bytes();
      read_list(c, f, f.array("results"), "result", 9, m.results, read_result<result>);
      return m;
    }
  }
  throw protocol_error(fmt::format("unknown message type {}", static_cast<unsigned>(type)));
}

// The number of fields each message type must have after the header.
std::size_t body_fields(msg_type t) {
  switch (t) {
    case msg_type::worker_status: return 6;
    case msg_type::tasks: return 3;
    case msg_type::vent_status: return 1;
    case msg_type::job_info: return 1;
    case msg_type::sink_status: return 3;
    case msg_type::complete: return 2;
    case msg_type::results: return 2;
    case msg_type::abort: return 1;
    case msg_type::worker_bye:
    case msg_type::complete_ack: return 0;
  }
  return 0;
}

} // namespace

void encode_to(std::string& out, const message& m) {
  out.clear();
  writer p(out);
  std::visit([&](const auto& body) { pack_body(p, body); }, m);
}

void encode_to(std::string& out, const sink_status& m) {
  out.clear();
  writer p(out);
  pack_body(p, m);
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
    pack_header(p, 2, msg_type::results, job);
    p.str(worker);
  } // flushed
  open_list();
}

void results_builder::add(const result& r) {
  writer p(frame_);
  pack_result(p, r);
  ++count_;
}

void tasks_builder::start(std::uint64_t job, std::string_view terminator, std::string_view sink_endpoint) {
  job_ = job;
  frame_.clear();
  {
    writer p(frame_);
    pack_header(p, 3, msg_type::tasks, job);
    p.bin(terminator);
    p.str(sink_endpoint);
  } // flushed
  open_list();
}

void tasks_builder::add(const task_view& t) {
  writer p(frame_);
  pack_task(p, t.id, t.attempt, t.payload, t.retries_left);
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

// Reads version, type and job, and checks the message has the fields its type needs.
envelope read_envelope(fields& header) {
  auto version = header.integer<std::uint32_t>();
  if (version != protocol_version) {
    throw protocol_error(
        fmt::format("unsupported protocol version {} (this build speaks {})", version, protocol_version));
  }
  auto raw_type = header.integer<std::uint8_t>();
  auto job = header.integer<std::uint64_t>();
  if (raw_type < 1 || raw_type > static_cast<std::uint8_t>(msg_type::abort)) {
    throw protocol_error(fmt::format("malformed message: unknown type {}", raw_type));
  }
  auto type = static_cast<msg_type>(raw_type);
  if (header.size() < 3 + body_fields(type)) {
    throw protocol_error(fmt::format("malformed message: type {} has {} fields, expected {}", raw_type, header.size(),
                                     3 + body_fields(type)));
  }
  return {type, job};
}

// After the body: skips fields a newer peer added, and refuses bytes after the message.
void finish(detail::cursor& c, fields& header) {
  header.finish();
  if (!c.at_end()) throw protocol_error("malformed message: trailing bytes after the message");
}

} // namespace

namespace {

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

} // namespace

message decode(std::string_view frame, std::size_t max_bytes) {
  return refusing_huge([&] {
    check_size(frame, max_bytes);
    detail::cursor c(frame);
    fields header(c, "", 3, max_depth);
    const auto env = read_envelope(header);
    auto m = decode_body(c, env.type, env.job, header);
    finish(c, header);
    return m;
  });
}

namespace {

// Decodes a frame that must hold a message of type `expected`, its body read by `read_body`.
template <typename ReadBody>
void decode_expected(std::string_view frame, std::size_t max_bytes, msg_type expected, ReadBody read_body) {
  refusing_huge([&] {
    check_size(frame, max_bytes);
    detail::cursor c(frame);
    fields header(c, "", 3, max_depth);
    const auto env = read_envelope(header);
    if (env.type != expected) {
      throw protocol_error(fmt::format("malformed message: type {} where type {} was expected",
                                       static_cast<unsigned>(env.type), static_cast<unsigned>(expected)));
    }
    read_body(c, header, env.job);
    finish(c, header);
  });
}

} // namespace

void decode_results(std::string_view frame, results_view& out, std::size_t max_bytes) {
  clear_batch(out.results);
  try {
    decode_expected(frame, max_bytes, msg_type::results, [&](detail::cursor& c, fields& f, std::uint64_t job) {
      out.job = job;
      out.worker = f.bytes();
      read_list(c, f, f.array("results"), "result", 9, out.results, read_result<result_view>);
    });
  } catch (...) {
    out.results.clear(); // none of a malformed frame's results may be used
    throw;
  }
}

void decode_tasks(std::string_view frame, tasks_view& out, std::size_t max_bytes) {
  clear_batch(out.tasks);
  try {
    decode_expected(frame, max_bytes, msg_type::tasks, [&](detail::cursor& c, fields& f, std::uint64_t job) {
      out.job = job;
      out.terminator = f.bytes();
      out.sink_endpoint = f.bytes();
      read_list(c, f, f.array("tasks"), "task", 4, out.tasks, read_task<task_view>);
    });
  } catch (...) {
    out.tasks.clear(); // none of a malformed frame's tasks may be used
    throw;
  }
}

std::optional<msg_type> peek_type(std::string_view frame) {
  try {
    detail::cursor c(frame);
    fields header(c, "", 3, max_depth);
    return read_envelope(header).type;
  } catch (const protocol_error&) {
    return std::nullopt;
  }
}

result_view view_of(const result& r) {
  return result_view{.id = r.id,
                     .attempt = r.attempt,
                     .status = r.status,
                     .code = r.code,
                     .output = r.output,
                     .error = r.error,
                     .runtime_us = r.runtime_us,
                     .retries_left = r.retries_left,
                     .payload = r.payload};
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
