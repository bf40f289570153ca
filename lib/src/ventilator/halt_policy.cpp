// --halt's parsing and its test against the job's figures (see halt_policy.hpp).
#include "ventilator/halt_policy.hpp"

#include "mtask/error.hpp"

#include <fmt/format.h>

#include <charconv>
#include <cmath>

namespace mtask {
namespace {

[[noreturn]] void bad(std::string_view text) {
  throw usage_error(
      fmt::format("--halt: '{}' is not a halt policy (never, soon,fail=N, now,fail=P%, "
                  "soon,success=N, now,done=N...)",
                  text));
}

// "N" (N >= 1) or "P%" (0 < P <= 100) into `p`.
bool parse_amount(std::string_view s, halt_policy& p) {
  if (s.ends_with('%')) {
    s.remove_suffix(1);
    double v = 0;
    const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc{} || end != s.data() + s.size() || !(v > 0 && v <= 100)) return false;
    p.is_percent = true;
    p.percent = v;
    return true;
  }
  std::uint64_t v = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc{} || end != s.data() + s.size() || v == 0) return false;
  p.count = v;
  return true;
}

const char* name_of(halt_policy::why w) {
  switch (w) {
    case halt_policy::why::fail: return "fail";
    case halt_policy::why::success: return "success";
    case halt_policy::why::done: return "done";
  }
  return "?";
}

} // namespace

halt_policy parse_halt_policy(std::string_view text) {
  halt_policy p;
  if (text == "never" || text == "0") return p;
  if (text == "1" || text == "2" || text == "-1" || text == "-2") {
    p.at = text.ends_with('1') ? halt_policy::when::soon : halt_policy::when::now;
    p.on = text.starts_with('-') ? halt_policy::why::success : halt_policy::why::fail;
    p.count = 1;
    return p;
  }
  const auto comma = text.find(',');
  if (comma == std::string_view::npos) {
    // parallel's old "1-99%": soon,fail=P%.
    p.at = halt_policy::when::soon;
    if (!text.ends_with('%') || !parse_amount(text, p) || p.percent >= 100) bad(text);
    return p;
  }
  const auto when = text.substr(0, comma);
  const auto rest = text.substr(comma + 1);
  if (when == "soon")
    p.at = halt_policy::when::soon;
  else if (when == "now")
    p.at = halt_policy::when::now;
  else
    bad(text);
  const auto eq = rest.find('=');
  if (eq == std::string_view::npos) bad(text);
  const auto why = rest.substr(0, eq);
  if (why == "fail")
    p.on = halt_policy::why::fail;
  else if (why == "success")
    p.on = halt_policy::why::success;
  else if (why == "done")
    p.on = halt_policy::why::done;
  else
    bad(text);
  if (!parse_amount(rest.substr(eq + 1), p)) bad(text);
  return p;
}

std::optional<std::string> halt_policy::reached(const figures& f) const {
  if (at == when::never) return std::nullopt;
  std::uint64_t n = 0;
  switch (on) {
    case why::fail: n = f.failed; break;
    case why::success: n = f.final_results - std::min(f.final_results, f.failed); break;
    case why::done: n = f.final_results; break;
  }
  const char* what = on == why::fail ? "failed" : on == why::success ? "succeeded" : "done";
  if (!is_percent) {
    if (n < count) return std::nullopt;
    return fmt::format("{} task(s) {} (--halt {})", n, what, text());
  }
  // Of the job's tasks, as parallel counts; while the input is still being read, of the tasks read
  // so far (the job has at least that many, so this can halt earlier than the whole job would).
  const auto of = f.total >= 0 ? static_cast<std::uint64_t>(f.total) : f.read;
  if (of == 0 || n == 0) return std::nullopt;
  if (static_cast<double>(n) * 100.0 < percent * static_cast<double>(of)) return std::nullopt;
  return fmt::format("{} of {} task(s) {} (--halt {})", n, of, what, text());
}

std::string halt_policy::text() const {
  if (at == when::never) return "never";
  const auto amount = is_percent ? fmt::format("{:g}%", percent) : fmt::format("{}", count);
  return fmt::format("{},{}={}", at == when::soon ? "soon" : "now", name_of(on), amount);
}

} // namespace mtask
