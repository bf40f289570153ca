// The sink's journal as bytes (see journal.hpp): little-endian records framed by length and
// CRC-32, read back into a state, compacted into a snapshot.
#include "sink/journal.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <iterator>

namespace mtask::journal {
namespace {

enum class record_type : std::uint8_t { header = 1, commit = 2, complete = 3, batch = 4, job = 64 };
// From this type on, a reader that does not know a record skips it (the ventilator's restart will
// add records of its own; an older sink can still resume from such a journal).
constexpr std::uint8_t first_optional_type = 64;
constexpr std::string_view magic = "MTASKJNL";
constexpr std::size_t frame_bytes = 8; // length + CRC

constexpr std::array<std::uint32_t, 256> crc_table = [] {
  std::array<std::uint32_t, 256> t{};
  for (std::uint32_t i = 0; i < 256; ++i) {
    std::uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) != 0 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
    t[i] = c;
  }
  return t;
}();

void put_u8(std::string& out, std::uint8_t v) { out.push_back(static_cast<char>(v)); }
void put_u32(std::string& out, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
}
void put_u64(std::string& out, std::uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
}
void put_str(std::string& out, std::string_view s) {
  put_u32(out, static_cast<std::uint32_t>(s.size()));
  out.append(s);
}

// Frames the body that `fill` appends: its length and CRC go in front once it is known.
template <typename F>
void framed(std::string& out, record_type type, F&& fill) {
  const auto start = out.size();
  out.append(frame_bytes, '\0');
  put_u8(out, static_cast<std::uint8_t>(type));
  fill(out);
  const std::string_view body(out.data() + start + frame_bytes, out.size() - start - frame_bytes);
  std::string frame;
  put_u32(frame, static_cast<std::uint32_t>(body.size()));
  put_u32(frame, crc32(body));
  out.replace(start, frame_bytes, frame);
}

// Reads a record's body; every overrun is a corrupt record (its CRC matched, so a writer bug or a
// foreign file, not a torn write).
class reader {
 public:
  explicit reader(std::string_view bytes) : bytes_(bytes) {}
  std::uint8_t u8() { return static_cast<std::uint8_t>(take(1)[0]); }
  std::uint32_t u32() {
    auto b = take(4);
    std::uint32_t v = 0;
    for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<std::uint8_t>(b[static_cast<std::size_t>(i)]);
    return v;
  }
  std::uint64_t u64() {
    auto b = take(8);
    std::uint64_t v = 0;
    for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<std::uint8_t>(b[static_cast<std::size_t>(i)]);
    return v;
  }
  std::string str() { return std::string(take(u32())); }
  // A count of items of at least `min_bytes` each, bounded by what is left.
  std::uint32_t count(std::size_t min_bytes) {
    const auto n = u32();
    if (n > (bytes_.size() - pos_) / min_bytes)
      throw corrupt(fmt::format("a count of {} items overruns its record", n));
    return n;
  }
  [[nodiscard]] bool done() const { return pos_ == bytes_.size(); }

 private:
  std::string_view take(std::size_t n) {
    if (n > bytes_.size() - pos_) throw corrupt("a record is shorter than its fields");
    auto s = bytes_.substr(pos_, n);
    pos_ += n;
    return s;
  }
  std::string_view bytes_;
  std::size_t pos_ = 0;
};

header read_header(reader& r) {
  if (std::string_view(r.str()) != magic) throw corrupt("not an mtask journal");
  if (auto v = r.u32(); v != format_version) {
    throw corrupt(fmt::format("journal format {} (this sink reads format {})", v, format_version));
  }
  header h;
  h.routing_id = r.str();
  h.output_path = r.str();
  h.output_dev = r.u64();
  h.output_ino = r.u64();
  h.keep_order = r.u8() != 0;
  h.jsonl = r.u8() != 0;
  h.failures_path = r.str();
  return h;
}

commit read_commit(reader& r) {
  commit c;
  c.job = r.u64();
  c.output_end = r.u64();
  c.failures_end = r.u64();
  c.written_below = r.u64();
  c.failed = r.u64();
  const auto runs = r.count(16);
  c.final_ids.reserve(runs);
  for (std::uint32_t i = 0; i < runs; ++i) {
    const auto first = r.u64();
    const auto count = r.u64();
    // A checksummed record can still be a bug's or an attacker's: no empty or wrapping runs.
    if (count == 0 || first + count < first)
      throw corrupt(fmt::format("a run of ids [{}, +{}) that is not one", first, count));
    c.final_ids.push_back(wire::id_range{.first = first, .count = count});
  }
  const auto held = r.count(12);
  for (std::uint32_t i = 0; i < held; ++i) {
    const auto id = r.u64();
    c.held.push_back(held_result{.id = id, .bytes = r.str()});
  }
  if (!r.done()) {
    if (r.u8() != 1) throw corrupt("a commit with unknown fields after its results");
    c.aggregate = r.str();
  }
  if (!r.done()) throw corrupt("a commit longer than its fields");
  return c;
}

struct frame_view {
  std::size_t length = 0; // of the body
  std::uint32_t crc = 0;
};

std::optional<frame_view> frame_at(std::string_view bytes, std::size_t pos) {
  if (bytes.size() - pos < frame_bytes) return std::nullopt;
  reader r(bytes.substr(pos, frame_bytes));
  frame_view f;
  f.length = r.u32();
  f.crc = r.u32();
  return f;
}

// A whole, checksummed record of a known type starts at `pos`.
bool plausible_record_at(std::string_view bytes, std::size_t pos) {
  auto f = frame_at(bytes, pos);
  if (!f || f->length == 0 || f->length > bytes.size() - pos - frame_bytes) return false;
  const auto body = bytes.substr(pos + frame_bytes, f->length);
  const auto type = static_cast<std::uint8_t>(body[0]);
  return ((type >= 1 && type <= 4) || type == static_cast<std::uint8_t>(record_type::job)) && crc32(body) == f->crc;
}

// A bad record at `pos` is a torn tail only if nothing good comes after it: a torn write is the
// last one, while a damaged record (say, a flipped bit in a length) in the middle leaves whole
// records behind it.
bool only_torn_after(std::string_view bytes, std::size_t pos) {
  for (std::size_t p = pos + 1; p + frame_bytes < bytes.size(); ++p) {
    if (plausible_record_at(bytes, p)) return false;
  }
  return true;
}

} // namespace

