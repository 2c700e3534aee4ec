// Option values with units (skd/core/units.h): the one parser of each (MACs, MACs ratio, duration, batch
// list), without the key in their messages: the option layer names the flag or the file and key.
#include "skd/core/units.h"

#include <cctype>
#include <cmath>
#include <cstdio>
#include <sstream>
#include <stdexcept>
#include <vector>

#include "skd/core/error.h"
#include "skd/core/options.h"

namespace skd {

namespace {

std::string trim(std::string s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.erase(s.begin());
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
  return s;
}

// The numbers of a comma-separated list (spaces around items allowed), each a plain decimal of T that
// `accept` takes; std::invalid_argument saying `expected` otherwise, and for an empty list.
template <typename T, typename Accept>
std::vector<T> number_list(const std::string& text, Accept accept, const char* expected) {
  std::vector<T> out;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ',')) {
    item = trim(item);
    const auto [v, used] = options::leading_number<T>(item);
    if (used == 0 || used != item.size() || !accept(v))
      throw std::invalid_argument(cat("'", excerpt(text), "': expected ", expected));
    out.push_back(v);
  }
  if (out.empty()) throw std::invalid_argument(cat("empty list (expected ", expected, ")"));
  return out;
}

}  // namespace

std::string shortest_text(double v) {
  char buf[40];
  for (int precision = 6; precision <= 17; ++precision) {
    std::snprintf(buf, sizeof buf, "%.*g", precision, v);
    if (std::strtod(buf, nullptr) == v) break;
  }
  return buf;
}

BatchList BatchList::from_text(const std::string& text) {
  return {number_list<int64_t>(text, [](int64_t v) { return v > 0; }, "positive integers like 1,8,64")};
}

std::string BatchList::to_text() const {
  std::string s;
  for (int64_t v : values) s += cat(s.empty() ? "" : ",", v);
  return s;
}

ChannelValues ChannelValues::from_text(const std::string& text) {
  // leading_number refuses inf and nan itself: every number it reads is finite.
  return {number_list<double>(text, [](double) { return true; }, "numbers like 0.485,0.456,0.406")};
}

std::string ChannelValues::to_text() const {
  std::string s;
  for (double v : values) s += cat(s.empty() ? "" : ",", shortest_text(v));
  return s;
}

Duration Duration::from_text(const std::string& text) {
  const std::string s = trim(text);
  const auto [v, used] = options::leading_number<double>(s);
  const std::string unit = used ? trim(s.substr(used)) : "";
  double scale = 0;
  if (unit.empty() || unit == "ms")
    scale = 1;
  else if (unit == "s")
    scale = 1000;
  else if (unit == "us")
    scale = 1e-3;
  if (used == 0 || scale == 0 || !std::isfinite(v) || v <= 0)
    throw std::invalid_argument(
        cat("'", excerpt(text), "': expected a positive duration like 5ms, 800us or 0.5s"));
  return Duration{v * scale};
}

std::string Duration::to_text() const {
  return shortest_text(ms) + "ms";
}

Macs Macs::from_text(const std::string& text) {
  // Spaces only around the number and its unit ("897.0 MMac"), never inside the number ("5 0M").
  const std::string s = trim(text);
  const auto [value, used] = options::leading_number<double>(s);
  std::string unit = trim(s.substr(used));
  for (auto& ch : unit) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  if (unit.size() >= 3 && unit.compare(unit.size() - 3, 3, "mac") == 0) unit.resize(unit.size() - 3);
  if (unit.size() >= 4 && unit.compare(unit.size() - 4, 4, "macs") == 0) unit.resize(unit.size() - 4);
  double scale = 0;
  if (unit.empty())
    scale = 1;
  else if (unit == "k")
    scale = 1e3;
  else if (unit == "m")
    scale = 1e6;
  else if (unit == "g")
    scale = 1e9;
  else if (unit == "t")
    scale = 1e12;
  if (used == 0 || scale == 0 || !std::isfinite(value) || value <= 0)
    throw std::invalid_argument(
        cat("'", excerpt(text), "' is not a MACs amount (e.g. 2.43G, 897M, 897.0 MMac)"));
  // 1e30 would overflow int64 (and read as negative).
  if (value * scale >= 9.2e18)
    throw std::invalid_argument(
        cat("'", excerpt(text), "' is more MACs than any model has (at most 9.2e18)"));
  return Macs{static_cast<int64_t>(std::llround(value * scale))};
}

std::string Macs::to_text() const {
  return std::to_string(count);
}

MacsRatio MacsRatio::from_text(const std::string& text) {
  const auto refuse = [&]() {
    return std::invalid_argument(
        cat("'", excerpt(text), "': expected a fraction in (0, 1]: 0.333, 4/12 or 4:12"));
  };
  const auto number = [&](const std::string& part) {
    const std::string p = trim(part);
    const auto [value, used] = options::leading_number<double>(p);
    if (used == 0 || used != p.size()) throw refuse();
    return value;
  };
  const auto sep = text.find_first_of("/:");
  double ratio = 0;
  if (sep == std::string::npos) {
    ratio = number(text);
  } else {
    const double n = number(text.substr(0, sep)), d = number(text.substr(sep + 1));
    if (!(d > 0)) throw refuse();
    ratio = n / d;
  }
  if (!(ratio > 0 && ratio <= 1)) throw refuse();
  return MacsRatio{ratio, trim(text)};
}

}  // namespace skd
