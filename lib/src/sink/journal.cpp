// The sink's journal as bytes (see journal.hpp): little-endian records framed by length and
// CRC-32, read back into a state, compacted into a snapshot.
#include "sink/journal.hpp"

#include "common/bytes.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <iterator>

namespace mtask::journal {
namespace {

enum class record_type : std::uint8_t { header = 1, commit = 2, complete = 3, batch = 4, tally = 5, job = 64 };
constexpr std::uint8_t last_core_type = 5; // types up to this one every reader knows
// From this type on, a reader that does not know a record skips it (the ventilator's restart will
// add records of its own; an older sink can still resume from such a journal).
constexpr std::uint8_t first_optional_type = 64;
constexpr std::string_view magic = "MTASKJNL";
constexpr std::size_t frame_bytes = 8; // length + CRC

// Slicing by 8: table k advances a byte's CRC by k more zero bytes, so 8 bytes take 8 lookups
// and no dependency between them (the records of attempts are checksummed at every group).
constexpr std::array<std::array<std::uint32_t, 256>, 8> crc_tables = [] {
  std::array<std::array<std::uint32_t, 256>, 8> t{};
  for (std::uint32_t i = 0; i < 256; ++i) {
    std::uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) != 0 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
    t[0][i] = c;
  }
  for (std::size_t k = 1; k < 8; ++k)
    for (std::size_t i = 0; i < 256; ++i) t[k][i] = (t[k - 1][i] >> 8) ^ t[0][t[k - 1][i] & 0xFF];
  return t;
}();

using bytes::put_str;
using bytes::put_u32;
using bytes::put_u64;
using bytes::put_u8;
using bytes::put_var;
using bytes::put_vstr;

// Reads a record's body; every overrun is a corrupt record (its CRC matched, so a writer bug or a
// foreign file, not a torn write).
using reader = bytes::reader<corrupt>;

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

// Zigzag: a signed difference as an unsigned varint (small either way, -1 as 1, 1 as 2).
std::uint64_t zigzag(std::uint64_t now, std::uint64_t before) {
  const auto d = now - before; // two's complement difference
  return (d << 1) ^ (0 - (d >> 63));
}
std::uint64_t unzigzag(std::uint64_t z, std::uint64_t before) { return before + ((z >> 1) ^ (0 - (z & 1))); }

// A commit's attempt log (section 2): cumulative counters, the worker names, then each attempt:
// its worker, its id and start as differences from the previous attempt's (results come about in
// order), a byte of its status (bits 0-2), whether it is final (bit 7) and which of the rarer
// fields follow (bit 3 an attempt number other than 1, bit 4 a code other than 0, bit 5 what
// ran), its runtime, then those fields. A first attempt that succeeded takes 5 or 6 bytes.
constexpr std::uint8_t has_attempt = 0x08, has_code = 0x10, has_command = 0x20, is_final = 0x80;

void put_attempts(std::string& b, const attempt_log& log) {
  put_var(b, log.duplicates);
  put_var(b, log.dropped);
  put_var(b, log.requeued);
  put_var(b, log.workers.size());
  for (const auto& w : log.workers) put_vstr(b, w);
  put_var(b, log.attempts.size());
  b.reserve(b.size() + 8 * log.attempts.size());
  std::uint64_t id = 0, start = 0;
  for (const auto& a : log.attempts) {
    put_var(b, a.worker);
    put_var(b, zigzag(a.id, id));
    put_var(b, zigzag(a.start_us, start));
    put_u8(b, static_cast<std::uint8_t>(a.status | (a.attempt != 1 ? has_attempt : 0) | (a.code != 0 ? has_code : 0) |
                                        (a.command.empty() ? 0 : has_command) | (a.final ? is_final : 0)));
    put_var(b, a.runtime_us);
    if (a.attempt != 1) put_var(b, a.attempt);
    if (a.code != 0) put_var(b, static_cast<std::uint32_t>(a.code));
    if (!a.command.empty()) put_vstr(b, a.command);
    id = a.id;
    start = a.start_us;
  }
}

attempt_log read_attempts(reader& r) {
  attempt_log log;
  log.duplicates = r.var();
  log.dropped = r.var();
  log.requeued = r.var();
  const auto workers = r.var_count(1);
  log.workers.reserve(workers);
  for (std::uint32_t i = 0; i < workers; ++i) log.workers.push_back(r.vstr());
  const auto n = r.var_count(5);
  log.attempts.reserve(n);
  std::uint64_t id = 0, start = 0;
  for (std::uint32_t i = 0; i < n; ++i) {
    attempt_entry a;
    a.worker = r.var32();
    if (a.worker >= log.workers.size()) throw corrupt(fmt::format("an attempt of worker {} of {}", a.worker, workers));
    a.id = id = unzigzag(r.var(), id);
    a.start_us = start = unzigzag(r.var(), start);
    const auto flags = r.u8();
    a.status = flags & 0x07;
    if (a.status > static_cast<std::uint8_t>(wire::task_status::too_large) || (flags & 0x40) != 0)
      throw corrupt(fmt::format("an attempt of unknown status {} (byte {:#04x})", flags & 0x07, flags));
    a.final = (flags & is_final) != 0;
    a.runtime_us = r.var();
    if ((flags & has_attempt) != 0) a.attempt = r.var32();
    if ((flags & has_code) != 0) a.code = static_cast<std::int32_t>(r.var32());
    if ((flags & has_command) != 0) a.command = r.vstr();
    log.attempts.push_back(std::move(a));
  }
  return log;
}

header read_header(reader& r) {
  if (std::string_view(r.str()) != magic) throw corrupt("not an mtask journal");
  const auto version = r.u32();
  if (version != 1 && version != format_version) {
    throw corrupt(fmt::format("journal format {} (this sink reads formats 1 and {})", version, format_version));
  }
  header h;
  h.routing_id = r.str();
  h.output_path = r.str();
  h.output_dev = r.u64();
  h.output_ino = r.u64();
  h.keep_order = r.u8() != 0;
  h.jsonl = r.u8() != 0;
  h.failures_path = r.str();
  if (version >= 2) {
    const auto counts = r.u8();
    if (counts > 3) throw corrupt(fmt::format("a header counting attempts for {}", counts));
    h.stats = (counts & 1) != 0;
    h.report = (counts & 2) != 0;
    h.started_us = r.u64();
  }
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
  // Optional sections, each once and in this order: 1 the aggregate, 2 the attempts.
  std::uint8_t last = 0;
  while (!r.done()) {
    const auto section = r.u8();
    if (section <= last || section > 2) throw corrupt("a commit with unknown fields after its results");
    last = section;
    if (section == 1)
      c.aggregate = r.str();
    else
      c.attempts = read_attempts(r);
  }
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
  return ((type >= 1 && type <= last_core_type) || type == static_cast<std::uint8_t>(record_type::job)) &&
         crc32(body) == f->crc;
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
  const auto& t = crc_tables;
  std::uint32_t c = 0xFFFFFFFFu;
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
  std::size_t n = bytes.size();
  const auto u32_at = [](const unsigned char* b) {
    return std::uint32_t{b[0]} | std::uint32_t{b[1]} << 8 | std::uint32_t{b[2]} << 16 | std::uint32_t{b[3]} << 24;
  };
  for (; n >= 8; n -= 8, p += 8) {
    const auto one = c ^ u32_at(p), two = u32_at(p + 4);
    c = t[7][one & 0xFF] ^ t[6][(one >> 8) & 0xFF] ^ t[5][(one >> 16) & 0xFF] ^ t[4][one >> 24] ^ t[3][two & 0xFF] ^
        t[2][(two >> 8) & 0xFF] ^ t[1][(two >> 16) & 0xFF] ^ t[0][two >> 24];
  }
  for (; n > 0; --n, ++p) c = t[0][(c ^ *p) & 0xFF] ^ (c >> 8);
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
    put_u8(b, static_cast<std::uint8_t>((h.stats ? 1 : 0) | (h.report ? 2 : 0)));
    put_u64(b, h.started_us);
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
    if (c.attempts) {
      put_u8(b, 2);
      put_attempts(b, *c.attempts);
    }
  });
}

