// --reduce: number parsing, exact 128-bit totals that fall back to long double, and the two
// aggregators (one total, one total per key). Each result is staged apart and merged only
// once it has all parsed, which is what makes add() all or nothing.
#include "mtask/aggregator.hpp"

#include "mtask/error.hpp"

#include <array>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace mtask {

namespace {

// -Wpedantic flags __int128 itself; __extension__ says we mean it (GCC and Clang).
__extension__ typedef __int128 int128;
__extension__ typedef unsigned __int128 uint128;

enum class reduce_op { sum, count, min, max, mean };

// A parsed input keeps its kind: integers stay exact until they meet a fraction.
struct number {
  bool exact = true;
  int128 i = 0;      // the value when exact
  long double f = 0; // the value when not exact
  [[nodiscard]] long double approx() const { return exact ? static_cast<long double>(i) : f; }
};

enum class parse_status { ok, not_a_number, out_of_range };

std::string_view trim(std::string_view s) {
  const auto first = s.find_first_not_of(" \t");
  if (first == std::string_view::npos) return {};
  return s.substr(first, s.find_last_not_of(" \t") - first + 1);
}

// `text` is trimmed.
parse_status parse_number(std::string_view text, number& out) {
  if (text.empty()) return parse_status::not_a_number;
  std::string_view s = text;
  const bool negative = s.front() == '-';
  if (s.front() == '+' || s.front() == '-') s.remove_prefix(1);
  // from_chars would take "inf", "nan", "infinity" and a second sign: a number starts with a digit or '.'.
  if (s.empty() || !((s.front() >= '0' && s.front() <= '9') || s.front() == '.')) return parse_status::not_a_number;
  if (s.find_first_not_of("0123456789") == std::string_view::npos) {
    const uint128 limit = (uint128{1} << 127) - (negative ? 0 : 1);
    uint128 magnitude = 0;
    for (char c : s) {
      const auto digit = static_cast<unsigned>(c - '0');
      if (magnitude > (limit - digit) / 10) return parse_status::out_of_range;
      magnitude = magnitude * 10 + digit;
    }
    out = number{.exact = true, .i = static_cast<int128>(negative ? uint128{0} - magnitude : magnitude)};
    return parse_status::ok;
  }
  // from_chars knows '-' but not '+'; keep the '-' and drop a '+'.
  if (text.front() == '+') text.remove_prefix(1);
  long double value = 0;
  const char* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, value, std::chars_format::general);
  if (ec == std::errc::result_out_of_range) return parse_status::out_of_range;
  if (ec != std::errc() || ptr != end) return parse_status::not_a_number;
  // Totals print as doubles, so an input a double cannot hold could only print as "inf".
  if (!(std::fabs(value) <= static_cast<long double>(std::numeric_limits<double>::max()))) {
    return parse_status::out_of_range;
  }
  out = number{.exact = false, .f = value};
  return parse_status::ok;
}

std::string int128_string(int128 v) {
  uint128 magnitude = v < 0 ? uint128{0} - static_cast<uint128>(v) : static_cast<uint128>(v);
  std::array<char, 48> buf{};
  char* p = buf.data() + buf.size();
  do {
    *--p = static_cast<char>('0' + static_cast<int>(magnitude % 10));
    magnitude /= 10;
  } while (magnitude != 0);
  if (v < 0) *--p = '-';
  return std::string(p, buf.data() + buf.size());
}

// Returns: the shortest text that reads back as the same double, or nothing beyond its range.
std::optional<std::string> double_string(long double v) {
  const auto d = static_cast<double>(v);
  if (!std::isfinite(d)) return std::nullopt;
  std::array<char, 32> buf{};
  const auto [ptr, ec] = std::to_chars(buf.data(), buf.data() + buf.size(), d);
  return std::string(buf.data(), ptr);
}

// Offending text for a message: cut to 40 bytes (not inside a UTF-8 sequence), control bytes
// escaped, so the message stays one readable line.
std::string excerpt(std::string_view text) {
  constexpr std::size_t max_bytes = 40;
  bool cut = false;
  if (text.size() > max_bytes) {
    std::size_t n = max_bytes;
    while (n > 0 && (static_cast<unsigned char>(text[n]) & 0xC0) == 0x80) --n;
    text = text.substr(0, n);
    cut = true;
  }
  static constexpr char hex[] = "0123456789abcdef";
  std::string out;
  for (char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c == '\r') {
      out += "\\r";
    } else if (u < 0x20 || u == 0x7F) {
      out += "\\x";
      out += hex[u >> 4];
      out += hex[u & 0xF];
    } else {
      out += c;
    }
  }
  if (cut) out += "...";
  return out;
}

