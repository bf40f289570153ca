// msgpack encoding and defensive decoding of the wire protocol.
#include "mtask/wire.hpp"

#include "mtask/error.hpp"

#include <fmt/format.h>
#include <msgpack.hpp>

#include <limits>

namespace mtask::wire {
namespace {

// msgpack's packer writes into anything with write(); appending to a caller's string lets the hot
// paths reuse one buffer instead of allocating and copying per message.
struct string_sink {
  std::string& out;
  void write(const char* data, std::size_t size) { out.append(data, size); }
};
using packer = msgpack::packer<string_sink>;

void pack_bytes(packer& p, std::string_view s) {
  p.pack_bin(static_cast<std::uint32_t>(s.size()));
  p.pack_bin_body(s.data(), static_cast<std::uint32_t>(s.size()));
}

void pack_header(packer& p, std::size_t fields, msg_type t, std::uint64_t job) {
  p.pack_array(static_cast<std::uint32_t>(3 + fields));
  p.pack(protocol_version);
  p.pack(static_cast<std::uint8_t>(t));
  p.pack(job);
}

void pack_body(packer& p, const worker_status& m) {
  pack_header(p, 6, msg_type::worker_status, m.job);
  p.pack(m.name);
  p.pack(m.slots);
  p.pack(m.free);
  p.pack(m.received);
  p.pack(m.completed_job);
  p.pack(m.busy);
}

void pack_body(packer& p, const worker_bye& m) { pack_header(p, 0, msg_type::worker_bye, m.job); }

void pack_body(packer& p, const tasks_msg& m) {
  pack_header(p, 3, msg_type::tasks, m.job);
  pack_bytes(p, m.terminator);
  p.pack(m.sink_endpoint);
  p.pack_array(static_cast<std::uint32_t>(m.tasks.size()));
  for (const auto& t : m.tasks) {
    p.pack_array(4);
    p.pack(t.id);
    p.pack(t.attempt);
    pack_bytes(p, t.payload);
    p.pack(t.retries_left);
  }
}

void pack_body(packer& p, const vent_status& m) {
  pack_header(p, 1, msg_type::vent_status, m.job);
  p.pack(m.complete);
}

void pack_body(packer& p, const job_info& m) {
  pack_header(p, 1, msg_type::job_info, m.job);
  p.pack(m.total);
}

void pack_body(packer& p, const sink_status& m) {
  pack_header(p, 3, msg_type::sink_status, m.job);
  p.pack(m.written_below);
  p.pack_array(static_cast<std::uint32_t>(m.acks.size()));
  for (const auto& a : m.acks) {
    p.pack_array(3);
    p.pack(a.id);
    p.pack(a.attempt);
    p.pack(static_cast<std::uint8_t>(a.status));
  }
  p.pack_array(static_cast<std::uint32_t>(m.done.size()));
  for (const auto& r : m.done) {
    p.pack_array(2);
    p.pack(r.first);
    p.pack(r.count);
  }
}

void pack_body(packer& p, const complete& m) {
  pack_header(p, 2, msg_type::complete, m.job);
  p.pack(m.total);
  p.pack(m.failed);
}

void pack_body(packer& p, const complete_ack& m) { pack_header(p, 0, msg_type::complete_ack, m.job); }

void pack_body(packer& p, const abort_msg& m) {
  pack_header(p, 1, msg_type::abort, m.job);
  p.pack(m.reason);
}

void pack_body(packer& p, const results_msg& m) {
  pack_header(p, 2, msg_type::results, m.job);
  p.pack(m.worker);
  p.pack_array(static_cast<std::uint32_t>(m.results.size()));
  for (const auto& r : m.results) {
    p.pack_array(9);
    p.pack(r.id);
    p.pack(r.attempt);
    p.pack(static_cast<std::uint8_t>(r.status));
    p.pack(r.code);
    pack_bytes(p, r.output);
    pack_bytes(p, r.error);
    p.pack(r.runtime_us);
    p.pack(r.retries_left);
    pack_bytes(p, r.payload);
  }
}

// Reads the fields of one msgpack array in order, turning every surprise into protocol_error.
class fields {
 public:
  fields(const msgpack::object& o, std::string_view what, std::size_t min_size) : what_(what) {
    if (o.type != msgpack::type::ARRAY) fail("not an array");
    arr_ = o.via.array;
    if (arr_.size < min_size) fail(fmt::format("{} fields, expected at least {}", arr_.size, min_size));
  }

  const msgpack::object& next() {
    if (pos_ >= arr_.size) fail("missing field");
    return arr_.ptr[pos_++];
  }

  template <typename Int>
  Int integer() {
    const auto& o = next();
    if (o.type == msgpack::type::POSITIVE_INTEGER) {
      if (o.via.u64 > static_cast<std::uint64_t>(std::numeric_limits<Int>::max())) fail("integer out of range");
      return static_cast<Int>(o.via.u64);
    }
    if (o.type == msgpack::type::NEGATIVE_INTEGER) {
      if constexpr (std::is_signed_v<Int>) {
        if (o.via.i64 < static_cast<std::int64_t>(std::numeric_limits<Int>::min())) fail("integer out of range");
        return static_cast<Int>(o.via.i64);
      }
    }
    fail("expected an integer");
  }