std::uint32_t crc32(std::string_view bytes) {
  std::uint32_t c = 0xFFFFFFFFu;
  for (char ch : bytes) c = crc_table[(c ^ static_cast<std::uint8_t>(ch)) & 0xFF] ^ (c >> 8);
  return c ^ 0xFFFFFFFFu;
}

void append_record(std::string& out, const header& h) {
  framed(out, record_type::header, [&](std::string& b) {
    put_str(b, magic);
    put_u32(b, format_version);
    put_str(b, h.routing_id);
    put_str(b, h.output_path);
    put_u64(b, h.output_dev);
    put_u64(b, h.output_ino);
    put_u8(b, h.keep_order ? 1 : 0);
    put_u8(b, h.jsonl ? 1 : 0);
    put_str(b, h.failures_path);
  });
}

void append_record(std::string& out, const commit& c) {
  framed(out, record_type::commit, [&](std::string& b) {
    put_u64(b, c.job);
    put_u64(b, c.output_end);
    put_u64(b, c.failures_end);
    put_u64(b, c.written_below);
    put_u64(b, c.failed);
    put_u32(b, static_cast<std::uint32_t>(c.final_ids.size()));
    for (const auto& run : c.final_ids) {
      put_u64(b, run.first);
      put_u64(b, run.count);
    }
    put_u32(b, static_cast<std::uint32_t>(c.held.size()));
    for (const auto& h : c.held) {
      put_u64(b, h.id);
      put_str(b, h.bytes);
    }
    if (c.aggregate) {
      put_u8(b, 1);
      put_str(b, *c.aggregate);
    }
  });
}

void append_record(std::string& out, const job_record& j) {
  framed(out, record_type::job, [&](std::string& b) {
    put_u64(b, j.job);
    put_str(b, j.fingerprint);
  });
}

void append_record(std::string& out, const completion& c) {
  framed(out, record_type::complete, [&](std::string& b) {
    put_u64(b, c.job);
    put_u64(b, c.total);
    put_u64(b, c.failed);
  });
}

// ---- state ----

void state::apply(const commit& c) {
  if (job != 0 && c.job != job) throw corrupt(fmt::format("records of two jobs ({:016x} and {:016x})", job, c.job));
  if (c.output_end < output_end || c.failures_end < failures_end || c.written_below < written_below) {
    throw corrupt("a record moves the output's end backwards");
  }
  job = c.job;
  output_end = c.output_end;
  failures_end = c.failures_end;
  written_below = c.written_below;
  failed = c.failed;
  if (c.aggregate) aggregate = c.aggregate;
  for (const auto& run : c.final_ids) final_ids.insert(run.first, run.count);
  for (const auto& h : c.held) {
    auto [it, added] = held.try_emplace(h.id, h.bytes);
    if (added) held_bytes += h.bytes.size();
  }
  const auto below = held.lower_bound(written_below);
  for (auto it = held.begin(); it != below; ++it) held_bytes -= it->second.size();
  held.erase(held.begin(), below);
}