// The running total of one reduction. Small and copyable: staging a result is a copy.
class accumulator {
 public:
  void count_one() { ++count_; }

  // Returns: false, leaving the total unchanged, when an exact sum would pass 128 bits.
  [[nodiscard]] bool add(const number& n, reduce_op op) {
    accumulator one;
    one.count_ = 1;
    if (n.exact) {
      one.sum_ = n.i;
    } else {
      one.exact_ = false;
      one.fsum_ = n.f;
    }
    one.best_ = n;
    return merge(one, op);
  }

  // Returns: false, leaving the total unchanged, when an exact sum would pass 128 bits.
  [[nodiscard]] bool merge(const accumulator& other, reduce_op op) {
    if (other.count_ == 0) return true;
    if (op == reduce_op::sum || op == reduce_op::mean) {
      if (exact_ && other.exact_) {
        int128 sum = 0;
        if (__builtin_add_overflow(sum_, other.sum_, &sum)) return false;
        sum_ = sum;
      } else {
        fsum_ = approx_sum() + other.approx_sum();
        exact_ = false;
      }
    } else if (op == reduce_op::min || op == reduce_op::max) {
      if (count_ == 0 || (op == reduce_op::min ? less(other.best_, best_) : less(best_, other.best_))) {
        best_ = other.best_;
      }
    }
    count_ += other.count_;
    return true;
  }

  // Appends the state as one line of tokens: count, exact, sum, fsum, best's exact, i and f.
  // Integers in decimal, long doubles as hex floats ("%La"): both read back bit for bit.
  void save(std::string& out) const {
    out += std::to_string(count_) + ' ' + (exact_ ? '1' : '0') + ' ' + int128_string(sum_) + ' ' + hex(fsum_) + ' ' +
           (best_.exact ? '1' : '0') + ' ' + int128_string(best_.i) + ' ' + hex(best_.f) + '\n';
  }
  // Reads one line save() wrote. Returns: false when it is not one.
  [[nodiscard]] bool restore(std::string_view line) {
    std::vector<std::string_view> t;
    while (!line.empty()) {
      const auto sp = line.find(' ');
      t.push_back(line.substr(0, sp));
      if (sp == std::string_view::npos) break;
      line.remove_prefix(sp + 1);
    }
    number n;
    if (t.size() != 7 || (t[1] != "0" && t[1] != "1") || (t[4] != "0" && t[4] != "1")) return false;
    const auto [end, ec] = std::from_chars(t[0].data(), t[0].data() + t[0].size(), count_);
    if (ec != std::errc() || end != t[0].data() + t[0].size()) return false;
    exact_ = t[1] == "1";
    if (parse_number(t[2], n) != parse_status::ok || !n.exact) return false;
    sum_ = n.i;
    if (!unhex(t[3], fsum_)) return false;
    best_.exact = t[4] == "1";
    if (parse_number(t[5], n) != parse_status::ok || !n.exact) return false;
    best_.i = n.i;
    return unhex(t[6], best_.f);
  }

  // Returns: the total as text, or nothing for min, max and mean of no values.
  // Throws: error "CONTEXTsum overflows" when a total with fractions is beyond the double range.
  [[nodiscard]] std::optional<std::string> result(reduce_op op, const std::string& context) const {
    switch (op) {
      case reduce_op::count: return std::to_string(count_);
      case reduce_op::sum: return exact_ ? int128_string(sum_) : finite(approx_sum(), context);
      case reduce_op::min:
      case reduce_op::max:
        if (count_ == 0) return std::nullopt;
        return best_.exact ? int128_string(best_.i) : finite(best_.f, context);
      case reduce_op::mean:
        if (count_ == 0) return std::nullopt;
        if (exact_ && sum_ % static_cast<int128>(count_) == 0) return int128_string(sum_ / static_cast<int128>(count_));
        return finite(approx_sum() / static_cast<long double>(count_), context);
    }
    return std::nullopt;
  }

 private:
  [[nodiscard]] long double approx_sum() const { return exact_ ? static_cast<long double>(sum_) : fsum_; }