  bool boolean() {
    const auto& o = next();
    if (o.type != msgpack::type::BOOLEAN) fail("expected a boolean");
    return o.via.boolean;
  }

  // Strings and binaries are both accepted as bytes.
  std::string bytes() {
    const auto& o = next();
    if (o.type == msgpack::type::BIN) return std::string(o.via.bin.ptr, o.via.bin.size);
    if (o.type == msgpack::type::STR) return std::string(o.via.str.ptr, o.via.str.size);
    fail("expected bytes");
  }

  task_status status() {
    auto v = integer<std::uint8_t>();
    if (v > static_cast<std::uint8_t>(task_status::crashed)) fail(fmt::format("unknown task status {}", v));
    return static_cast<task_status>(v);
  }

  const msgpack::object_array& array(std::string_view name) {
    const auto& o = next();
    if (o.type != msgpack::type::ARRAY) fail(fmt::format("{} is not an array", name));
    return o.via.array;
  }

  [[noreturn]] void fail(std::string_view why) const {
    // The envelope reader has no name of its own: "malformed message", not "malformed message message".
    throw protocol_error(what_.empty() ? fmt::format("malformed message: {}", why)
                                       : fmt::format("malformed {} message: {}", what_, why));
  }

 private:
  std::string_view what_;
  msgpack::object_array arr_{};
  std::uint32_t pos_ = 0;
};

message decode_body(msg_type type, std::uint64_t job, fields& f) {
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
      const auto& list = f.array("tasks");
      m.tasks.reserve(list.size);
      for (std::uint32_t i = 0; i < list.size; ++i) {
        fields t(list.ptr[i], "task", 4);
        auto& out = m.tasks.emplace_back();
        out.id = t.integer<std::uint64_t>();
        out.attempt = t.integer<std::uint32_t>();
        out.payload = t.bytes();
        out.retries_left = t.integer<std::uint32_t>();
      }
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
      const auto& list = f.array("acks");
      m.acks.reserve(list.size);
      for (std::uint32_t i = 0; i < list.size; ++i) {
        fields a(list.ptr[i], "ack", 3);
        auto& out = m.acks.emplace_back();
        out.id = a.integer<std::uint64_t>();
        out.attempt = a.integer<std::uint32_t>();
        out.status = a.status();
      }
      const auto& runs = f.array("done");
      m.done.reserve(runs.size);
      for (std::uint32_t i = 0; i < runs.size; ++i) {
        fields r(runs.ptr[i], "id range", 2);
        auto& out = m.done.emplace_back();
        out.first = r.integer<std::uint64_t>();
        out.count = r.integer<std::uint64_t>();
        if (out.count > std::numeric_limits<std::uint64_t>::max() - out.first) r.fail("range overflows");
      }
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
      const auto& list = f.array("results");
      m.results.reserve(list.size);
      for (std::uint32_t i = 0; i < list.size; ++i) {
        fields r(list.ptr[i], "result", 9);
        auto& out = m.results.emplace_back();
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
  string_sink sink{out};
  packer p(sink);
  std::visit([&](const auto& body) { pack_body(p, body); }, m);
}

namespace {

template <typename Body>
void encode_body(std::string& out, const Body& m) {
  out.clear();
  string_sink sink{out};
  packer p(sink);
  pack_body(p, m);
}

} // namespace

void encode_to(std::string& out, const tasks_msg& m) { encode_body(out, m); }
void encode_to(std::string& out, const results_msg& m) { encode_body(out, m); }
void encode_to(std::string& out, const sink_status& m) { encode_body(out, m); }

std::string encode(const message& m) {
  std::string out;
  encode_to(out, m);
  return out;
}

message decode(std::string_view frame, std::size_t max_bytes) {
  if (frame.empty()) throw protocol_error("malformed message: empty frame");
  if (frame.size() > max_bytes) {
    throw protocol_error(fmt::format("malformed message: {} bytes exceeds the limit of {}", frame.size(), max_bytes));
  }
  // Bound every container so a hostile length prefix cannot make the unpacker allocate wildly.
  const auto n = static_cast<std::size_t>(frame.size());
  msgpack::unpack_limit limit(n, n, n, n, n, 8);
  msgpack::object_handle handle;
  try {
    std::size_t offset = 0;
    // Strings and binaries stay views into `frame` (no copy into the unpacker's zone): every field
    // is copied out into our structs before this function returns.
    const auto by_reference = [](msgpack::type::object_type, std::size_t, void*) { return true; };
    handle = msgpack::unpack(frame.data(), frame.size(), offset, by_reference, nullptr, limit);
    if (offset != frame.size()) throw protocol_error("malformed message: trailing bytes after the message");
  } catch (const protocol_error&) {
    throw;
  } catch (const std::exception& e) {
    throw protocol_error(fmt::format("malformed message: {}", e.what()));
  }
  const msgpack::object& root = handle.get();
  fields header(root, "", 3);
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
  if (root.via.array.size < 3 + body_fields(type)) {
    throw protocol_error(fmt::format("malformed message: type {} has {} fields, expected {}", raw_type,
                                     root.via.array.size, 3 + body_fields(type)));
  }
  return decode_body(type, job, header);
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
  }
  return "unknown";
}

} // namespace mtask::wire
