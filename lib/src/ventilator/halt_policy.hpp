// --halt, as GNU parallel has it: when to stop a job early (on failures, successes or tasks done,
// as a count or a percentage), and how (soon: no new task, running ones finish; now: running
// ones are cancelled too). Pure: parsed once, asked after every status of the sink.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace mtask {

struct halt_policy {
  enum class when { never, soon, now };
  enum class why { fail, success, done };
  when at = when::never;
  why on = why::fail;
  std::uint64_t count = 0; // a number of tasks, or
  double percent = 0;      // a percentage of the job's tasks (when is_percent)
  bool is_percent = false;

  // What the ventilator knows when it asks: final results so far (of them, failed), and the job's
  // number of tasks (-1 while the input is still being read: `read` tasks so far).
  struct figures {
    std::uint64_t final_results = 0;
    std::uint64_t failed = 0;
    std::int64_t total = -1;
    std::uint64_t read = 0;
  };
  // Returns: why the job must halt now ("3 tasks failed (--halt soon,fail=3)"), or nothing.
  [[nodiscard]] std::optional<std::string> reached(const figures& f) const;
  // Returns: the policy as the flag gives it ("soon,fail=3", "now,fail=10%", "never").
  [[nodiscard]] std::string text() const;
};

// Parses --halt: never, soon|now,fail|success|done=N or =P% (0 < P <= 100), or parallel's old
// numbers 0 (never), 1 (soon,fail=1), 2 (now,fail=1), -1 (soon,success=1), -2 (now,success=1)
// and 1-99% (soon,fail=P%).
// Throws: usage_error "--halt: 'X' is not a halt policy (never, soon,fail=N, now,fail=P%...)".
halt_policy parse_halt_policy(std::string_view text);

} // namespace mtask