  static std::string hex(long double v) {
    std::array<char, 64> buf{};
    std::snprintf(buf.data(), buf.size(), "%La", v);
    return buf.data();
  }
  static bool unhex(std::string_view text, long double& v) {
    const std::string s(text);
    char* end = nullptr;
    v = std::strtold(s.c_str(), &end);
    return !s.empty() && end == s.c_str() + s.size();
  }

  static bool less(const number& a, const number& b) {
    return a.exact && b.exact ? a.i < b.i : a.approx() < b.approx();
  }

  static std::string finite(long double v, const std::string& context) {
    auto text = double_string(v);
    if (!text) throw error(context + "sum overflows");
    return *text;
  }

  std::uint64_t count_ = 0; // values added (non-blank ones, for count)
  bool exact_ = true;       // every value summed so far was an integer
  int128 sum_ = 0;          // the sum while exact_
  long double fsum_ = 0;    // the sum once not exact_
  number best_;             // min or max so far, when count_ > 0
};

std::string where(std::uint64_t task_id, std::size_t line) {
  std::string w = "task " + std::to_string(task_id) + ": ";
  if (line != 0) w += "line " + std::to_string(line) + ": ";
  return w;
}

// Throws: error "task N: [line L: ]not a number: 'TEXT'" or "...number out of range: 'TEXT'".
number parse_value(std::string_view value, std::uint64_t task_id, std::size_t line) {
  number n;
  switch (parse_number(value, n)) {
    case parse_status::ok: return n;
    case parse_status::not_a_number: throw error(where(task_id, line) + "not a number: '" + excerpt(value) + "'");
    case parse_status::out_of_range: break;
  }
  throw error(where(task_id, line) + "number out of range: '" + excerpt(value) + "'");
}

// Calls f(line, number) for each '\n'-separated line, numbered from 1; a final '\n' ends the
// last line rather than starting an empty one.
template <typename F>
void for_each_line(std::string_view text, F&& f) {
  std::size_t number = 0;
  while (!text.empty()) {
    const auto nl = text.find('\n');
    f(text.substr(0, nl), ++number);
    if (nl == std::string_view::npos) break;
    text.remove_prefix(nl + 1);
  }
}

reduce_op parse_op(std::string_view op, std::string_view flag, bool allow_mean) {
  if (op == "sum") return reduce_op::sum;
  if (op == "count") return reduce_op::count;
  if (op == "min") return reduce_op::min;
  if (op == "max") return reduce_op::max;
  if (op == "mean" && allow_mean) return reduce_op::mean;
  throw usage_error(std::string(flag) + ": unknown operation '" + std::string(op) + "' (known: sum, count, min, max" +
                    (allow_mean ? ", mean)" : ")"));
}

const char* op_name(reduce_op op) {
  switch (op) {
    case reduce_op::sum: return "sum";
    case reduce_op::count: return "count";
    case reduce_op::min: return "min";
    case reduce_op::max: return "max";
    case reduce_op::mean: return "mean";
  }
  return "?";
}

class reducer final : public aggregator {
 public:
  reducer(reduce_op op, bool per_line) : op_(op), per_line_(per_line) {}

  void add(std::uint64_t task_id, std::string_view result) override {
    accumulator part;
    if (per_line_) {
      for_each_line(result, [&](std::string_view line, std::size_t n) { add_value(part, line, task_id, n); });
    } else {
      if (!result.empty() && result.back() == '\n') result.remove_suffix(1);
      add_value(part, result, task_id, 0);
    }
    if (!total_.merge(part, op_)) throw error(where(task_id, 0) + "sum overflows");
  }

  std::string finish() override {
    auto total = total_.result(op_, "");
    return total ? *total + "\n" : std::string();
  }

  [[nodiscard]] std::optional<std::string> save() const override {
    std::string out = kind() + '\n';
    total_.save(out);
    return out;
  }

  void restore(std::string_view state) override {
    const auto nl = state.find('\n');
    if (nl == std::string_view::npos || state.substr(0, nl) != kind())
      throw error("the saved total is of another reduction than '" + kind() + "'");
    accumulator total;
    auto line = state.substr(nl + 1);
    if (!line.empty() && line.back() == '\n') line.remove_suffix(1);
    if (!total.restore(line)) throw error("the saved total of '" + kind() + "' is damaged");
    total_ = total;
  }

