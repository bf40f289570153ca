// Sink-side aggregation of results (--reduce, and per key): every result goes in once, one total
// comes out at the end. Pure: no I/O; memory is constant, or one entry per distinct key.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace mtask {

// A sink-side aggregation of results: fed every result once, prints its total at the end.
//
// Numbers: an optional '+' or '-', then decimal digits with an optional fraction and exponent
// ("42", "-7", "3.25", ".5", "1e6"). Spaces and tabs around a number are ignored; hex, "inf",
// "nan", thousands separators and values beyond the double range are not numbers. While every
// input is an integer (digits only) arithmetic is exact on 128 bits and results print with all
// their digits; from the first input with a fraction or exponent on, that total continues in
// long double (from the exact sum so far) and prints as the shortest text that reads back as the
// same double (std::to_chars: "0.3", "1e+06", "1.6666666666666667").
//
// Operations: sum; count (values are counted, not parsed: any non-blank one counts 1); min and
// max (the winning input prints as an integer if it was one, ties keep the first); mean (sum /
// count: an exact integer when it divides evenly, otherwise a double as above).
class aggregator {
 public:
  virtual ~aggregator() = default;

  // Adds one task's result. All or nothing: when it throws, nothing of this result was counted,
  // so the caller may report the task and carry on.
  // Throws: error naming the task (and for line-based results the 1-based line) and quoting the
  //         offending text, cut to 40 bytes with "..." and control characters escaped:
  //           "task 7: not a number: 'abc'"            "task 7: line 3: not a number: '1,5'"
  //           "task 7: number out of range: '1e999'"   "task 7: sum overflows" (beyond 128 bits)
  //           "task 7: line 2: no tab between key and value: 'word'"
  //           "task 7: key 'word': sum overflows"
  virtual void add(std::uint64_t task_id, std::string_view result) = 0;

  // Returns: the final output bytes, each line ending in '\n'; may be empty (see the makers).
  //          Does not change the aggregator: calling it twice gives the same bytes.
  // Throws: error "sum overflows" / "key 'K': sum overflows" when a total with fractions is beyond
  //         the double range (1e308 + 1e308).
  virtual std::string finish() = 0;

  // For --journal: the running total as bytes, which restore() reads back into a new aggregator
  // made the same way, so that a sink restarted from its journal resumes the reduction exactly
  // (each result counted once, whatever the crash). Called after each group of results.
  // Returns: nothing when this aggregator cannot be journaled (the default, so a custom reducer
  //          that overrides neither is refused with --journal rather than resumed wrong).
  [[nodiscard]] virtual std::optional<std::string> save() const { return std::nullopt; }
  // Replaces the running total with one save() returned.
  // Throws: error when `state` is not one save() of an aggregator of this kind returned.
  virtual void restore(std::string_view state);
};

// One total over all results, printed as one line "TOTAL\n".
// op: sum|count|min|max|mean.
// per_line=false: each result is one number; surrounding spaces/tabs and one trailing '\n' are
//   allowed. A blank result is skipped: it contributes nothing (like a blank line), not even to
//   count. A result of several lines is not a number (count counts it once).
// per_line=true: every non-blank line ('\n'-separated, spaces/tabs only is blank) is one number.
// With no values at all: sum prints "0\n", count prints "0\n", min, max and mean print nothing
// (finish() returns an empty string).
// Throws: usage_error "--reduce: unknown operation 'x' (known: sum, count, min, max, mean)".
std::unique_ptr<aggregator> make_reducer(std::string_view op, bool per_line);

// One total per key, printed as lines "KEY<TAB>TOTAL\n" sorted by the bytes of KEY (unsigned,
// so UTF-8 keys sort by code point), one line per distinct key; no keys, no output.
// op: sum|count|min|max. Results are '\n'-separated lines "KEY<TAB>VALUE": KEY is every byte
// before the first tab, verbatim (not trimmed, may be empty); VALUE is a number as above.
// Empty lines are skipped. A line without a tab is an error, except for count, where the whole
// line is the key; count counts each line 1 and ignores any VALUE.
// Throws: usage_error "--reduce-by-key: unknown operation 'x' (known: sum, count, min, max)".
std::unique_ptr<aggregator> make_key_reducer(std::string_view op);

} // namespace mtask