void state::apply(const job_record& j) {
  if (j.job == 0) throw corrupt("a job record without a job");
  if (job != 0 && j.job != job) throw corrupt(fmt::format("records of two jobs ({:016x} and {:016x})", job, j.job));
  if (!fingerprint.empty() && j.fingerprint != fingerprint) throw corrupt("two inputs for one job");
  job = j.job;
  fingerprint = j.fingerprint;
}

namespace {

// Applies one whole, checksummed record's body (a batch's inner records one by one).
void apply_record(std::string_view body, read_result& out, bool& have_header, bool in_batch) {
  reader r(body);
  const auto type = r.u8();
  if (!have_header && type != static_cast<std::uint8_t>(record_type::header)) {
    throw corrupt("not an mtask journal (no header)");
  }
  switch (type) {
    case static_cast<std::uint8_t>(record_type::header):
      if (have_header) throw corrupt("a second header");
      out.st.head = read_header(r);
      have_header = true;
      break;
    case static_cast<std::uint8_t>(record_type::commit):
      if (out.st.complete) throw corrupt("results after the job's completion");
      out.st.apply(read_commit(r));
      break;
    case static_cast<std::uint8_t>(record_type::complete): {
      completion c;
      c.job = r.u64();
      c.total = r.u64();
      c.failed = r.u64();
      out.st.complete = c;
      break;
    }
    case static_cast<std::uint8_t>(record_type::batch): {
      // The records of one write, whole or torn together: each [u32 length][body], covered by the
      // batch's checksum alone (inner checksums would make them look like records of their own
      // to the search for whole records after a torn one).
      if (in_batch) throw corrupt("a batch inside a batch");
      while (!r.done()) {
        const auto inner = r.str();
        if (inner.empty()) throw corrupt("an empty record inside a batch");
        apply_record(inner, out, have_header, true);
      }
      break;
    }
    case static_cast<std::uint8_t>(record_type::job): {
      job_record j;
      j.job = r.u64();
      j.fingerprint = r.str();
      out.st.apply(j);
      break;
    }
    default:
      if (type < first_optional_type) throw corrupt(fmt::format("a record of unknown type {}", type));
      break; // a later part's record: not ours to read
  }
}

} // namespace

std::string as_one_record(std::string_view records) {
  const auto first = frame_at(records, 0);
  if (records.empty() || (first && first->length == records.size() - frame_bytes)) return std::string(records);
  std::string out;
  framed(out, record_type::batch, [&](std::string& b) {
    std::size_t pos = 0;
    while (pos + frame_bytes <= records.size()) {
      const auto f = frame_at(records, pos);
      put_str(b, records.substr(pos + frame_bytes, f->length)); // [u32 length][body]: no checksum
      pos += frame_bytes + f->length;
    }
  });
  return out;
}

read_result read(std::string_view bytes) {
  read_result out;
  bool have_header = false;
  std::size_t pos = 0;
  while (pos < bytes.size()) {
    auto f = frame_at(bytes, pos);
    const bool whole = f && f->length > 0 && f->length <= bytes.size() - pos - frame_bytes;
    const bool good = whole && crc32(bytes.substr(pos + frame_bytes, f->length)) == f->crc;
    if (!good) {
      if (!only_torn_after(bytes, pos)) {
        throw corrupt(fmt::format("at byte {}: a damaged record with whole records after it", pos));
      }
      out.torn = true;
      break;
    }
    try {
      apply_record(bytes.substr(pos + frame_bytes, f->length), out, have_header, false);
    } catch (const corrupt& e) {
      throw corrupt(fmt::format("at byte {}: {}", pos, e.what()));
    }
    pos += frame_bytes + f->length;
    out.valid_bytes = pos;
  }
  if (!have_header) throw corrupt("at byte 0: no complete header (not an mtask journal)");
  return out;
}

std::uint64_t snapshot_size(const state& s) {
  constexpr std::uint64_t fixed = 256; // the header with its paths, the commit's fields, the completion
  return fixed + s.head.output_path.size() + s.head.failures_path.size() + s.fingerprint.size() +
         16 * (s.final_ids.above().size() + 1) + 12 * s.held.size() + s.held_bytes +
         (s.aggregate ? s.aggregate->size() : 0);
}

std::string snapshot(const state& s) {
  std::string out;
  append_record(out, s.head);
  if (s.job != 0 && !s.fingerprint.empty()) append_record(out, job_record{.job = s.job, .fingerprint = s.fingerprint});
  commit c{.job = s.job,
           .output_end = s.output_end,
           .failures_end = s.failures_end,
           .written_below = s.written_below,
           .failed = s.failed,
           .final_ids = s.final_ids.runs(),
           .held = {},
           .aggregate = s.aggregate};
  for (const auto& [id, bytes] : s.held) c.held.push_back(held_result{.id = id, .bytes = bytes});
  append_record(out, c);
  if (s.complete) append_record(out, *s.complete);
  return out;
}

} // namespace mtask::journal