 private:
  void add_value(accumulator& part, std::string_view text, std::uint64_t task_id, std::size_t line) const {
    const std::string_view value = trim(text);
    if (value.empty()) return;
    if (op_ == reduce_op::count) {
      part.count_one();
    } else if (!part.add(parse_value(value, task_id, line), op_)) {
      throw error(where(task_id, line) + "sum overflows");
    }
  }

  [[nodiscard]] std::string kind() const {
    return std::string("reduce ") + op_name(op_) + (per_line_ ? " per-line" : "");
  }

  reduce_op op_;
  bool per_line_;
  accumulator total_;
};

class key_reducer final : public aggregator {
 public:
  explicit key_reducer(reduce_op op) : op_(op) {}

  void add(std::uint64_t task_id, std::string_view result) override {
    // Stage this result's totals per key, then merge: a bad line leaves keys_ untouched.
    std::map<std::string_view, accumulator> staged;
    for_each_line(result, [&](std::string_view line, std::size_t n) {
      if (line.empty()) return;
      const auto tab = line.find('\t');
      if (op_ == reduce_op::count) {
        staged[line.substr(0, tab)].count_one();
        return;
      }
      if (tab == std::string_view::npos) {
        throw error(where(task_id, n) + "no tab between key and value: '" + excerpt(line) + "'");
      }
      const std::string_view key = line.substr(0, tab);
      const number value = parse_value(trim(line.substr(tab + 1)), task_id, n);
      if (!staged[key].add(value, op_)) throw overflow(task_id, key);
    });
    std::vector<std::pair<std::string_view, accumulator>> merged;
    merged.reserve(staged.size());
    for (const auto& [key, part] : staged) {
      const auto it = keys_.find(key);
      accumulator total = it == keys_.end() ? accumulator{} : it->second;
      if (!total.merge(part, op_)) throw overflow(task_id, key);
      merged.emplace_back(key, total);
    }
    for (const auto& [key, total] : merged) {
      const auto it = keys_.find(key);
      if (it == keys_.end()) {
        keys_.emplace(std::string(key), total);
      } else {
        it->second = total;
      }
    }
  }

  // One line naming the reduction, then KEY<TAB>STATE per key (a key holds neither tab nor newline).
  [[nodiscard]] std::optional<std::string> save() const override {
    std::string out = kind() + '\n';
    for (const auto& [key, total] : keys_) {
      out += key;
      out += '\t';
      total.save(out);
    }
    return out;
  }

  void restore(std::string_view state) override {
    auto nl = state.find('\n');
    if (nl == std::string_view::npos || state.substr(0, nl) != kind())
      throw error("the saved totals are of another reduction than '" + kind() + "'");
    state.remove_prefix(nl + 1);
    std::map<std::string, accumulator, std::less<>> keys;
    while (!state.empty()) {
      nl = state.find('\n');
      const auto line = state.substr(0, nl);
      const auto tab = line.find('\t');
      accumulator total;
      if (nl == std::string_view::npos || tab == std::string_view::npos || !total.restore(line.substr(tab + 1)) ||
          !keys.emplace(std::string(line.substr(0, tab)), total).second) {
        throw error("the saved totals of '" + kind() + "' are damaged");
      }
      state.remove_prefix(nl + 1);
    }
    keys_ = std::move(keys);
  }

  std::string finish() override {
    std::string out;
    for (const auto& [key, total] : keys_) {
      const auto text = total.result(op_, "key '" + excerpt(key) + "': ");
      if (!text) continue;
      out += key;
      out += '\t';
      out += *text;
      out += '\n';
    }
    return out;
  }

 private:
  static error overflow(std::uint64_t task_id, std::string_view key) {
    return error(where(task_id, 0) + "key '" + excerpt(key) + "': sum overflows");
  }

  [[nodiscard]] std::string kind() const { return std::string("reduce-by-key ") + op_name(op_); }

  reduce_op op_;
  std::map<std::string, accumulator, std::less<>> keys_; // std::less<> finds by string_view
};

} // namespace

void aggregator::restore(std::string_view) { throw error("this aggregator cannot resume from a journal"); }

std::unique_ptr<aggregator> make_reducer(std::string_view op, bool per_line) {
  return std::make_unique<reducer>(parse_op(op, "--reduce", true), per_line);
}

std::unique_ptr<aggregator> make_key_reducer(std::string_view op) {
  return std::make_unique<key_reducer>(parse_op(op, "--reduce-by-key", false));
}

} // namespace mtask