void append_record(std::string& out, const job_record& j) {
  framed(out, record_type::job, [&](std::string& b) {
    put_u64(b, j.job);
    put_str(b, j.fingerprint);
  });
}

void append_record(std::string& out, const tally& t) {
  framed(out, record_type::tally, [&](std::string& b) {
    put_str(b, t.stats);
    put_str(b, t.report);
  });
}

void append_record(std::string& out, const completion& c) {
  framed(out, record_type::complete, [&](std::string& b) {
    put_u64(b, c.job);
    put_u64(b, c.total);
    put_u64(b, c.failed);
    put_u64(b, c.ended_us);
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
  if (c.attempts && !counters_only) {
    // The commit's worker indices become the state's: one list of names for every attempt since.
    std::vector<std::uint32_t> index_of;
    index_of.reserve(c.attempts->workers.size());
    for (const auto& name : c.attempts->workers) {
      const auto it = std::find(since.workers.begin(), since.workers.end(), name);
      index_of.push_back(static_cast<std::uint32_t>(it - since.workers.begin()));
      if (it == since.workers.end()) since.workers.push_back(name);
    }
    for (const auto& a : c.attempts->attempts) {
      since.attempts.push_back(a);
      since.attempts.back().worker = index_of.at(a.worker);
    }
  }
  if (c.attempts) {
    since.duplicates = c.attempts->duplicates;
    since.dropped = c.attempts->dropped;
    since.requeued = c.attempts->requeued;
  }
}

void state::apply(const tally& t) {
  saved = t;
  since.workers.clear();
  since.attempts.clear();
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
      if (!r.done()) c.ended_us = r.u64(); // format 2
      if (!r.done()) throw corrupt("a completion longer than its fields");
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
    case static_cast<std::uint8_t>(record_type::tally): {
      if (out.st.complete) throw corrupt("a tally after the job's completion");
      tally t;
      t.stats = r.str();
      t.report = r.str();
      if (!r.done()) throw corrupt("a tally longer than its fields");
      out.st.apply(t);
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
         (s.aggregate ? s.aggregate->size() : 0) + (s.saved ? s.saved->stats.size() + s.saved->report.size() : 0);
}

std::string snapshot(const state& s) {
  std::string out;
  append_record(out, s.head);
  if (s.job != 0 && !s.fingerprint.empty()) append_record(out, job_record{.job = s.job, .fingerprint = s.fingerprint});
  if (s.saved) append_record(out, *s.saved); // before the commit, which holds the attempts after it
  commit c{.job = s.job,
           .output_end = s.output_end,
           .failures_end = s.failures_end,
           .written_below = s.written_below,
           .failed = s.failed,
           .final_ids = s.final_ids.runs(),
           .held = {},
           .aggregate = s.aggregate,
           .attempts = {}};
  if (s.head.attempts()) c.attempts = s.since;
  for (const auto& [id, bytes] : s.held) c.held.push_back(held_result{.id = id, .bytes = bytes});
  append_record(out, c);
  if (s.complete) append_record(out, *s.complete);
  return out;
}

} // namespace mtask::journal
